"""Command view data (指挥调度): open events on the map, the task board by department and
status, and each event's timeline from the first signal to its closure.

Locations are region centroids from the catalog (longitude/latitude, WGS 84 degrees): the
region's own point where the catalog has one, else the mean of the points of the regions
below it (a county from its townships).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yifang.catalog.models import Region
from yifang.detect.models import Signal
from yifang.respond.models import (
    Event,
    EventCase,
    EventGrade,
    RespondHistory,
    SharedWarning,
    Task,
    Verification,
    WarningRecipient,
)
from yifang.respond.service import (
    ACTIVE_EVENT_STATUSES,
    Viewer,
    disease_name,
    event_clause,
    get_event,
)
from yifang.respond.tasks import TASK_STATUSES, task_clause


def centroid(session: Session, region_code: str) -> tuple[float | None, float | None]:
    """(longitude, latitude) of a region: its own point, else the mean of those below it."""
    region = session.get(Region, region_code)
    if region is not None and region.longitude is not None and region.latitude is not None:
        return region.longitude, region.latitude
    lon, lat = session.execute(
        select(func.avg(Region.longitude), func.avg(Region.latitude)).where(
            Region.code.startswith(region_code, autoescape=True),
            Region.code != region_code,
            Region.longitude.is_not(None),
        )
    ).one()
    return (float(lon), float(lat)) if lon is not None else (None, None)


def event_map(session: Session, viewer: Viewer) -> list[dict[str, Any]]:
    """Active events of the viewer's jurisdiction with their location and case counts."""
    counts = dict(
        session.execute(select(EventCase.event_id, func.count()).group_by(EventCase.event_id)).all()
    )
    out = []
    for event in session.scalars(
        select(Event)
        .where(event_clause(viewer), Event.status.in_(ACTIVE_EVENT_STATUSES))
        .order_by(Event.id)
    ):
        lon, lat = centroid(session, event.region_code)
        region = session.get(Region, event.region_code)
        out.append(
            {
                "id": event.id,
                "number": event.number,
                "title": event.title,
                "status": event.status,
                "level": event.level,
                "related_info": event.related_info,
                "disease_code": event.disease_code,
                "disease_name": disease_name(session, event.disease_code),
                "region_code": event.region_code,
                "region_name": region.name if region else event.region_code,
                "longitude": lon,
                "latitude": lat,
                "cases": int(counts.get(event.id, 0)),
            }
        )
    return out


def task_board(
    session: Session, viewer: Viewer, *, event_id: int | None = None, now: datetime | None = None
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Tasks the viewer may see, grouped by owner then status (every status present)."""
    board: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: {s: [] for s in TASK_STATUSES}
    )
    stmt = select(Task).where(task_clause(viewer))
    if event_id is not None:
        stmt = stmt.where(Task.event_id == event_id)
    for task in session.scalars(stmt.order_by(Task.deadline, Task.id)):
        board[task.owner][task.status].append(
            {
                "id": task.id,
                "title": task.title,
                "event_id": task.event_id,
                "organisation_code": task.organisation_code,
                "deadline": task.deadline,
                "version": task.version,
            }
        )
    return dict(board)


@dataclass(frozen=True)
class TimelineEntry:
    """One moment in an event's life."""

    at: datetime
    kind: str
    action: str
    actor: str
    detail: dict[str, Any]


def timeline(session: Session, viewer: Viewer, event_id: int) -> list[TimelineEntry]:
    """Everything that happened to an event, from its signal to its closure, by time."""
    event = get_event(session, viewer, event_id)
    entries: list[TimelineEntry] = []
    verification = None
    if event.signal_id is not None:
        signal = session.get(Signal, event.signal_id)
        if signal is not None:
            entries.append(
                TimelineEntry(
                    signal.created_at,
                    "signal",
                    "raised",
                    "system",
                    {
                        "signal_id": signal.id,
                        "rule": signal.rule,
                        "first_date": signal.first_date.isoformat(),
                        "explanation_zh": signal.explanation_zh,
                    },
                )
            )
        verification = session.scalars(
            select(Verification).where(Verification.signal_id == event.signal_id)
        ).first()
    refs: list[tuple[str, int]] = [("event", event.id)]
    if verification is not None:
        refs.append(("verification", verification.id))
    task_ids = list(session.scalars(select(Task.id).where(Task.event_id == event.id)))
    refs.extend(("task", t) for t in task_ids)
    for kind, ident in refs:
        for h in session.scalars(
            select(RespondHistory).where(
                RespondHistory.entity_type == kind, RespondHistory.entity_id == ident
            )
        ):
            detail: dict[str, Any] = {"from": h.from_status, "to": h.to_status, "reason": h.reason}
            if kind != "event":
                detail["id"] = ident
            entries.append(TimelineEntry(h.at, kind, h.action, h.actor, detail))
    for link in session.scalars(select(EventCase).where(EventCase.event_id == event.id)):
        entries.append(
            TimelineEntry(
                link.linked_at, "case", "linked", link.linked_by, {"card_id": link.card_id}
            )
        )
    for grade in session.scalars(select(EventGrade).where(EventGrade.event_id == event.id)):
        entries.append(
            TimelineEntry(
                grade.at,
                "grade",
                "graded",
                grade.actor,
                {
                    "level": grade.level,
                    "related_info": grade.related_info,
                    "accepted": grade.accepted,
                },
            )
        )
    for warning in session.scalars(select(SharedWarning).where(SharedWarning.event_id == event.id)):
        entries.append(
            TimelineEntry(warning.sent_at, "warning", "sent", warning.sent_by, {"id": warning.id})
        )
        for rec in session.scalars(
            select(WarningRecipient).where(
                WarningRecipient.warning_id == warning.id,
                WarningRecipient.acknowledged_at.is_not(None),
            )
        ):
            assert rec.acknowledged_at is not None
            entries.append(
                TimelineEntry(
                    rec.acknowledged_at,
                    "warning",
                    "acknowledged",
                    rec.acknowledged_by or "",
                    {"id": warning.id, "owner": rec.owner},
                )
            )
    entries.sort(key=lambda e: e.at)
    return entries


def step_durations(entries: list[TimelineEntry]) -> dict[str, float]:
    """Hours from the first entry (the signal) to each event state's first reaching."""
    if not entries:
        return {}
    start = entries[0].at
    out: dict[str, float] = {}
    for e in entries:
        if e.kind in ("event", "verification") and e.detail.get("to"):
            key = f"{e.kind}.{e.detail['to']}"
            out.setdefault(key, round((e.at - start).total_seconds() / 3600, 2))
    return out
