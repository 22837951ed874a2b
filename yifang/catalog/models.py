"""Catalog tables: diseases, regions, organisations and populations.

These are loaded from the data files in ``yifang/catalog/data`` and may then be edited by an
administrator; a reload never overwrites a row an administrator changed (``edited_by`` set).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yifang.core.db import Base, utcnow


class Disease(Base):
    """A notifiable (or key-surveillance) disease and the rules that apply to its cards.

    ``code`` is Yifang's stable code (see the data file); ``national_code`` is the 4-digit
    code of the national reporting system where known. ``report_limit_hours`` is the legal
    time from diagnosis to online report (2 or 24); ``review_limit_hours`` the county CDC's
    time to review. Incubation period and serial interval are in days.
    """

    __tablename__ = "disease"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    national_code: Mapped[str | None] = mapped_column(String(8), index=True)
    icd10: Mapped[str | None] = mapped_column(String(32))
    name_zh: Mapped[str] = mapped_column(String(64), index=True)
    name_en: Mapped[str] = mapped_column(String(128))
    disease_class: Mapped[str] = mapped_column(String(8))  # A, B, C, other
    managed_as_class_a: Mapped[bool] = mapped_column(Boolean, default=False)
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("disease.code"))
    report_limit_hours: Mapped[int] = mapped_column(Integer, default=24)
    review_limit_hours: Mapped[int] = mapped_column(Integer, default=24)
    # Allowed values of the card's 病例分类 and 病例分类2 (acute/chronic), as code lists.
    classifications: Mapped[list[str]] = mapped_column(JSON, default=list)
    chronicity: Mapped[list[str]] = mapped_column(JSON, default=list)
    subtypes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    incubation_min_days: Mapped[float | None] = mapped_column(Float)
    incubation_max_days: Mapped[float | None] = mapped_column(Float)
    incubation_mean_days: Mapped[float | None] = mapped_column(Float)
    serial_interval_mean_days: Mapped[float | None] = mapped_column(Float)
    serial_interval_sd_days: Mapped[float | None] = mapped_column(Float)
    duplicate_window_days: Mapped[int] = mapped_column(Integer, default=365)
    transmission_route: Mapped[str | None] = mapped_column(String(32))
    valid_from: Mapped[date | None] = mapped_column()
    valid_to: Mapped[date | None] = mapped_column()
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source_version: Mapped[str | None] = mapped_column(String(32))
    edited_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Region(Base):
    """An administrative division keyed by its GB/T 2260 / statistical code.

    Codes are stored without trailing zeros padding: 2 digits province, 4 city, 6 county,
    9 township, 12 village. ``level`` is 1..5 for those.
    """

    __tablename__ = "region"

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    level: Mapped[int] = mapped_column(Integer, index=True)
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("region.code"), index=True)
    name_en: Mapped[str | None] = mapped_column(String(128))
    kind: Mapped[str | None] = mapped_column(String(16))  # 镇, 乡, 街道, 其他 ...
    urban: Mapped[bool | None] = mapped_column(Boolean)
    herding: Mapped[bool | None] = mapped_column(Boolean)
    longitude: Mapped[float | None] = mapped_column(Float)
    latitude: Mapped[float | None] = mapped_column(Float)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    source_version: Mapped[str | None] = mapped_column(String(32))


class Population(Base):
    """Resident population of a region in a year, optionally by sex and age band (years)."""

    __tablename__ = "population"
    __table_args__ = (
        UniqueConstraint("region_code", "year", "sex", "age_from", name="population_cell"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    sex: Mapped[str] = mapped_column(String(1), default="T")  # T total, M, F
    age_from: Mapped[int] = mapped_column(Integer, default=0)
    age_to: Mapped[int | None] = mapped_column(Integer)  # exclusive; None = open band
    count: Mapped[int] = mapped_column(Integer)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str | None] = mapped_column(String(255))


class Organisation(Base):
    """A reporting or receiving organisation: hospital, clinic, CDC, department.

    ``edited_by`` is set when an administrator created or changed the row; a reload of
    ``organisations.csv`` (even with ``refresh``) then leaves it as it is.
    """

    __tablename__ = "organisation"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # hospital, township_health_centre, cdc, ...
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    level: Mapped[str | None] = mapped_column(String(16))  # 三级/二级/一级, city/county CDC
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("organisation.code"))
    phone: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
    edited_by: Mapped[str | None] = mapped_column(String(64))
