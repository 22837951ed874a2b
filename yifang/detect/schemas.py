"""Signals as the API returns them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class SignalOut(BaseModel):
    """One early-warning signal with its explanation and chart data."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    source: str
    series_code: str | None
    series_name_zh: str
    series_name_en: str
    disease_code: str | None
    region_code: str
    region_level: str
    granularity: str
    rule: str
    method: str
    params: dict[str, Any]
    status: str
    first_date: date
    last_date: date
    alarm_periods: int
    observed: float
    expected: float | None
    upperbound: float | None
    cases_total: int
    explanation_zh: str
    explanation_en: str
    created_at: datetime
    updated_at: datetime
    version: int
    corroboration: int
    rank_score: float
    corroborated_by: list[dict[str, Any]] | None


class SignalDetail(SignalOut):
    """A signal with the series behind its chart."""

    series: dict[str, Any]


class SignalPage(BaseModel):
    """One page of signals; pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[SignalOut]
    next_cursor: str | None
