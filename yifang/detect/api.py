"""HTTP routes of early warning: signals, mounted under ``/api`` by ``yifang.web``."""

from __future__ import annotations

from datetime import date
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy.orm import Session

from yifang.core.accounts import User
from yifang.core.auth import current_scope, require
from yifang.core.db import SESSION
from yifang.core.jurisdiction import Scope
from yifang.detect import service
from yifang.detect.schemas import SignalDetail, SignalOut, SignalPage

router = APIRouter(tags=["detect"])


async def signal_scope(
    _user: User = Depends(require("signal.view")), scope: Scope = Depends(current_scope)
) -> Scope:
    """The signals' scope: the caller's jurisdiction, for roles that may see signals."""
    return scope


@router.get(
    "/signals", response_model=SignalPage, summary="List signals, newest or best confirmed first"
)
def list_signals(
    status: str | None = Query(None, description="open, quiet, closed …"),
    disease: str | None = Query(None, description="disease code"),
    region: str | None = Query(None, description="region code prefix"),
    since: date | None = Query(None, description="last alarm on or after this date"),
    source: Literal["cards", "syndrome", "stream"] | None = Query(
        None, description="series kind: report cards, a syndrome, another data stream"
    ),
    series: str | None = Query(None, max_length=64, description="disease, syndrome or stream"),
    sort: Literal["newest", "rank"] = Query(
        "newest", description="newest alarm first, or the warnings most sources confirm first"
    ),
    min_corroboration: int | None = Query(
        None, ge=0, le=20, description="at least this many other sources confirm it"
    ),
    cursor: str | None = Query(None, max_length=80, description="next_cursor of the last page"),
    limit: int = Query(50, ge=1, le=500),
    session: Session = SESSION,
    scope: Scope = Depends(signal_scope),
) -> SignalPage:
    try:
        after = service.parse_cursor(cursor, sort)
    except ValueError as exc:
        raise HTTPException(422, detail=f"bad cursor {cursor!r}") from exc
    rows = service.list_signals(
        session,
        scope,
        status=status,
        disease_code=disease,
        region_prefix=region,
        since=since,
        source=source,
        series_code=series,
        sort=sort,
        min_corroboration=min_corroboration,
        cursor=after,
        limit=limit,
    )
    nxt = service.next_cursor(rows[-1], sort) if len(rows) == limit else None
    return SignalPage(items=[SignalOut.model_validate(r) for r in rows], next_cursor=nxt)


@router.get("/signals/{signal_id}", response_model=SignalDetail, summary="One signal with chart")
def get_signal(
    signal_id: int,
    session: Session = SESSION,
    scope: Scope = Depends(signal_scope),
) -> SignalDetail:
    sig = service.get_signal(session, scope, signal_id)
    if sig is None:
        raise HTTPException(404, detail=f"signal {signal_id} not found")
    return SignalDetail.model_validate(sig)
