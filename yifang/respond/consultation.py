"""Consultation (研判会商): risk-assessment meetings with an agenda built from the data.

A consultation is scheduled (例行, e.g. weekly) or ad hoc (专题). Its agenda is built from
what is open in the jurisdiction when it is created: the open signals and their
verification, the active events, and key indicators (cards of the last 7 days against the
7 before for the leading diseases; overdue verifications and tasks). Each item is assessed
on a risk matrix — likelihood × impact, each 1-5 — whose product falls in a band of
response.yaml. Minutes are required to close the meeting; decisions that assign work
become tasks.

States::

    planned ──start──▶ in_session ──close (minutes)──▶ closed
    planned ──cancel (reason)──▶ cancelled
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yifang.cases.models import Card
from yifang.cases.queries import scope_clause
from yifang.core.audit import record
from yifang.core.db import utcnow
from yifang.detect.models import Signal
from yifang.detect.service import list_signals
from yifang.respond.config import response_config
from yifang.respond.models import (
    Consultation,
    ConsultationDecision,
    ConsultationItem,
    Event,
    Task,
    Verification,
)
from yifang.respond.service import (
    ACTIVE_EVENT_STATUSES,
    PENDING,
    BadRequestError,
    IllegalTransitionError,
    Machine,
    NotFoundError,
    Viewer,
    created,
    disease_name,
    event_clause,
    load_for_update,
    region_scope,
    require_text,
    transition,
    verification_clause,
)
from yifang.respond.tasks import UNFINISHED, create_task, task_clause

PLANNED = "planned"
IN_SESSION = "in_session"
CLOSED = "closed"
CANCELLED = "cancelled"
KINDS = ("scheduled", "ad_hoc")

CONSULTATION = Machine(
    entity="consultation",
    labels={
        PLANNED: ("待召开", "planned"),
        IN_SESSION: ("进行中", "in session"),
        CLOSED: ("已结束", "closed"),
        CANCELLED: ("已取消", "cancelled"),
    },
    allowed_from={
        "start": frozenset({PLANNED}),
        "close": frozenset({IN_SESSION}),
        "cancel": frozenset({PLANNED}),
        "edit": frozenset({PLANNED, IN_SESSION}),
    },
    actions_zh={"start": "开始", "close": "结束", "cancel": "取消", "edit": "修改"},
)


def consultation_clause(viewer: Viewer) -> Any:
    """Consultations of the viewer's jurisdiction."""
    return region_scope(Consultation.region_code, viewer.scope)


def _signal_items(session: Session, viewer: Viewer) -> list[dict[str, Any]]:
    limit = response_config().agenda_signal_limit
    items = []
    for sig in list_signals(session, viewer.scope, status="open", limit=limit):
        status = session.scalar(select(Verification.status).where(Verification.signal_id == sig.id))
        items.append(
            {
                "item_type": "signal",
                "ref_id": sig.id,
                "title": (
                    f"{disease_name(session, sig.disease_code) or sig.series_name_zh} "
                    f"{sig.region_code} ({sig.rule})"
                ),
                "summary": {
                    "disease_code": sig.disease_code,
                    "region_code": sig.region_code,
                    "observed": sig.observed,
                    "expected": sig.expected,
                    "first_date": sig.first_date.isoformat(),
                    "last_date": sig.last_date.isoformat(),
                    "verification": status,
                },
            }
        )
    return items


def _event_items(session: Session, viewer: Viewer) -> list[dict[str, Any]]:
    items = []
    for event in session.scalars(
        select(Event)
        .where(event_clause(viewer), Event.status.in_(ACTIVE_EVENT_STATUSES))
        .order_by(Event.id)
    ):
        items.append(
            {
                "item_type": "event",
                "ref_id": event.id,
                "title": f"{event.number} {event.title}",
                "summary": {
                    "status": event.status,
                    "level": event.level,
                    "related_info": event.related_info,
                    "disease_code": event.disease_code,
                    "region_code": event.region_code,
                },
            }
        )
    return items


