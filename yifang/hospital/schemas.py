"""Pydantic shapes of the hospital front end: the records the parsers produce, the rules'
definitions (what the CDC edits), and what the API returns.

The three intake formats (FHIR R4, HL7 v2, CSV) are read into :class:`EncounterRecord` —
one visit with its patient, diagnoses and laboratory results — so that storing, case
identification and syndromes are written once. Clinical times are wall-clock times in the
city's time zone (naive), as on the report card.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

_ICD = re.compile(r"^[A-Z]\d\d(\.\d{1,2})?$")

RULE_KINDS = ("icd10", "lab", "lab_text", "sign", "syndrome", "negation")
RuleKind = Literal["icd10", "lab", "lab_text", "sign", "syndrome", "negation"]


# --------------------------------------------------------------------------- parsed records


class DiagnosisRecord(BaseModel):
    """A diagnosis as sent: ICD-10 code (any spelling of the national clinical edition, e.g.
    ``A15.000x001``) and/or its text."""

    entry_key: str = Field(max_length=96, description="Sender's id of the entry.")
    icd10: str | None = Field(None, max_length=32)
    text: str | None = Field(None, max_length=200)
    diagnosed_at: datetime | None = None
    kind: str | None = Field(None, max_length=16)
    refuted: bool = False


class LabRecord(BaseModel):
    """A laboratory result as sent."""

    result_key: str = Field(max_length=128, description="Sender's id of the result.")
    test_code: str | None = Field(None, max_length=64)
    test_name: str | None = Field(None, max_length=128)
    result_text: str | None = Field(None, max_length=200)
    value_num: float | None = None
    unit: str | None = Field(None, max_length=32)
    positive: bool | None = None
    specimen: str | None = Field(None, max_length=64)
    status: str | None = Field(None, max_length=16)
    observed_at: datetime | None = None


class EncounterRecord(BaseModel):
    """One visit with its patient, diagnoses and results, read from any intake format."""

    org_code: str = Field(max_length=32)
    visit_number: str = Field(max_length=64)
    patient_number: str | None = Field(None, max_length=64)
    patient_name: str | None = Field(None, max_length=40)
    id_type: str | None = Field(None, max_length=2)
    id_number: str | None = Field(None, max_length=32)
    sex: str | None = Field(None, max_length=1)
    birth_date: date | None = None
    phone: str | None = Field(None, max_length=20)
    guardian_name: str | None = Field(None, max_length=40)
    address_code: str | None = Field(None, max_length=12)
    address_detail: str | None = Field(None, max_length=100)
    occupation: str | None = Field(None, max_length=2)
    work_unit: str | None = Field(None, max_length=100)
    visit_time: datetime | None = None
    encounter_class: str | None = Field(None, max_length=16)
    department: str | None = Field(None, max_length=64)
    doctor_name: str | None = Field(None, max_length=40)
    chief_complaint: str | None = None
    temperature_c: float | None = Field(None, ge=25, le=45)
    onset_date: date | None = None
    status: str | None = Field(None, max_length=16)
    source_time: datetime | None = None
    diagnoses: list[DiagnosisRecord] = Field(default_factory=list)
    labs: list[LabRecord] = Field(default_factory=list)


class RecordError(BaseModel):
    """A problem found while reading a message: where (segment/field, resource path, CSV row
    and column) and what, in Chinese and English. ``severity`` ``error`` refuses the message;
    ``warning`` keeps it."""

    location: str
    code: str
    message_zh: str
    message_en: str
    severity: Literal["error", "warning"] = "error"


# --------------------------------------------------------------------------- rule definitions


def _check_regex(pattern: str) -> str:
    """A pattern must compile in Python and in Polars' (Rust) regex engine, which has no
    look-around: rules are evaluated by Polars over whole batches."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    import polars as pl

    try:
        pl.Series([""]).str.contains(pattern)
    except Exception as exc:  # polars raises ComputeError with the engine's message
        raise ValueError(f"regular expression {pattern!r} not supported: {exc}") from None
    return pattern


#: A regular expression checked to work in both engines.
Pattern = Annotated[str, AfterValidator(_check_regex)]


