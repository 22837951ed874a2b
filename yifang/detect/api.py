"""HTTP routes of early warning: signals, mounted under ``/api`` by ``yifang.web``."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy.orm import Session

from yifang.core.accounts import User
from yifang.core.auth import current_scope, require
from yifang.core.db import get_session
from yifang.core.jurisdiction import Scope
from yifang.detect import service
from yifang.detect.schemas import SignalDetail, SignalOut, SignalPage

router = APIRouter(tags=["detect"])


def signal_scope(
    _user: User = Depends(require("signal.view")), scope: Scope = Depends(current_scope)
) -> Scope:
    """The signals' scope: the caller's jurisdiction, for roles that may see signals."""
    return scope


def _parse_cursor(cursor: str | None) -> tuple[date, int] | None:
    if not cursor:
        return None
    try:
        day, _, ident = cursor.partition("_")
        return date.fromisoformat(day), int(ident)
    except ValueError as exc:
        raise HTTPException(422, detail=f"bad cursor {cursor!r}") from exc


@router.get("/signals", response_model=SignalPage, summary="List signals, newest first")
def list_signals(
    status: str | None = Query(None, description="open, quiet, closed …"),
    disease: str | None = Query(None, description="disease code"),
    region: str | None = Query(None, description="region code prefix"),
    since: date | None = Query(None, description="last alarm on or after this date"),
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    limit: int = Query(50, ge=1, le=500),
    session: Session = Depends(get_session),
    scope: Scope = Depends(signal_scope),
) -> SignalPage:
    rows = service.list_signals(
        session,
        scope,
        status=status,
        disease_code=disease,
        region_prefix=region,
        since=since,
        cursor=_parse_cursor(cursor),
        limit=limit,
    )
    nxt = f"{rows[-1].last_date.isoformat()}_{rows[-1].id}" if len(rows) == limit else None
    return SignalPage(items=[SignalOut.model_validate(r) for r in rows], next_cursor=nxt)


@router.get("/signals/{signal_id}", response_model=SignalDetail, summary="One signal with chart")
def get_signal(
    signal_id: int,
    session: Session = Depends(get_session),
    scope: Scope = Depends(signal_scope),
) -> SignalDetail:
    sig = service.get_signal(session, scope, signal_id)
    if sig is None:
        raise HTTPException(404, detail=f"signal {signal_id} not found")
    return SignalDetail.model_validate(sig)
