"""Tables of the early-warning engine: signals and detection runs."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from yifang.core.db import Base, utcnow


class DetectionRun(Base):
    """One run of the engine: what it looked at and what it found."""

    __tablename__ = "detection_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    as_of: Mapped[date] = mapped_column()
    incremental: Mapped[bool] = mapped_column(default=False)
    series: Mapped[int] = mapped_column(Integer, default=0)
    alarms: Mapped[int] = mapped_column(Integer, default=0)
    signals_new: Mapped[int] = mapped_column(Integer, default=0)
    signals_updated: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="running")
    error: Mapped[str | None] = mapped_column(Text)


class Signal(Base):
    """An early-warning signal: one disease in one region alarming under one rule.

    Alarms of the same disease, region and rule on consecutive periods update the open
    signal instead of creating new ones (``alarm_periods`` counts them), because a flood of
    repeated signals is what makes users stop reading them. ``status`` is ``open`` until the
    series stops alarming for ``close_after`` periods (then ``quiet``) or a verifier closes
    it. ``observed``/``expected``/``upperbound`` are those of the latest alarm; ``series``
    holds the counts and thresholds behind the chart.
    """

    __tablename__ = "signal"
    __table_args__ = (
        Index("ix_signal_key", "disease_code", "region_code", "rule", "status"),
        Index("ix_signal_last", "last_date", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    disease_code: Mapped[str] = mapped_column(ForeignKey("disease.code"))
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    region_level: Mapped[str] = mapped_column(String(16))
    granularity: Mapped[str] = mapped_column(String(8))
    rule: Mapped[str] = mapped_column(String(48))
    method: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    first_date: Mapped[date] = mapped_column()
    last_date: Mapped[date] = mapped_column()
    alarm_periods: Mapped[int] = mapped_column(Integer, default=1)
    observed: Mapped[float] = mapped_column(Float)
    expected: Mapped[float | None] = mapped_column(Float)
    upperbound: Mapped[float | None] = mapped_column(Float)
    cases_total: Mapped[int] = mapped_column(Integer, default=0)
    series: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    explanation_zh: Mapped[str] = mapped_column(Text, default="")
    explanation_en: Mapped[str] = mapped_column(Text, default="")
    run_id: Mapped[int | None] = mapped_column(ForeignKey("detection_run.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)