def key_indicators(session: Session, viewer: Viewer, now: datetime) -> list[dict[str, Any]]:
    """Cards of the last 7 days against the 7 before for the leading diseases, and the
    counts of overdue verifications and tasks — all within the viewer's jurisdiction."""
    cfg = response_config()
    week = now - timedelta(days=7)
    before = now - timedelta(days=14)
    base = select(Card.disease_code, func.count()).where(
        scope_clause(viewer.scope), Card.status != "deleted"
    )
    this = dict(
        session.execute(
            base.where(Card.diagnosis_time >= week, Card.diagnosis_time < now).group_by(
                Card.disease_code
            )
        ).all()
    )
    last = dict(
        session.execute(
            base.where(Card.diagnosis_time >= before, Card.diagnosis_time < week).group_by(
                Card.disease_code
            )
        ).all()
    )
    items = []
    top = sorted(this.items(), key=lambda kv: (-kv[1], kv[0]))[: cfg.indicator_top_diseases]
    for code, n in top:
        prev = int(last.get(code, 0))
        items.append(
            {
                "item_type": "indicator",
                "ref_id": None,
                "title": f"{disease_name(session, code)}:近7天 {n} 例(前7天 {prev} 例)",
                "summary": {"disease_code": code, "last_7_days": int(n), "previous_7_days": prev},
            }
        )
    overdue_v = session.scalar(
        select(func.count())
        .select_from(Verification)
        .where(
            verification_clause(viewer), Verification.status == PENDING, Verification.due_at < now
        )
    )
    overdue_t = session.scalar(
        select(func.count())
        .select_from(Task)
        .where(task_clause(viewer), Task.status.in_(UNFINISHED), Task.deadline < now)
    )
    items.append(
        {
            "item_type": "indicator",
            "ref_id": None,
            "title": f"逾期未核实信号 {overdue_v or 0} 个,逾期任务 {overdue_t or 0} 项",
            "summary": {"overdue_verifications": overdue_v or 0, "overdue_tasks": overdue_t or 0},
        }
    )
    return items


def build_agenda(
    session: Session, consultation: Consultation, viewer: Viewer, now: datetime
) -> list[ConsultationItem]:
    """Replace the agenda with the current signals, events and indicators."""
    for old in session.scalars(
        select(ConsultationItem).where(ConsultationItem.consultation_id == consultation.id)
    ):
        session.delete(old)
    session.flush()
    specs = [
        *_event_items(session, viewer),
        *_signal_items(session, viewer),
        *key_indicators(session, viewer, now),
    ]
    rows = [
        ConsultationItem(consultation_id=consultation.id, position=i + 1, **spec)
        for i, spec in enumerate(specs)
    ]
    session.add_all(rows)
    session.flush()
    return rows


def create_consultation(
    session: Session,
    *,
    viewer: Viewer,
    title: str,
    kind: str = "scheduled",
    scheduled_at: datetime | None = None,
    participants: Sequence[str] = (),
    now: datetime | None = None,
) -> Consultation:
    """Plan a consultation for the viewer's jurisdiction and build its agenda."""
    now = now or utcnow()
    if kind not in KINDS:
        raise BadRequestError(
            f"会商类型应为 {'、'.join(KINDS)} 之一",
            f"kind must be one of {', '.join(KINDS)}",
            field="kind",
        )
    text = require_text(title, "title", "会商主题", "a title")
    region = viewer.scope.region_prefix or viewer.region_code or ""
    if not region:
        from yifang.core.settings import get_settings

        region = get_settings().city_code.rstrip("0") or get_settings().city_code
    row = Consultation(
        kind=kind,
        title=text[:200],
        region_code=region[:12],
        scheduled_at=scheduled_at or now,
        status=PLANNED,
        participants=[p.strip() for p in participants if p.strip()],
        created_by=viewer.actor,
        created_at=now,
        version=1,
    )
    session.add(row)
    session.flush()
    build_agenda(session, row, viewer, now)
    created(session, "consultation", row, actor=viewer.actor, now=now)
    return row


def get_consultation(session: Session, viewer: Viewer, consultation_id: int) -> Consultation:
    """One consultation the viewer may see, else :class:`NotFoundError`."""
    row = session.scalars(
        select(Consultation).where(Consultation.id == consultation_id, consultation_clause(viewer))
    ).first()
    if row is None:
        raise NotFoundError(
            f"会商 {consultation_id} 不存在", f"consultation {consultation_id} not found"
        )
    return row


def list_consultations(session: Session, viewer: Viewer, limit: int = 100) -> list[Consultation]:
    """Consultations of the viewer's jurisdiction, latest first."""
    return list(
        session.scalars(
            select(Consultation)
            .where(consultation_clause(viewer))
            .order_by(Consultation.scheduled_at.desc(), Consultation.id.desc())
            .limit(limit)
        )
    )


def items(session: Session, consultation_id: int) -> list[ConsultationItem]:
    """The agenda, in order."""
    return list(
        session.scalars(
            select(ConsultationItem)
            .where(ConsultationItem.consultation_id == consultation_id)
            .order_by(ConsultationItem.position)
        )
    )