def normalise_icd(code: str) -> str:
    """An ICD-10 code in the short form ``A15.0``: upper case, the dagger/asterisk and other
    marks dropped, the dot put back (``a150`` → ``A15.0``); national clinical-edition
    extensions (``A15.000x001``) are kept after the dot so that prefixes still compare."""
    text = re.sub(r"[^A-Z0-9.]", "", code.upper())
    if "." not in text and len(text) > 3:
        text = f"{text[:3]}.{text[3:]}"
    return text


def _icd_range(value: str) -> str:
    text = value.strip().upper()
    parts = [normalise_icd(p) for p in text.split("-")]
    if len(parts) > 2 or not all(_ICD.match(p) for p in parts):
        raise ValueError(f"ICD-10 range {value!r}: use A15, A15.6 or A15-A16")
    if len(parts) == 2 and parts[0] > parts[1]:
        raise ValueError(f"ICD-10 range {value!r}: the first code is after the second")
    return "-".join(parts)


class IcdRuleDef(BaseModel):
    """ICD-10 codes from ``icd10_from`` to ``icd10_to`` (inclusive, by prefix) mean
    ``disease_code``. Classification and acute/chronic as on the card (codes); when empty
    the draft takes 临床诊断 (2) where the disease allows it."""

    model_config = ConfigDict(extra="forbid")

    icd10_from: str
    icd10_to: str
    disease_code: str = Field(max_length=16)
    subtype_code: str | None = Field(None, max_length=16)
    classification: str | None = Field(None, max_length=2)
    chronicity: str | None = Field(None, max_length=2)
    note: str | None = None

    @field_validator("icd10_from", "icd10_to")
    @classmethod
    def _code(cls, value: str) -> str:
        code = normalise_icd(value)
        if not _ICD.match(code):
            raise ValueError(f"{value!r} is not an ICD-10 code like A15 or A15.6")
        return code

    @model_validator(mode="after")
    def _ordered(self) -> IcdRuleDef:
        if self.icd10_from > self.icd10_to:
            raise ValueError("icd10_from must not come after icd10_to")
        return self


class PatternChoice(BaseModel):
    """A subtype (``code``) or disease chosen when ``match`` matches the test and result."""

    model_config = ConfigDict(extra="forbid")

    match: Pattern
    code: str | None = Field(None, max_length=16)
    disease: str | None = Field(None, max_length=16)


class LabRuleDef(BaseModel):
    """A laboratory result proving ``disease`` (see ``data/lab_rules.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    disease: str = Field(max_length=16)
    classification: str = Field("3", max_length=2)
    test: Pattern
    positive: Pattern | None = None
    negative: Pattern | None = None
    subtype: str | None = Field(None, max_length=16)
    subtypes: list[PatternChoice] = Field(default_factory=list)
    disease_if: list[PatternChoice] = Field(default_factory=list)
    min_titre: int | None = Field(None, ge=1)
    note: str | None = None


class LabDefaults(BaseModel):
    """The result texts that mean positive and negative for every lab rule."""

    model_config = ConfigDict(extra="forbid")

    positive: Pattern
    negative: Pattern


class SignDef(BaseModel):
    """A symptom or sign: keywords in the complaint, ICD-10 ranges, or a temperature."""

    model_config = ConfigDict(extra="forbid")

    keywords: Pattern
    icd10: list[str] = Field(default_factory=list)
    min_temperature_c: float | None = Field(None, ge=35, le=42)

    @field_validator("icd10")
    @classmethod
    def _ranges(cls, values: list[str]) -> list[str]:
        return [_icd_range(v) for v in values]


class SyndromeDef(BaseModel):
    """A syndrome: all of ``all`` and one of ``any`` signs, or a diagnosis in ``icd10``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name_zh: str
    name_en: str
    all_of: list[str] = Field(default_factory=list, alias="all")
    any_of: list[str] = Field(default_factory=list, alias="any")
    icd10: list[str] = Field(default_factory=list)

    @field_validator("icd10")
    @classmethod
    def _ranges(cls, values: list[str]) -> list[str]:
        return [_icd_range(v) for v in values]

    @model_validator(mode="after")
    def _something(self) -> SyndromeDef:
        if not (self.all_of or self.any_of or self.icd10):
            raise ValueError("a syndrome needs signs (all/any) or ICD-10 ranges")
        return self


