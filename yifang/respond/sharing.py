"""Horizontal sharing (横向通报): de-identified warnings to the other departments concerned.

A warning says what a department needs to act and nothing about persons: the disease, the
townships with their case counts, the first and last onset dates, the event's grade and the
CDC's advice. :func:`warning_content` builds it from the linked cards' disease, address
code (cut to the township) and dates only, so names, ID numbers, phones and addresses
cannot reach it. Each addressee acknowledges receipt; unacknowledged warnings are listed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, or_, select
from sqlalchemy.orm import Session

from yifang.catalog.models import Region
from yifang.core.audit import record
from yifang.core.db import utcnow
from yifang.respond.models import Event, SharedWarning, WarningRecipient
from yifang.respond.notifications import notify
from yifang.respond.service import (
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    Viewer,
    disease_name,
    event_cases,
    event_clause,
    region_scope,
    require_text,
)
from yifang.respond.tasks import owners

#: The only keys a warning's content may hold (checked in the tests).
CONTENT_KEYS = frozenset(
    {
        "event_number",
        "disease_code",
        "disease_name",
        "event_type",
        "level",
        "related_info",
        "cases",
        "deaths",
        "townships",
        "first_onset",
        "last_onset",
    }
)


def _region_name(session: Session, code: str) -> str:
    region = session.get(Region, code)
    return region.name if region is not None else code


def warning_content(session: Session, event: Event) -> dict[str, Any]:
    """The de-identified facts of an event: disease, townships with counts, dates, grade."""
    cases = event_cases(session, event.id)
    towns = Counter(card.address_code[:9] for _, card in cases)
    onsets = sorted(card.onset_date for _, card in cases)
    return {
        "event_number": event.number,
        "disease_code": event.disease_code,
        "disease_name": disease_name(session, event.disease_code),
        "event_type": event.event_type,
        "level": event.level,
        "related_info": event.related_info,
        "cases": max(len(cases), event.affected or 0),
        "deaths": max(sum(1 for _, c in cases if c.death_date is not None), event.deaths or 0),
        "townships": [
            {"code": code, "name": _region_name(session, code), "cases": n}
            for code, n in sorted(towns.items())
        ],
        "first_onset": onsets[0].isoformat() if onsets else None,
        "last_onset": onsets[-1].isoformat() if onsets else None,
    }


def send_warning(
    session: Session,
    event_id: int,
    *,
    viewer: Viewer,
    to: Sequence[str],
    advice: str,
    title: str | None = None,
    now: datetime | None = None,
) -> SharedWarning:
    """Send a de-identified warning about an event to the owners ``to`` and notify them."""
    now = now or utcnow()
    text = require_text(advice, "advice", "防控建议", "advice")
    known = owners()
    recipients = sorted(set(to))
    if not recipients:
        raise BadRequestError("须选择通报部门", "name at least one department", field="to")
    unknown = [o for o in recipients if o not in known]
    if unknown:
        raise BadRequestError(
            f"部门代码无效:{'、'.join(unknown)}",
            f"unknown department(s): {', '.join(unknown)}",
            field="to",
        )
    event = session.scalars(select(Event).where(Event.id == event_id, event_clause(viewer))).first()
    if event is None:
        raise NotFoundError(f"事件 {event_id} 不存在", f"event {event_id} not found")
    content = warning_content(session, event)
    heading = (title or "").strip() or f"{content['disease_name'] or '公共卫生'}预警通报"
    warning = SharedWarning(
        event_id=event.id,
        region_code=event.region_code,
        title=heading[:200],
        content=content,
        advice=text,
        sent_by=viewer.actor,
        sent_at=now,
    )
    session.add(warning)
    session.flush()
    for owner in recipients:
        session.add(WarningRecipient(warning_id=warning.id, owner=owner))
        notify(
            session,
            kind="warning",
            title=warning.title,
            body=_plain(content, text),
            recipient_kind="owner",
            recipient_code=owner,
            region_code=event.region_code,
            entity_type="warning",
            entity_id=warning.id,
        )
    session.flush()
    record(
        session,
        actor=viewer.actor,
        action="warning.send",
        entity_type="warning",
        entity_id=warning.id,
        after={"event_id": event.id, "to": recipients},
    )
    return warning


def _plain(content: dict[str, Any], advice: str) -> str:
    towns = "、".join(f"{t['name']} {t['cases']} 例" for t in content["townships"])
    dates = (
        f"发病时间 {content['first_onset']} 至 {content['last_onset']}"
        if content["first_onset"]
        else ""
    )
    return f"{content['disease_name']}:共 {content['cases']} 例({towns})。{dates}\n建议:{advice}"


def _addressed(viewer: Viewer) -> ColumnElement[bool]:
    if not viewer.department:
        return false()
    cond = and_(
        WarningRecipient.warning_id == SharedWarning.id,
        WarningRecipient.owner == viewer.department,
    )
    matched = exists().where(cond)
    if viewer.region_code:
        return and_(
            matched, SharedWarning.region_code.startswith(viewer.region_code, autoescape=True)
        )
    return matched


def warning_clause(viewer: Viewer) -> ColumnElement[bool]:
    """Warnings the viewer may see: those of their jurisdiction for event viewers, those
    addressed to their department for everyone."""
    if viewer.may("event.view"):
        return or_(region_scope(SharedWarning.region_code, viewer.scope), _addressed(viewer))
    return _addressed(viewer)


def list_warnings(
    session: Session,
    viewer: Viewer,
    *,
    event_id: int | None = None,
    unacknowledged: bool = False,
    limit: int = 100,
) -> list[SharedWarning]:
    """Warnings the viewer may see, newest first (``unacknowledged``: the viewer's
    department has not acknowledged them yet)."""
    stmt = select(SharedWarning).where(warning_clause(viewer))
    if event_id is not None:
        stmt = stmt.where(SharedWarning.event_id == event_id)
    if unacknowledged and viewer.department:
        stmt = stmt.where(
            exists().where(
                WarningRecipient.warning_id == SharedWarning.id,
                WarningRecipient.owner == viewer.department,
                WarningRecipient.acknowledged_at.is_(None),
            )
        )
    return list(session.scalars(stmt.order_by(SharedWarning.id.desc()).limit(limit)))


def recipients(session: Session, warning_id: int) -> list[WarningRecipient]:
    """Who a warning went to and who acknowledged it."""
    return list(
        session.scalars(
            select(WarningRecipient)
            .where(WarningRecipient.warning_id == warning_id)
            .order_by(WarningRecipient.owner)
        )
    )


def get_warning(session: Session, viewer: Viewer, warning_id: int) -> SharedWarning:
    """One warning the viewer may see, else :class:`NotFoundError`."""
    row = session.scalars(
        select(SharedWarning).where(SharedWarning.id == warning_id, warning_clause(viewer))
    ).first()
    if row is None:
        raise NotFoundError(f"通报 {warning_id} 不存在", f"warning {warning_id} not found")
    return row


def acknowledge(
    session: Session, warning_id: int, *, viewer: Viewer, now: datetime | None = None
) -> WarningRecipient:
    """The viewer's department acknowledges a warning (once; repeating changes nothing)."""
    now = now or utcnow()
    get_warning(session, viewer, warning_id)
    row = session.scalars(
        select(WarningRecipient)
        .where(
            WarningRecipient.warning_id == warning_id,
            WarningRecipient.owner == (viewer.department or ""),
        )
        .with_for_update()
    ).first()
    if row is None:
        raise ForbiddenError(
            "该通报未发送给您的部门", "this warning was not sent to your department"
        )
    if row.acknowledged_at is None:
        row.acknowledged_at = now
        row.acknowledged_by = viewer.actor
        session.flush()
        record(
            session,
            actor=viewer.actor,
            action="warning.acknowledge",
            entity_type="warning",
            entity_id=warning_id,
            after={"owner": row.owner},
        )
    return row
