"""Pydantic shapes of the catalog: what the data files and the API accept and return.

``DiseaseCreate`` is the one definition of a valid disease: the loader checks every entry of
``diseases.yaml`` with it and the API checks every new or edited disease with it, so a rule
cannot be bypassed by choosing one path over the other. Code-list fields are checked
against ``codes.yaml``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from yifang.catalog.codes import code_list

DiseaseClass = Literal["A", "B", "C", "other"]

DISEASE_CODE_PATTERN = r"^[A-Z][A-Z0-9_]{0,15}$"


class Subtype(BaseModel):
    """A laboratory subtype recorded in the card's subtype field (e.g. H7N9, EV71)."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[A-Za-z0-9_]{1,16}$")
    name_zh: str = Field(min_length=1, max_length=64)
    name_en: str = Field(min_length=1, max_length=128)


def _check_codes(values: list[str], list_name: str, field: str) -> list[str]:
    known = code_list(list_name)
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ValueError(
            f"{field}: unknown code(s) {unknown}; allowed: {', '.join(known)} ({list_name})"
        )
    if len(set(values)) != len(values):
        raise ValueError(f"{field}: codes repeat")
    return values


class DiseaseFields(BaseModel):
    """Every setting of a disease except its code (shared by create and output)."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)

    national_code: str | None = Field(default=None, pattern=r"^\d{4}$")
    icd10: str | None = Field(default=None, max_length=32)
    name_zh: str = Field(min_length=1, max_length=64)
    name_en: str = Field(min_length=1, max_length=128)
    disease_class: DiseaseClass
    managed_as_class_a: bool = False
    parent_code: str | None = Field(default=None, pattern=DISEASE_CODE_PATTERN)
    report_limit_hours: int = Field(default=24, ge=1, le=720, description="hours")
    review_limit_hours: int = Field(default=24, ge=1, le=720, description="hours")
    classifications: list[str] = Field(default_factory=lambda: ["1", "2", "3"], min_length=1)
    chronicity: list[str] = Field(default_factory=list)
    subtypes: list[Subtype] = Field(default_factory=list)
    incubation_min_days: float | None = Field(default=None, ge=0)
    incubation_mean_days: float | None = Field(default=None, ge=0)
    incubation_max_days: float | None = Field(default=None, ge=0)
    serial_interval_mean_days: float | None = Field(default=None, gt=0)
    serial_interval_sd_days: float | None = Field(default=None, ge=0)
    duplicate_window_days: int = Field(default=90, ge=1, le=36500, description="days")
    transmission_route: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    active: bool = True
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("classifications")
    @classmethod
    def _classifications(cls, v: list[str]) -> list[str]:
        return _check_codes(v, "case_classification", "classifications")

    @field_validator("chronicity")
    @classmethod
    def _chronicity(cls, v: list[str]) -> list[str]:
        return _check_codes(v, "chronicity", "chronicity")

    @field_validator("transmission_route")
    @classmethod
    def _route(cls, v: str | None) -> str | None:
        if v is not None:
            _check_codes([v], "transmission_route", "transmission_route")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> DiseaseFields:
        if self.managed_as_class_a and self.disease_class != "B":
            raise ValueError("managed_as_class_a: only a class B disease is managed as class A")
        lo, mean, hi = self.incubation_min_days, self.incubation_mean_days, self.incubation_max_days
        present = [x for x in (lo, mean, hi) if x is not None]
        if present != sorted(present):
            raise ValueError("incubation: need min ≤ mean ≤ max (days)")
        if (self.serial_interval_sd_days is not None) and self.serial_interval_mean_days is None:
            raise ValueError("serial_interval_sd_days: given without serial_interval_mean_days")
        if self.valid_from and self.valid_to and self.valid_from > self.valid_to:
            raise ValueError("valid_to: before valid_from")
        codes = [s.code for s in self.subtypes]
        if len(set(codes)) != len(codes):
            raise ValueError("subtypes: codes repeat")
        return self


class DiseaseCreate(DiseaseFields):
    """A new disease (API POST) or one entry of ``diseases.yaml`` after inheritance."""

    code: str = Field(pattern=DISEASE_CODE_PATTERN, description="Yifang's stable code")

    @model_validator(mode="after")
    def _not_own_parent(self) -> DiseaseCreate:
        if self.parent_code == self.code:
            raise ValueError("parent_code: a disease cannot be its own parent")
        return self


class DiseaseUpdate(BaseModel):
    """A partial change of a disease's settings (API PATCH); the code cannot change."""

    model_config = ConfigDict(extra="forbid")

    national_code: str | None = None
    icd10: str | None = None
    name_zh: str | None = None
    name_en: str | None = None
    disease_class: DiseaseClass | None = None
    managed_as_class_a: bool | None = None
    parent_code: str | None = None
    report_limit_hours: int | None = None
    review_limit_hours: int | None = None
    classifications: list[str] | None = None
    chronicity: list[str] | None = None
    subtypes: list[Subtype] | None = None
    incubation_min_days: float | None = None
    incubation_mean_days: float | None = None
    incubation_max_days: float | None = None
    serial_interval_mean_days: float | None = None
    serial_interval_sd_days: float | None = None
    duplicate_window_days: int | None = None
    transmission_route: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    active: bool | None = None
    extra: dict[str, Any] | None = None
    reason: str | None = Field(default=None, max_length=500, description="why (kept in audit)")


class DiseaseOut(DiseaseFields):
    """A disease as stored, with who last edited it."""

    code: str
    leaf: bool = Field(default=True, description="True if cards may name it (no children)")
    source_version: str | None = None
    edited_by: str | None = None
    updated_at: datetime | None = None


class RegionOut(BaseModel):
    """An administrative division (GB/T 2260 / NBS statistical code without zero padding)."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    level: int
    parent_code: str | None
    name_en: str | None = None
    kind: str | None = None
    urban: bool | None = None
    herding: bool | None = None
    longitude: float | None = None
    latitude: float | None = None
    active: bool = True
    source_version: str | None = None


class OrganisationOut(BaseModel):
    """A reporting or receiving organisation."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    kind: str
    region_code: str
    level: str | None = None
    parent_code: str | None = None
    phone: str | None = None
    active: bool = True
    synthetic: bool = False


class PopulationBand(BaseModel):
    """Residents of one sex (M/F/T) in ages [age_from, age_to) years; age_to None = open."""

    sex: str
    age_from: int
    age_to: int | None
    count: int


class PopulationOut(BaseModel):
    """Resident population of a region in a year."""

    region_code: str
    year: int
    total: int
    synthetic: bool
    source: str | None = None
    bands: list[PopulationBand] = Field(default_factory=list)


class CodeLabel(BaseModel):
    """One code of a code list."""

    code: str
    zh: str
    en: str
    attributes: dict[str, Any] = Field(default_factory=dict)
