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
    """An early-warning signal: one series in one region alarming under one rule.

    A series is a disease's report cards (``source`` ``cards``, ``disease_code`` set), a
    syndrome of the hospital front end (``syndrome``) or another surveillance stream
    (``stream``: school absenteeism, pharmacy sales, ILI% …); ``series_code`` names it (the
    disease, syndrome or stream code) and ``series_name_zh``/``_en`` label it. Signals of
    syndromes and streams have no ``disease_code``.

    Alarms of the same series, region and rule on consecutive periods update the open
    signal instead of creating new ones (``alarm_periods`` counts them), because a flood of
    repeated signals is what makes users stop reading them. ``status`` is ``open`` until the
    series stops alarming for ``close_after`` periods (then ``quiet``) or a verifier closes
    it. ``observed``/``expected``/``upperbound`` are those of the latest alarm; ``series``
    holds the counts and thresholds behind the chart.

    Multi-source triggers (多点触发): ``corroboration`` counts the other sources (series of
    other sources or diseases that ``data/corroboration.yaml`` relates to this one) with a
    signal in the same place and time window, ``corroborated_by`` names them, and
    ``rank_score`` (1 + their weights) orders the signal list so that a warning several
    sources confirm comes first.
    """

    __tablename__ = "signal"
    __table_args__ = (
        Index("ix_signal_key", "disease_code", "region_code", "rule", "status"),
        Index("ix_signal_last", "last_date", "id"),
        Index("ix_signal_series", "series_code", "region_code", "rule", "status"),
        Index("ix_signal_rank", "rank_score", "last_date", "id"),
        # the open signals newest first (list, dashboard count), with the region read from
        # the index itself, so a county's page skips other counties' signals without
        # reading their rows
        Index("ix_signal_status_last", "status", "last_date", "id", "region_code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16), default="cards", server_default="cards")
    series_code: Mapped[str | None] = mapped_column(String(48))
    series_name_zh: Mapped[str] = mapped_column(String(100), default="", server_default="")
    series_name_en: Mapped[str] = mapped_column(String(100), default="", server_default="")
    # None for syndrome and stream signals. Typed ``str`` for the capabilities that read
    # card signals only; code reading every signal checks ``source`` (or None) first.
    disease_code: Mapped[str] = mapped_column(ForeignKey("disease.code"), nullable=True)
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    region_level: Mapped[str] = mapped_column(String(16))
    granularity: Mapped[str] = mapped_column(String(8))
    rule: Mapped[str] = mapped_column(String(48))
    method: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="open")
    first_date: Mapped[date] = mapped_column()
    last_date: Mapped[date] = mapped_column()
    alarm_periods: Mapped[int] = mapped_column(Integer, default=1)
    observed: Mapped[float] = mapped_column(Float)
    expected: Mapped[float | None] = mapped_column(Float)
    upperbound: Mapped[float | None] = mapped_column(Float)
    cases_total: Mapped[int] = mapped_column(Integer, default=0)
    explanation_zh: Mapped[str] = mapped_column(Text, default="")
    explanation_en: Mapped[str] = mapped_column(Text, default="")
    run_id: Mapped[int | None] = mapped_column(ForeignKey("detection_run.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)
    corroboration: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rank_score: Mapped[float] = mapped_column(Float, default=1.0, server_default="1")
    corroborated_by: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Last, and the largest (the chart's periods): SQLite stores a row's columns in order,
    # so a list reading the columns before it never touches the overflow pages it fills.
    series: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
