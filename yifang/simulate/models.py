"""Ground-truth tables of the simulated city: runs, injected outbreaks, their cards, errors.

Detection is scored against these: an outbreak's cards are the injected cases that were
reported by the end of the run; ``extra_cases`` counts every injected case, reported or
not yet. ``sim_card_error`` lists the cards given a deliberate error (a duplicate's row
names the card it duplicates).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text
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
