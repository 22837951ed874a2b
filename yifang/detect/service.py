"""Reading signals, always within the caller's jurisdiction."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Select, select, tuple_
from sqlalchemy.orm import Session, defer

from yifang.core.jurisdiction import Scope
from yifang.detect.models import Signal


def scoped(stmt: Select[Any], scope: Scope) -> Select[Any]:
    """Restrict a signal query to the regions ``scope`` may see."""
    if scope.region_prefix:
        stmt = stmt.where(Signal.region_code.startswith(scope.region_prefix))
    return stmt


def list_signals(
    session: Session,
    scope: Scope,
    *,
    status: str | None = None,
    disease_code: str | None = None,
    region_prefix: str | None = None,
    since: date | None = None,
    cursor: tuple[date, int] | None = None,
    limit: int = 50,
) -> list[Signal]:
    """Signals newest first (by last alarm date, then id), keyset-paginated by ``cursor``."""
    stmt = scoped(select(Signal), scope)
    if status:
        stmt = stmt.where(Signal.status == status)
    if disease_code:
        stmt = stmt.where(Signal.disease_code == disease_code)
    if region_prefix:
        stmt = stmt.where(Signal.region_code.startswith(region_prefix))
    if since:
        stmt = stmt.where(Signal.last_date >= since)
    if cursor:
        stmt = stmt.where(tuple_(Signal.last_date, Signal.id) < tuple_(*cursor))
    # Lists never show the chart: leave its series (up to 60 periods of JSON) unread.
    stmt = (
        stmt.options(defer(Signal.series))
        .order_by(Signal.last_date.desc(), Signal.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def get_signal(session: Session, scope: Scope, signal_id: int) -> Signal | None:
    """One signal, or None when it does not exist or lies outside ``scope``."""
    sig: Signal | None = session.scalars(
        scoped(select(Signal).where(Signal.id == signal_id), scope)
    ).first()
    return sig
