"""Ground-truth tables of the simulated city: runs, injected outbreaks, their cards, errors.

Detection is scored against these: an outbreak's cards are the injected cases that were
reported by the end of the run; ``extra_cases`` counts every injected case, reported or
not yet. ``sim_card_error`` lists the cards given a deliberate error (a duplicate's row
names the card it duplicates).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from yifang.core.audit import BigId
from yifang.core.db import Base, utcnow


class SimRun(Base):
    """One simulation written into this database."""

    __tablename__ = "sim_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    city_code: Mapped[str] = mapped_column(String(12))
    seed: Mapped[int] = mapped_column(Integer)
    start_date: Mapped[date] = mapped_column()
    end_date: Mapped[date] = mapped_column()
    scale: Mapped[float] = mapped_column(Float, default=1.0)
    errors_share: Mapped[float] = mapped_column(Float, default=0.0)
    cards: Mapped[int] = mapped_column(Integer, default=0)
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the generated cards
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SimOutbreak(Base):
    """An injected outbreak. Dates are onset dates (local); ``townships`` lists region codes."""

    __tablename__ = "sim_outbreak"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sim_run.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 1.. within the run
    kind: Mapped[str] = mapped_column(String(16))  # point_source, propagated, kindergarten, ...
    disease_code: Mapped[str] = mapped_column(String(16), index=True)
    region_code: Mapped[str] = mapped_column(String(12))
    townships: Mapped[list[str]] = mapped_column(JSON, default=list)
    place_name: Mapped[str | None] = mapped_column(String(100))
    place_kind: Mapped[str | None] = mapped_column(String(32))
    start_date: Mapped[date] = mapped_column()
    end_date: Mapped[date] = mapped_column()
    extra_cases: Mapped[int] = mapped_column(Integer)
    reported_cases: Mapped[int] = mapped_column(Integer)
    rt: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)


class SimOutbreakCard(Base):
    """A card belonging to an injected outbreak."""

    __tablename__ = "sim_outbreak_card"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    outbreak_id: Mapped[int] = mapped_column(ForeignKey("sim_outbreak.id"), index=True)
    card_number: Mapped[str] = mapped_column(String(32), index=True)


class SimCardError(Base):
    """A card carrying a deliberate error (kind: bad_id_checksum, missing_field, ...)."""

    __tablename__ = "sim_card_error"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sim_run.id"), index=True)
    card_number: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    detail: Mapped[str] = mapped_column(String(200))
    duplicate_of: Mapped[str | None] = mapped_column(String(32))


class SimPlace(Base):
    """A generated place of the run (school, kindergarten, pharmacy, elderly home)."""

    __tablename__ = "sim_place"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sim_run.id"), index=True)
    place_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(24))
    name: Mapped[str] = mapped_column(String(100))
    region_code: Mapped[str] = mapped_column(String(12))
    capacity: Mapped[int] = mapped_column(Integer)  # enrolment of schools, 0 otherwise


class SimEncounter(Base):
    """A simulated hospital encounter with its truth.

    ``kind``: ``diagnosis`` (the visit at which a notifiable case is diagnosed), ``prior``
    (an earlier visit of that case with an unspecific diagnosis) or ``background`` (a
    non-notifiable condition). ``visit_time`` is local time (China Standard Time), naive.
    ``true_disease_code`` is the catalog leaf disease of a notifiable case (null for
    background visits); ``card_number`` its card if one was entered by the end of the run.
    """

    __tablename__ = "sim_encounter"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sim_run.id"), index=True)
    encounter_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(12))
    visit_time: Mapped[datetime] = mapped_column()
    org_code: Mapped[str] = mapped_column(String(20))
    department: Mapped[str] = mapped_column(String(32))
    region_code: Mapped[str] = mapped_column(String(12))
    age: Mapped[int] = mapped_column(Integer)
    sex: Mapped[str] = mapped_column(String(1))
    icd10: Mapped[str] = mapped_column(String(16))
    diagnosis: Mapped[str] = mapped_column(String(64))
    chief_complaint: Mapped[str] = mapped_column(String(100))
    temperature: Mapped[float] = mapped_column(Float)  # °C
    true_disease_code: Mapped[str | None] = mapped_column(String(16))
    card_number: Mapped[str | None] = mapped_column(String(32))
    outbreak_number: Mapped[int | None] = mapped_column(Integer)


class SimEncounterLab(Base):
    """A laboratory result of a simulated encounter (local LIS test codes, local times)."""

    __tablename__ = "sim_encounter_lab"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sim_run.id"), index=True)
    encounter_id: Mapped[str] = mapped_column(String(40), index=True)
    test_code: Mapped[str] = mapped_column(String(24))
    test_name: Mapped[str] = mapped_column(String(64))
    specimen: Mapped[str] = mapped_column(String(24))
    result: Mapped[str] = mapped_column(String(64))
    positive: Mapped[bool] = mapped_column(Boolean)
    collected_at: Mapped[datetime] = mapped_column()
    reported_at: Mapped[datetime] = mapped_column()


class SimStream(Base):
    """One data stream at one place over the run, as parallel arrays.

    ``days`` are day offsets from ``first_date`` (the run's start) on which the stream has
    a value; ``values`` and ``denominators`` (null when the stream has none) hold them. The
    three are little-endian int32 arrays as bytes (``numpy.frombuffer(b, "<i4")``): a
    ten-year series is 15 kB instead of a JSON list to parse.
    Streams: school_absence[_fever|_gi|_rash] (pupils absent / enrolled),
    pharmacy_fever_cough and pharmacy_antidiarrhoeal (packs / all packs sold), ili and
    fever_clinic (visits / monitored outpatient visits), resp_lab_<pathogen> (positive /
    tested specimens), livestock_brucella (sero-positive / tested sheep). Expand to the long
    table with :func:`yifang.simulate.output.stream_rows`.
    """

    __tablename__ = "sim_stream"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sim_run.id"), index=True)
    stream: Mapped[str] = mapped_column(String(40), index=True)
    region_code: Mapped[str] = mapped_column(String(12))
    place_id: Mapped[str] = mapped_column(String(32))
    first_date: Mapped[date] = mapped_column()
    days: Mapped[bytes] = mapped_column(LargeBinary)
    values: Mapped[bytes] = mapped_column(LargeBinary)
    denominators: Mapped[bytes | None] = mapped_column(LargeBinary)