class NegationDef(BaseModel):
    """The words of the negation reading (see ``data/syndromes.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    cues: list[str] = Field(min_length=1)
    pseudo: list[str] = Field(default_factory=list)
    terminators: list[str] = Field(default_factory=list)
    clause_breaks: Pattern = "[，,。；;！!？?\n]"


DEFINITIONS: dict[str, type[BaseModel]] = {
    "icd10": IcdRuleDef,
    "lab": LabRuleDef,
    "lab_text": LabDefaults,
    "sign": SignDef,
    "syndrome": SyndromeDef,
    "negation": NegationDef,
}


# --------------------------------------------------------------------------- API shapes


class RuleOut(BaseModel):
    """A stored rule."""

    model_config = ConfigDict(from_attributes=True)

    kind: str
    code: str
    definition: dict[str, Any]
    active: bool
    note: str | None = None
    edited_by: str | None = None
    updated_at: datetime


class RuleIn(BaseModel):
    """A new or changed rule: its definition (shape by kind) and whether it is active."""

    definition: dict[str, Any]
    active: bool = True
    note: str | None = Field(None, max_length=500)


class IntakeOut(BaseModel):
    """What became of one received message."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    source: str
    format: str
    org_code: str | None
    message_key: str | None
    received_at: datetime
    status: str
    errors: list[dict[str, Any]]
    duplicate_of_id: int | None = None
    encounters: int
    lab_results: int


class CaseOut(BaseModel):
    """An identified case and its draft card."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    encounter_id: int
    org_code: str
    disease_code: str
    subtype_code: str | None
    classification: str
    chronicity: str | None
    rule_kind: str
    rule_code: str
    evidence: str
    diagnosed_at: datetime
    due_at: datetime
    status: str
    card_id: int | None
    merged_into_id: int | None = None
    draft_errors: list[dict[str, Any]]
    decided_by: str | None = None
    decided_at: datetime | None = None
    reject_reason: str | None = None


class ConfirmIn(BaseModel):
    """The doctor's confirmation: the card's fields to complete or correct (card column
    names, raw values as on the card form) and the draft card's version as read."""

    version: int | None = None
    changes: dict[str, Any] = Field(default_factory=dict)


class RejectIn(BaseModel):
    """The doctor's rejection of a draft: why this is not a case to report."""

    reason: str = Field(min_length=1, max_length=500)
    reason_code: Literal["ruledout", "error", "dup", "other"] = "ruledout"


class MissedOut(BaseModel):
    """A missed report (漏报)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    case_id: int
    org_code: str
    disease_code: str
    diagnosed_at: datetime
    due_at: datetime
    flagged_at: datetime
    resolved_at: datetime | None
    resolution: str | None


class MissedSummary(BaseModel):
    """A hospital's case-finding figures for its indicators over a period."""

    org_code: str
    identified: int = Field(description="Cases the rules found (not merged or withdrawn).")
    reported_in_time: int
    missed: int = Field(description="Cases flagged as missed reports (漏报), resolved or not.")
    missed_open: int = Field(description="Missed reports still without a card.")
    missed_rate: float | None = Field(description="missed ÷ identified (0–1); None if none.")


class SyndromeCountOut(BaseModel):
    """A cell of the syndrome series."""

    model_config = ConfigDict(from_attributes=True)

    syndrome: str
    org_code: str
    township: str
    day: date
    count: int
    visits: int


class StreamIn(BaseModel):
    """One observation of another surveillance stream."""

    stream: str = Field(max_length=32)
    region_code: str = Field(max_length=12, pattern=r"^\d{2,12}$")
    place: str = Field("", max_length=100)
    day: date
    value: float = Field(ge=0)
    denominator: float | None = Field(None, gt=0)
    source: str | None = Field(None, max_length=64)


class StreamOut(StreamIn):
    """A stored observation."""

    model_config = ConfigDict(from_attributes=True)

    id: int
