"""Reading signals, always within the caller's jurisdiction."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Row, Select, select, tuple_
from sqlalchemy.orm import Session

from yifang.core.jurisdiction import Scope
from yifang.detect.models import Signal


def scoped(stmt: Select[Any], scope: Scope) -> Select[Any]:
    """Restrict a signal query to the regions ``scope`` may see."""
    if scope.region_prefix:
        stmt = stmt.where(Signal.region_code.startswith(scope.region_prefix))
    return stmt


#: Orders of the signal list: ``newest`` (last alarm date, then id) and ``rank`` (the
#: corroboration rank of multi-source triggers first, then newest).
SORTS: tuple[str, ...] = ("newest", "rank")
Cursor = tuple[date, int] | tuple[float, date, int]
#: What a signal list reads: every column but the chart's series (up to 60 periods of
#: JSON), which only a signal's own page shows.
LIST_COLUMNS = [c for c in Signal.__table__.columns if c.key != "series"]


def list_signals(
    session: Session,
    scope: Scope,
    *,
    status: str | None = None,
    disease_code: str | None = None,
    region_prefix: str | None = None,
    since: date | None = None,
    cursor: Cursor | None = None,
    limit: int = 50,
    source: str | None = None,
    series_code: str | None = None,
    sort: str = "newest",
    min_corroboration: int | None = None,
) -> list[Row[Any]]:
    """Signals newest first (by last alarm date, then id), or with ``sort="rank"`` by
    ``rank_score`` (the warnings most sources confirm first) then newest; keyset-paginated
    by ``cursor`` (``(last_date, id)``, or ``(rank_score, last_date, id)`` for rank: see
    :func:`next_cursor`). ``source`` (cards, syndrome, stream) and ``series_code`` (a
    disease, syndrome or stream code) select series; ``min_corroboration`` keeps signals
    confirmed by at least that many other sources.

    The signals come as plain rows of :data:`LIST_COLUMNS` (attributes named as on
    :class:`Signal`), not ORM objects: a page of them is only read, and building and
    tracking objects cost more than the query."""
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
    stmt = scoped(select(*LIST_COLUMNS), scope)
    if status:
        stmt = stmt.where(Signal.status == status)
    if disease_code:
        stmt = stmt.where(Signal.disease_code == disease_code)
    if region_prefix:
        stmt = stmt.where(Signal.region_code.startswith(region_prefix))
    if since:
        stmt = stmt.where(Signal.last_date >= since)
    if source:
        stmt = stmt.where(Signal.source == source)
    if series_code:
        stmt = stmt.where(Signal.series_code == series_code)
    if min_corroboration is not None:
        stmt = stmt.where(Signal.corroboration >= min_corroboration)
    if sort == "rank":
        if cursor:
            if len(cursor) != 3:
                raise ValueError("a rank cursor is (rank_score, last_date, id)")
            stmt = stmt.where(
                tuple_(Signal.rank_score, Signal.last_date, Signal.id) < tuple_(*cursor)
            )
        order: tuple[Any, ...] = (
            Signal.rank_score.desc(),
            Signal.last_date.desc(),
            Signal.id.desc(),
        )
    else:
        if cursor:
            if len(cursor) != 2:
                raise ValueError("a cursor is (last_date, id)")
            stmt = stmt.where(tuple_(Signal.last_date, Signal.id) < tuple_(*cursor))
        order = (Signal.last_date.desc(), Signal.id.desc())
    return list(session.execute(stmt.order_by(*order).limit(limit)).all())


def next_cursor(last: Signal | Row[Any], sort: str = "newest") -> str:
    """The cursor text of the page after the one ending with ``last``: ``DATE_ID``, or
    ``SCORE_DATE_ID`` for the rank order (parsed back by :func:`parse_cursor`)."""
    key = f"{last.last_date.isoformat()}_{last.id}"
    return f"{last.rank_score!r}_{key}" if sort == "rank" else key


def parse_cursor(text: str | None, sort: str = "newest") -> Cursor | None:
    """A cursor from :func:`next_cursor`'s text; ValueError when it is not one."""
    if not text:
        return None
    parts = text.split("_")
    try:
        if sort == "rank":
            score, day, ident = parts
            return float(score), date.fromisoformat(day), int(ident)
        day, ident = parts
        return date.fromisoformat(day), int(ident)
    except ValueError as exc:
        raise ValueError(f"bad cursor {text!r}") from exc


def get_signal(session: Session, scope: Scope, signal_id: int) -> Signal | None:
    """One signal, or None when it does not exist or lies outside ``scope``."""
    sig: Signal | None = session.scalars(
        scoped(select(Signal).where(Signal.id == signal_id), scope)
    ).first()
    return sig