def decisions(session: Session, consultation_id: int) -> list[ConsultationDecision]:
    """The decisions, in the order they were taken."""
    return list(
        session.scalars(
            select(ConsultationDecision)
            .where(ConsultationDecision.consultation_id == consultation_id)
            .order_by(ConsultationDecision.id)
        )
    )


def _for_update(session: Session, viewer: Viewer, consultation_id: int) -> Consultation:
    return load_for_update(
        session, Consultation, consultation_id, consultation_clause(viewer), "会商", "consultation"
    )


def consultation_step(
    session: Session,
    consultation_id: int,
    action: str,
    *,
    viewer: Viewer,
    version: int,
    minutes: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> Consultation:
    """start / close (with minutes) / cancel (with a reason); ``edit`` saves draft minutes."""
    now = now or utcnow()
    row = _for_update(session, viewer, consultation_id)
    changes: dict[str, Any] = {}
    to: str | None
    if action == "start":
        to = IN_SESSION
    elif action == "close":
        changes.update(
            minutes=require_text(minutes, "minutes", "会议纪要", "minutes"), closed_at=now
        )
        to = CLOSED
    elif action == "cancel":
        reason = require_text(reason, "reason", "取消原因", "a reason")
        to = CANCELLED
    elif action == "edit":
        changes["minutes"] = minutes
        to = None
    else:
        raise BadRequestError(
            f"会商操作「{action}」无效",
            "action must be start, close, cancel or edit",
            field="action",
        )
    return transition(
        session,
        CONSULTATION,
        row,
        action,
        actor=viewer.actor,
        version=version,
        changes=changes,
        to_status=to,
        reason=reason,
        now=now,
    )


def assess_item(
    session: Session,
    item_id: int,
    *,
    viewer: Viewer,
    likelihood: int,
    impact: int,
    notes: str | None = None,
) -> ConsultationItem:
    """Place an agenda item on the risk matrix (likelihood and impact 1-5)."""
    for name, value in (("likelihood", likelihood), ("impact", impact)):
        if not 1 <= value <= 5:
            raise BadRequestError(f"{name} 应为 1-5", f"{name} must be 1 to 5", field=name)
    item = session.get(ConsultationItem, item_id)
    if item is None:
        raise NotFoundError(f"议题 {item_id} 不存在", f"agenda item {item_id} not found")
    meeting = get_consultation(session, viewer, item.consultation_id)
    if meeting.status not in (PLANNED, IN_SESSION):
        raise IllegalTransitionError("会商已结束,不能再评估", "the consultation is over")
    before = {"likelihood": item.likelihood, "impact": item.impact, "risk_level": item.risk_level}
    item.likelihood, item.impact = likelihood, impact
    item.risk_score = likelihood * impact
    item.risk_level = response_config().risk_level(item.risk_score)
    item.notes = notes
    session.flush()
    record(
        session,
        actor=viewer.actor,
        action="consultation.assess",
        entity_type="consultation",
        entity_id=meeting.id,
        before=before,
        after={
            "item_id": item.id,
            "likelihood": likelihood,
            "impact": impact,
            "risk_level": item.risk_level,
        },
    )
    return item


def add_decision(
    session: Session,
    consultation_id: int,
    *,
    viewer: Viewer,
    text: str,
    item_id: int | None = None,
    task: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> ConsultationDecision:
    """Record a decision; with ``task`` (owner, title, deadline, event_id?) it becomes a
    task addressed to that owner."""
    now = now or utcnow()
    body = require_text(text, "text", "决定内容", "a decision")
    meeting = get_consultation(session, viewer, consultation_id)
    if meeting.status not in (PLANNED, IN_SESSION):
        raise IllegalTransitionError("会商已结束,不能再增加决定", "the consultation is over")
    made = None
    if task:
        made = create_task(
            session,
            viewer=viewer,
            title=str(task.get("title") or body),
            owner=str(task.get("owner") or ""),
            region_code=meeting.region_code,
            deadline=task.get("deadline"),
            description=body,
            event_id=task.get("event_id"),
            consultation_id=meeting.id,
            organisation_code=task.get("organisation_code"),
            now=now,
        )
    row = ConsultationDecision(
        consultation_id=meeting.id,
        item_id=item_id,
        text=body,
        task_id=made.id if made else None,
        decided_by=viewer.actor,
        decided_at=now,
    )
    session.add(row)
    session.flush()
    record(
        session,
        actor=viewer.actor,
        action="consultation.decision",
        entity_type="consultation",
        entity_id=meeting.id,
        after={"decision_id": row.id, "task_id": row.task_id},
    )
    return row


def signal_of(session: Session, signal_id: int) -> Signal | None:
    """The signal an agenda item refers to."""
    return session.get(Signal, signal_id)
