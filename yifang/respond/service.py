"""Signal verification and events as state machines enforced by the server.

Verification of a signal (初步核实)::

    pending ──dismiss (reason code + text)──▶ dismissed
       │  └──watch──▶ watching ──dismiss──▶ dismissed
       │                  └──suspect──▶ suspected (an Event is opened)
       └──suspect──▶ suspected
    pending ──escalate (past due_at; job)──▶ pending, escalated to the parent CDC

Event::

    suspected ──investigate──▶ investigating ──confirm──▶ confirmed ──respond──▶ responding
        │                           │                                              │
        └──────rule_out─────────────┴──▶ ruled_out ──close──▶ closed ◀──close──────┘

Every transition checks the state it starts from (:class:`Machine`), the version the
caller saw (optimistic locking: an older version is refused with
:class:`StaleVersionError` and nothing is written), leaves a
:class:`~yifang.respond.models.RespondHistory` row with the whole row as it was, and an
audit entry with the fields that changed — who, when, why. All of one operation happens in
the caller's transaction: a crash between its steps leaves nothing of it behind.

Errors are :class:`RespondError` subclasses with a stable code, an HTTP status and
messages in Chinese and English, like the card workflow's.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, false, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from yifang.cases.models import Card
from yifang.catalog.models import Disease, Organisation
from yifang.core.accounts import User
from yifang.core.audit import diff, record
from yifang.core.db import Base, utcnow
from yifang.core.errors import AppError
from yifang.core.jurisdiction import Scope
from yifang.detect.models import Signal
from yifang.respond.config import response_config
from yifang.respond.models import Event, EventCase, RespondHistory, Sample, Task, Verification
from yifang.respond.notifications import notify

# --------------------------------------------------------------------------- errors


class RespondError(AppError):
    """A refused request of the response workflow: ``code`` is stable, ``status`` the HTTP
    status; ``field`` names the field at fault, if one is."""

    code = "respond_error"


class BadRequestError(RespondError):
    """A parameter is missing or unusable (names the field)."""

    status = 422
    code = "bad_request"


class NotFoundError(RespondError):
    """No such record, or not one the caller may see (the two are not told apart)."""

    status = 404
    code = "not_found"


class ForbiddenError(RespondError):
    """The caller may see the record but not do this to it."""

    status = 403
    code = "forbidden"


class StaleVersionError(RespondError):
    """The record changed since the caller read it; nothing was written."""

    status = 409
    code = "stale_version"


class IllegalTransitionError(RespondError):
    """The action is not allowed from the record's current state."""

    status = 409
    code = "illegal_transition"


def require_text(value: str | None, field_name: str, what_zh: str, what_en: str) -> str:
    """``value`` stripped, or :class:`BadRequestError` naming the field when empty."""
    text = (value or "").strip()
    if not text:
        raise BadRequestError(f"{what_zh}必填", f"{what_en} is required", field=field_name)
    return text


# --------------------------------------------------------------------------- the caller


@dataclass(frozen=True)
class Viewer:
    """Who is acting and what they may see: the jurisdiction :class:`Scope` plus the
    organisation, department and permissions the response's rules need."""

    scope: Scope
    organisation_code: str | None = None
    department: str | None = None
    region_code: str | None = None
    permissions: frozenset[str] = field(default_factory=frozenset)

    @property
    def actor(self) -> str:
        """The user name written in history and audit."""
        return self.scope.actor

    def can(self, permission: str) -> bool:
        """Whether the caller's role grants ``permission``."""
        return permission in self.permissions

    @classmethod
    def from_user(cls, user: User, scope: Scope) -> Viewer:
        """The viewer of a logged-in account."""
        role = user.role
        perms = (
            frozenset(role.permissions or []) if role is not None and role.active else frozenset()
        )
        return cls(
            scope=scope,
            organisation_code=user.organisation_code,
            department=user.department,
            region_code=(user.region_code or "").strip() or None,
            permissions=perms if user.active else frozenset(),
        )

    @classmethod
    def system(cls, actor: str = "system") -> Viewer:
        """Jobs and the command line: everything, every permission."""
        return cls(scope=Scope.everything(actor), permissions=frozenset({"*"}))

    @property
    def is_system(self) -> bool:
        """Whether this is a job rather than a person."""
        return "*" in self.permissions

    def may(self, permission: str) -> bool:
        """Like :meth:`can`, with jobs allowed everything."""
        return self.is_system or permission in self.permissions


def region_scope(column: Any, scope: Scope) -> ColumnElement[bool]:
    """Rows whose region code lies within ``scope`` (county prefix; city: all). A scope
    bound to one organisation (a hospital) sees no regional workflow rows."""
    if scope.organisation_code and not scope.region_prefix:
        return false()
    if scope.region_prefix:
        return column.startswith(scope.region_prefix, autoescape=True)
    return true()


# --------------------------------------------------------------------------- machinery


@dataclass(frozen=True)
class Machine:
    """The states of one kind of row and the states each action may start from."""

    entity: str
    labels: Mapping[str, tuple[str, str]]  # state → (zh, en)
    allowed_from: Mapping[str, frozenset[str]]
    actions_zh: Mapping[str, str]

    def check(self, row: Any, action: str, version: int | None) -> None:
        """Refuse a stale version (409) or an action not allowed from the row's state (409)."""
        if version is not None and row.version != version:
            raise StaleVersionError(
                f"记录已被他人修改(当前版本 {row.version},您的版本 {version}),请刷新后重试",
                f"the {self.entity} was changed by someone else (now version {row.version}, "
                f"yours {version}); reload it and retry",
            )
        allowed = self.allowed_from[action]
        if row.status not in allowed:
            zh_from = "、".join(self.labels[s][0] for s in sorted(allowed))
            raise IllegalTransitionError(
                f"「{self.labels.get(row.status, (row.status,))[0]}」状态不能"
                f"{self.actions_zh.get(action, action)}(仅限:{zh_from})",
                f"a {self.entity} in state '{row.status}' cannot '{action}' "
                f"(allowed from: {', '.join(sorted(allowed))})",
            )


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def snapshot(row: Base) -> dict[str, Any]:
    """The row's columns as a JSON-ready dict (for history and audit)."""
    return {c.key: _jsonable(getattr(row, c.key)) for c in row.__table__.columns}


def stale(entity: str) -> StaleVersionError:
    """The error of a lost race detected at flush time."""
    return StaleVersionError(
        "记录已被他人修改,请刷新后重试",
        f"the {entity} was changed by someone else; reload it and retry",
    )


def transition(
    session: Session,
    machine: Machine,
    row: Any,
    action: str,
    *,
    actor: str,
    version: int | None,
    changes: Mapping[str, Any] | None = None,
    to_status: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> Any:
    """Apply one checked transition: state and fields, history row, audit entry.

    ``to_status`` None keeps the state (edits, escalations). A concurrent change that
    committed after ``row`` was read surfaces here as :class:`StaleVersionError`.
    """
    now = now or utcnow()
    machine.check(row, action, version)
    before = snapshot(row)
    for key, value in (changes or {}).items():
        setattr(row, key, value)
    if to_status is not None:
        row.status = to_status
    session.add(
        RespondHistory(
            entity_type=machine.entity,
            entity_id=row.id,
            action=action,
            from_status=before["status"],
            to_status=row.status,
            version=before["version"],
            snapshot=before,
            actor=actor,
            at=now,
            reason=reason,
        )
    )
    try:
        session.flush()
    except StaleDataError as exc:
        raise stale(machine.entity) from exc
    old, new = diff(before, snapshot(row))
    for noise in ("updated_at", "version"):
        old.pop(noise, None)
        new.pop(noise, None)
    record(
        session,
        actor=actor,
        action=f"{machine.entity}.{action}",
        entity_type=machine.entity,
        entity_id=row.id,
        before=old,
        after=new,
        reason=reason,
    )
    return row


def created(session: Session, entity: str, row: Any, *, actor: str, now: datetime) -> None:
    """History and audit of a new workflow row (already flushed)."""
    session.add(
        RespondHistory(
            entity_type=entity,
            entity_id=row.id,
            action="create",
            from_status=None,
            to_status=row.status,
            version=row.version,
            snapshot=snapshot(row),
            actor=actor,
            at=now,
        )
    )
    record(
        session,
        actor=actor,
        action=f"{entity}.create",
        entity_type=entity,
        entity_id=row.id,
        after=snapshot(row),
    )


T = TypeVar("T", bound=Base)


def load_for_update(
    session: Session,
    model: type[T],
    row_id: int,
    clause: ColumnElement[bool],
    what_zh: str,
    what_en: str,
) -> T:
    """The row if ``clause`` lets the caller see it, locked for update where the database
    can; :class:`NotFoundError` otherwise."""
    stmt: Select[Any] = select(model).where(model.id == row_id, clause)  # type: ignore[attr-defined]
    row = session.scalars(stmt.with_for_update()).first()
    if row is None:
        raise NotFoundError(f"{what_zh} {row_id} 不存在", f"{what_en} {row_id} not found")
    return row


def history(session: Session, entity_type: str, entity_id: int) -> list[RespondHistory]:
    """A row's earlier states, oldest first."""
    return list(
        session.scalars(
            select(RespondHistory)
            .where(RespondHistory.entity_type == entity_type, RespondHistory.entity_id == entity_id)
            .order_by(RespondHistory.id)
        )
    )


# --------------------------------------------------------------------------- organisations


def cdc_for_region(session: Session, region_code: str) -> Organisation | None:
    """The CDC responsible for a region: the county CDC for county and township codes, the
    city CDC for city codes (and as the fallback when a county has no CDC listed)."""
    candidates = [region_code[:6]] if len(region_code) >= 6 else []
    candidates.append(region_code[:4])
    for code in candidates:
        org = session.scalars(
            select(Organisation)
            .where(Organisation.kind == "cdc", Organisation.region_code == code)
            .order_by(Organisation.code)
        ).first()
        if org is not None:
            return org
    return None


def parent_cdc(session: Session, organisation_code: str | None, region_code: str) -> str | None:
    """The CDC one level up from ``organisation_code`` (the city CDC for a county CDC)."""
    if organisation_code:
        org = session.get(Organisation, organisation_code)
        while org is not None and org.parent_code:
            org = session.get(Organisation, org.parent_code)
            if org is not None and org.kind == "cdc":
                return org.code
    city = cdc_for_region(session, region_code[:4])
    if city is not None and city.code != organisation_code:
        return city.code
    return None


def notify_cdc(
    session: Session,
    organisation_code: str | None,
    region_code: str,
    *,
    kind: str,
    title: str,
    body: str,
    entity_type: str,
    entity_id: int,
) -> None:
    """Notify a CDC (or, when none is known, the CDC owner of the region)."""
    if organisation_code:
        notify(
            session,
            kind=kind,
            title=title,
            body=body,
            recipient_kind="organisation",
            recipient_code=organisation_code,
            region_code=region_code,
            entity_type=entity_type,
            entity_id=entity_id,
        )
    else:
        notify(
            session,
            kind=kind,
            title=title,
            body=body,
            recipient_kind="owner",
            recipient_code="cdc",
            region_code=region_code,
            entity_type=entity_type,
            entity_id=entity_id,
        )


def disease_name(session: Session, code: str | None) -> str:
    """The Chinese name of a disease (its code when unknown)."""
    if not code:
        return ""
    disease = session.get(Disease, code)
    return disease.name_zh if disease is not None else code


# --------------------------------------------------------------------------- verification

PENDING = "pending"
DISMISSED = "dismissed"
WATCHING = "watching"
SUSPECTED = "suspected"
OUTCOMES = (DISMISSED, WATCHING, SUSPECTED)

VERIFICATION = Machine(
    entity="verification",
    labels={
        PENDING: ("待核实", "pending"),
        DISMISSED: ("已排除", "dismissed"),
        WATCHING: ("继续观察", "keep watching"),
        SUSPECTED: ("疑似事件", "suspected event"),
    },
    allowed_from={
        "dismiss": frozenset({PENDING, WATCHING}),
        "watch": frozenset({PENDING}),
        "suspect": frozenset({PENDING, WATCHING}),
        "escalate": frozenset({PENDING}),
    },
    actions_zh={
        "dismiss": "排除",
        "watch": "继续观察",
        "suspect": "判为疑似事件",
        "escalate": "升级",
    },
)

_OUTCOME_ACTION = {DISMISSED: "dismiss", WATCHING: "watch", SUSPECTED: "suspect"}


def verification_clause(viewer: Viewer) -> ColumnElement[bool]:
    """The verifications the viewer may see: those of regions within their scope, and
    those assigned or escalated to their organisation."""
    own = region_scope(Verification.region_code, viewer.scope)
    if viewer.organisation_code:
        return (
            own
            | (Verification.organisation_code == viewer.organisation_code)
            | (Verification.escalated_to == viewer.organisation_code)
        )
    return own


def verification_deadline(session: Session, signal: Signal) -> datetime:
    """When the signal's verification is due: its creation plus the disease's limit (or,
    for a syndrome's or stream's signal, its source's)."""
    disease = session.get(Disease, signal.disease_code) if signal.disease_code else None
    cfg = response_config()
    hours = cfg.verification_hours(
        signal.disease_code,
        disease.disease_class if disease else "other",
        bool(disease and disease.managed_as_class_a),
        signal.source,
    )
    return signal.created_at + timedelta(hours=hours)


def open_verifications(session: Session, now: datetime | None = None) -> list[Verification]:
    """Create a verification for every open signal that has none; returns the new ones.

    Each goes to the CDC responsible for the signal's region, due by the disease class's
    limit from the signal's creation, and that CDC is notified. Safe to run concurrently:
    a signal verified by a parallel run is skipped (the unique signal id refuses a second).
    """
    now = now or utcnow()
    stmt = (
        select(Signal)
        .outerjoin(Verification, Verification.signal_id == Signal.id)
        .where(Signal.status == "open", Verification.id.is_(None))
        .order_by(Signal.id)
    )
    signals = list(session.scalars(stmt).all())
    cdcs: dict[str, str | None] = {}
    names: dict[str, str] = {}
    pairs: list[tuple[Signal, Verification]] = []
    for signal in signals:
        if signal.region_code not in cdcs:
            cdc = cdc_for_region(session, signal.region_code)
            cdcs[signal.region_code] = cdc.code if cdc else None
        pairs.append(
            (
                signal,
                Verification(
                    signal_id=signal.id,
                    disease_code=signal.disease_code,
                    source=signal.source,
                    series_name_zh=signal.series_name_zh,
                    series_name_en=signal.series_name_en,
                    region_code=signal.region_code,
                    organisation_code=cdcs[signal.region_code],
                    status=PENDING,
                    assigned_at=now,
                    due_at=verification_deadline(session, signal),
                    checks=[],
                    version=1,
                ),
            )
        )
    try:  # one round trip for all; a parallel run's rows make it fall back to one by one
        with session.begin_nested():
            session.add_all([row for _, row in pairs])
            session.flush()
    except IntegrityError:
        kept = []
        for signal, row in pairs:
            fresh = Verification(**{c.key: getattr(row, c.key) for c in _VERIFICATION_COLUMNS})
            try:
                with session.begin_nested():
                    session.add(fresh)
                    session.flush()
            except IntegrityError:
                continue
            kept.append((signal, fresh))
        pairs = kept
    for signal, row in pairs:
        created(session, "verification", row, actor="system", now=now)
        urgent = (row.due_at - signal.created_at) <= timedelta(hours=2)
        if signal.disease_code is None:
            what = signal.series_name_zh or signal.series_code or signal.source
        else:
            if signal.disease_code not in names:
                names[signal.disease_code] = disease_name(session, signal.disease_code)
            what = names[signal.disease_code]
        notify_cdc(
            session,
            row.organisation_code,
            row.region_code,
            kind="verification_assigned_urgent" if urgent else "verification_assigned",
            title=f"预警信号待核实:{what}({signal.region_code})",
            body=f"{signal.explanation_zh}\n请于 {row.due_at:%Y-%m-%d %H:%M} (UTC) 前完成核实。",
            entity_type="verification",
            entity_id=row.id,
        )
    return [row for _, row in pairs]


_VERIFICATION_COLUMNS = [c for c in Verification.__table__.columns if c.key != "id"]


def list_verifications(
    session: Session,
    viewer: Viewer,
    *,
    status: str | None = None,
    overdue: bool | None = None,
    escalated: bool | None = None,
    disease_code: str | None = None,
    now: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Verification]:
    """Verifications within the viewer's jurisdiction, soonest due first."""
    now = now or utcnow()
    stmt = select(Verification).where(verification_clause(viewer))
    if status:
        stmt = stmt.where(Verification.status == status)
    if overdue is True:
        stmt = stmt.where(Verification.status == PENDING, Verification.due_at < now)
    elif overdue is False:
        stmt = stmt.where(~and_(Verification.status == PENDING, Verification.due_at < now))
    if escalated is not None:
        stmt = stmt.where(
            Verification.escalated_at.is_not(None)
            if escalated
            else Verification.escalated_at.is_(None)
        )
    if disease_code:
        stmt = stmt.where(Verification.disease_code == disease_code)
    stmt = stmt.order_by(Verification.due_at, Verification.id).limit(limit).offset(offset)
    return list(session.scalars(stmt))


def get_verification(session: Session, viewer: Viewer, verification_id: int) -> Verification:
    """One verification the viewer may see, else :class:`NotFoundError`."""
    row = session.scalars(
        select(Verification).where(Verification.id == verification_id, verification_clause(viewer))
    ).first()
    if row is None:
        raise NotFoundError(
            f"核实记录 {verification_id} 不存在", f"verification {verification_id} not found"
        )
    return row


def record_outcome(
    session: Session,
    verification_id: int,
    *,
    viewer: Viewer,
    version: int,
    outcome: str,
    checks: Sequence[str] = (),
    findings: str | None = None,
    reason_code: str | None = None,
    reason: str | None = None,
    event_title: str | None = None,
    event_type: str = "other",
    event_tags: Sequence[str] = (),
    now: datetime | None = None,
) -> Verification:
    """Record the verifier's outcome: dismissed (reason code from the list + text), keep
    watching, or suspected event (opens an :class:`Event` in the same transaction).

    Dismissal closes the signal, so a new alarm opens a new signal and a new verification.
    """
    now = now or utcnow()
    cfg = response_config()
    if outcome not in OUTCOMES:
        raise BadRequestError(
            f"核实结果「{outcome}」无效,应为 {'、'.join(OUTCOMES)} 之一",
            f"outcome must be one of {', '.join(OUTCOMES)}",
            field="outcome",
        )
    unknown = [c for c in checks if c not in cfg.checks]
    if unknown:
        raise BadRequestError(
            f"核实内容代码无效:{'、'.join(unknown)}",
            f"unknown check code(s): {', '.join(unknown)} (known: {', '.join(cfg.checks)})",
            field="checks",
        )
    changes: dict[str, Any] = {
        "checks": list(checks),
        "findings": (findings or "").strip() or None,
        "verified_at": now,
        "verified_by": viewer.actor,
    }
    text: str | None = None
    if outcome == DISMISSED:
        if reason_code not in cfg.dismiss_reasons:
            raise BadRequestError(
                f"排除原因代码应为 {'、'.join(cfg.dismiss_reasons)} 之一",
                f"reason_code must be one of {', '.join(cfg.dismiss_reasons)}",
                field="reason_code",
            )
        text = require_text(reason, "reason", "排除说明", "a reason text")
        changes.update(reason_code=reason_code, reason=text)
    else:
        text = (reason or "").strip() or None
        changes.update(reason_code=None, reason=text)
    row = load_for_update(
        session,
        Verification,
        verification_id,
        verification_clause(viewer),
        "核实记录",
        "verification",
    )
    VERIFICATION.check(row, _OUTCOME_ACTION[outcome], version)
    signal = session.get(Signal, row.signal_id)
    assert signal is not None
    if outcome == SUSPECTED:
        title = (event_title or "").strip() or (
            f"{disease_name(session, row.disease_code)}疑似事件({row.region_code})"
        )
        event = open_event(
            session,
            viewer=viewer,
            title=title,
            event_type=event_type,
            tags=event_tags,
            disease_code=row.disease_code,
            region_code=row.region_code,
            signal_id=row.signal_id,
            summary=changes["findings"],
            now=now,
        )
        changes["event_id"] = event.id
    if outcome == DISMISSED:
        signal.status = "closed"
    transition(
        session,
        VERIFICATION,
        row,
        _OUTCOME_ACTION[outcome],
        actor=viewer.actor,
        version=version,
        changes=changes,
        to_status=outcome,
        reason=(
            f"{cfg.dismiss_reasons[reason_code or 'other']['zh']}: {text}"
            if outcome == DISMISSED
            else text
        ),
        now=now,
    )
    return row


def escalate_overdue(session: Session, now: datetime | None = None) -> list[Verification]:
    """Escalate every pending verification past its deadline (plus the configured grace) to
    the parent CDC, once; notifies both CDCs. Run by the periodic job."""
    now = now or utcnow()
    grace = timedelta(hours=response_config().escalate_after_hours)
    rows = list(
        session.scalars(
            select(Verification)
            .where(
                Verification.status == PENDING,
                Verification.escalated_at.is_(None),
                Verification.due_at < now - grace,
            )
            .order_by(Verification.id)
            .with_for_update(skip_locked=True)
        )
    )
    for row in rows:
        target = parent_cdc(session, row.organisation_code, row.region_code)
        transition(
            session,
            VERIFICATION,
            row,
            "escalate",
            actor="system",
            version=row.version,
            changes={"escalated_at": now, "escalated_to": target},
            reason="逾期未核实 overdue",
            now=now,
        )
        name = disease_name(session, row.disease_code)
        for org in {row.organisation_code, target}:
            notify_cdc(
                session,
                org,
                row.region_code,
                kind="verification_escalated",
                title=f"预警信号逾期未核实:{name}({row.region_code})",
                body=f"应于 {row.due_at:%Y-%m-%d %H:%M} (UTC) 前核实,已升级至上级疾控。",
                entity_type="verification",
                entity_id=row.id,
            )
    return rows


# --------------------------------------------------------------------------- events

INVESTIGATING = "investigating"
CONFIRMED = "confirmed"
RULED_OUT = "ruled_out"
RESPONDING = "responding"
CLOSED = "closed"
EVENT_STATUSES = (SUSPECTED, INVESTIGATING, CONFIRMED, RULED_OUT, RESPONDING, CLOSED)
ACTIVE_EVENT_STATUSES = (SUSPECTED, INVESTIGATING, CONFIRMED, RESPONDING)

#: Kinds of event (templates and grading rules refer to them).
EVENT_TYPES: dict[str, tuple[str, str]] = {
    "school_cluster": ("学校/托幼机构聚集性疫情", "cluster in a school or kindergarten"),
    "community_cluster": ("社区/村聚集性疫情", "cluster in a community or village"),
    "foodborne": ("食源性疾病/食物中毒", "food-borne disease or food poisoning"),
    "zoonotic": ("人兽共患病疫情", "zoonotic outbreak"),
    "healthcare": ("医疗机构相关感染", "healthcare-associated outbreak"),
    "imported": ("输入性病例", "imported case"),
    "occupational_poisoning": ("职业中毒", "occupational poisoning"),
    "unexplained_cluster": ("群体性不明原因疾病", "cluster of unexplained illness"),
    "single_case": (
        "甲类及按甲类管理传染病病例",
        "single case of a class A (or managed as A) disease",
    ),
    "other": ("其他", "other"),
}

EVENT = Machine(
    entity="event",
    labels={
        SUSPECTED: ("疑似", "suspected"),
        INVESTIGATING: ("调查中", "investigating"),
        CONFIRMED: ("已确认", "confirmed"),
        RULED_OUT: ("已排除", "ruled out"),
        RESPONDING: ("处置中", "responding"),
        CLOSED: ("已结案", "closed"),
    },
    allowed_from={
        "investigate": frozenset({SUSPECTED}),
        "edit": frozenset({SUSPECTED, INVESTIGATING, CONFIRMED, RESPONDING}),
        "confirm": frozenset({INVESTIGATING}),
        "rule_out": frozenset({SUSPECTED, INVESTIGATING}),
        "respond": frozenset({CONFIRMED}),
        "grade": frozenset({CONFIRMED, RESPONDING}),
        "close": frozenset({RESPONDING, RULED_OUT}),
        "link": frozenset({SUSPECTED, INVESTIGATING, CONFIRMED, RESPONDING}),
    },
    actions_zh={
        "investigate": "开始调查",
        "edit": "修改",
        "confirm": "确认",
        "rule_out": "排除",
        "respond": "启动处置",
        "grade": "定级",
        "close": "结案",
        "link": "关联病例",
    },
)

EDITABLE_EVENT_FIELDS = frozenset(
    {
        "title",
        "event_type",
        "tags",
        "summary",
        "team",
        "investigation_start",
        "investigation_end",
        "findings",
        "affected",
        "deaths",
    }
)


def event_clause(viewer: Viewer) -> ColumnElement[bool]:
    """Events the viewer may see in full: those of regions within their scope, and those
    their organisation (the responsible CDC) handles."""
    own = region_scope(Event.region_code, viewer.scope)
    if viewer.organisation_code:
        return own | (Event.organisation_code == viewer.organisation_code)
    return own


def _check_event_type(event_type: str) -> None:
    if event_type not in EVENT_TYPES:
        raise BadRequestError(
            f"事件类型「{event_type}」无效",
            f"event_type must be one of {', '.join(EVENT_TYPES)}",
            field="event_type",
        )


def open_event(
    session: Session,
    *,
    viewer: Viewer,
    title: str,
    region_code: str,
    event_type: str = "other",
    tags: Sequence[str] = (),
    disease_code: str | None = None,
    signal_id: int | None = None,
    summary: str | None = None,
    now: datetime | None = None,
) -> Event:
    """Open a suspected event (from a verification, or reported directly) and notify the
    responsible CDC."""
    now = now or utcnow()
    _check_event_type(event_type)
    title = require_text(title, "title", "事件名称", "a title")
    if disease_code is not None and session.get(Disease, disease_code) is None:
        raise BadRequestError(
            f"病种 {disease_code} 不存在", f"unknown disease {disease_code}", field="disease_code"
        )
    if not region_code.isdigit() or len(region_code) not in (4, 6, 9, 12):
        raise BadRequestError(
            "地区代码应为 4、6、9 或 12 位数字",
            "region_code must have 4, 6, 9 or 12 digits",
            field="region_code",
        )
    if viewer.scope.region_prefix and not region_code.startswith(viewer.scope.region_prefix):
        raise ForbiddenError(
            "不能在辖区以外登记事件",
            "cannot open an event outside your jurisdiction",
            field="region_code",
        )
    cdc = cdc_for_region(session, region_code)
    event = Event(
        number=f"E{now:%Y%m%d}{secrets.token_hex(3).upper()}",
        title=title[:200],
        event_type=event_type,
        tags=sorted(set(tags)),
        disease_code=disease_code,
        region_code=region_code,
        organisation_code=cdc.code if cdc else None,
        signal_id=signal_id,
        status=SUSPECTED,
        summary=summary,
        team=[],
        suspected_at=now,
        created_by=viewer.actor,
        created_at=now,
        version=1,
    )
    session.add(event)
    session.flush()
    created(session, "event", event, actor=viewer.actor, now=now)
    notify_cdc(
        session,
        event.organisation_code,
        region_code,
        kind="event_opened",
        title=f"疑似事件:{event.title}",
        body=f"事件编号 {event.number}",
        entity_type="event",
        entity_id=event.id,
    )
    return event


def list_events(
    session: Session,
    viewer: Viewer,
    *,
    status: Sequence[str] = (),
    disease_code: str | None = None,
    region_prefix: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Event]:
    """Events within the viewer's jurisdiction, newest first."""
    stmt = select(Event).where(event_clause(viewer))
    if status:
        stmt = stmt.where(Event.status.in_(list(status)))
    if disease_code:
        stmt = stmt.where(Event.disease_code == disease_code)
    if region_prefix:
        stmt = stmt.where(Event.region_code.startswith(region_prefix, autoescape=True))
    return list(session.scalars(stmt.order_by(Event.id.desc()).limit(limit).offset(offset)))


def get_event(session: Session, viewer: Viewer, event_id: int) -> Event:
    """One event the viewer may see, else :class:`NotFoundError`."""
    event = session.scalars(select(Event).where(Event.id == event_id, event_clause(viewer))).first()
    if event is None:
        raise NotFoundError(f"事件 {event_id} 不存在", f"event {event_id} not found")
    return event


def event_for_update(session: Session, viewer: Viewer, event_id: int) -> Event:
    return load_for_update(session, Event, event_id, event_clause(viewer), "事件", "event")


def _clean_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(changes) - EDITABLE_EVENT_FIELDS)
    if unknown:
        raise BadRequestError(
            f"不能修改字段:{'、'.join(unknown)}",
            f"these fields cannot be changed here: {', '.join(unknown)}",
            field=unknown[0],
        )
    out = dict(changes)
    if "event_type" in out:
        _check_event_type(out["event_type"])
    if "title" in out:
        out["title"] = require_text(out["title"], "title", "事件名称", "a title")[:200]
    for key in ("affected", "deaths"):
        if out.get(key) is not None and int(out[key]) < 0:
            raise BadRequestError(f"{key} 不能为负数", f"{key} cannot be negative", field=key)
    start, end = out.get("investigation_start"), out.get("investigation_end")
    if start and end and end < start:
        raise BadRequestError(
            "调查结束日期早于开始日期",
            "investigation_end is before investigation_start",
            field="investigation_end",
        )
    if "tags" in out:
        out["tags"] = sorted(set(out["tags"] or []))
    if "team" in out:
        out["team"] = [str(m).strip() for m in out["team"] or [] if str(m).strip()]
    return out


def _event_step(
    session: Session,
    event_id: int,
    action: str,
    *,
    viewer: Viewer,
    version: int,
    to_status: str | None,
    changes: Mapping[str, Any] | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> Event:
    now = now or utcnow()
    event = event_for_update(session, viewer, event_id)
    stamps = {
        INVESTIGATING: "investigating_at",
        CONFIRMED: "confirmed_at",
        RULED_OUT: "ruled_out_at",
        RESPONDING: "responding_at",
        CLOSED: "closed_at",
    }
    values = dict(changes or {})
    if to_status in stamps:
        values[stamps[to_status]] = now
    transition(
        session,
        EVENT,
        event,
        action,
        actor=viewer.actor,
        version=version,
        changes=values,
        to_status=to_status,
        reason=reason,
        now=now,
    )
    if to_status is not None:
        notify_cdc(
            session,
            event.organisation_code,
            event.region_code,
            kind="event_status",
            title=f"事件{EVENT.labels[to_status][0]}:{event.title}",
            body=f"{event.number} {EVENT.actions_zh[action]}({viewer.actor})",
            entity_type="event",
            entity_id=event.id,
        )
    return event


def edit_event(
    session: Session,
    event_id: int,
    changes: Mapping[str, Any],
    *,
    viewer: Viewer,
    version: int,
    now: datetime | None = None,
) -> Event:
    """Change an event's description or investigation record (team, dates, findings,
    affected and deaths) while it is open."""
    return _event_step(
        session,
        event_id,
        "edit",
        viewer=viewer,
        version=version,
        to_status=None,
        changes=_clean_changes(changes),
        now=now,
    )


def start_investigation(
    session: Session,
    event_id: int,
    *,
    viewer: Viewer,
    version: int,
    team: Sequence[str] = (),
    start: date | None = None,
    now: datetime | None = None,
) -> Event:
    """Send a field investigation team (现场调查): suspected → investigating."""
    now = now or utcnow()
    changes = _clean_changes({"team": list(team), "investigation_start": start or now.date()})
    return _event_step(
        session,
        event_id,
        "investigate",
        viewer=viewer,
        version=version,
        to_status=INVESTIGATING,
        changes=changes,
        now=now,
    )


def confirm_event(
    session: Session,
    event_id: int,
    *,
    viewer: Viewer,
    version: int,
    findings: str | None = None,
    now: datetime | None = None,
) -> Event:
    """The investigation confirms the event: investigating → confirmed (then grade it)."""
    changes: dict[str, Any] = {}
    if findings is not None:
        changes["findings"] = findings
    return _event_step(
        session,
        event_id,
        "confirm",
        viewer=viewer,
        version=version,
        to_status=CONFIRMED,
        changes=changes,
        reason=findings,
        now=now,
    )


def rule_out_event(
    session: Session,
    event_id: int,
    *,
    viewer: Viewer,
    version: int,
    reason: str,
    now: datetime | None = None,
) -> Event:
    """The event is not one (排除): suspected/investigating → ruled_out, with a reason."""
    text = require_text(reason, "reason", "排除原因", "a reason")
    return _event_step(
        session,
        event_id,
        "rule_out",
        viewer=viewer,
        version=version,
        to_status=RULED_OUT,
        changes={"conclusion": text},
        reason=text,
        now=now,
    )


def start_response(
    session: Session,
    event_id: int,
    *,
    viewer: Viewer,
    version: int,
    now: datetime | None = None,
) -> Event:
    """Start the response of a confirmed event: confirmed → responding. Tasks come from
    the plan templates (:func:`yifang.respond.tasks.apply_plan`)."""
    return _event_step(
        session, event_id, "respond", viewer=viewer, version=version, to_status=RESPONDING, now=now
    )


UNFINISHED_TASK = ("open", "accepted", "in_progress", "overdue")


def close_event(
    session: Session,
    event_id: int,
    *,
    viewer: Viewer,
    version: int,
    conclusion: str,
    now: datetime | None = None,
) -> Event:
    """Close an event (结案) with a conclusion; refused while any of its tasks is unfinished."""
    text = require_text(conclusion, "conclusion", "结案结论", "a conclusion")
    unfinished = session.scalars(
        select(Task.id).where(Task.event_id == event_id, Task.status.in_(UNFINISHED_TASK))
    ).all()
    if unfinished:
        raise IllegalTransitionError(
            f"尚有 {len(unfinished)} 项任务未完成或取消,不能结案",
            f"{len(unfinished)} task(s) are not done or cancelled; the event cannot be closed",
            code="tasks_unfinished",
        )
    return _event_step(
        session,
        event_id,
        "close",
        viewer=viewer,
        version=version,
        to_status=CLOSED,
        changes={"conclusion": text},
        reason=text,
        now=now,
    )


def link_case(
    session: Session,
    event_id: int,
    card_id: int,
    *,
    viewer: Viewer,
    unit: str | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> EventCase:
    """Link a report card to an event (the card must be one the viewer may see)."""
    from yifang.cases.queries import scope_clause

    now = now or utcnow()
    event = event_for_update(session, viewer, event_id)
    EVENT.check(event, "link", None)
    card = session.scalars(
        select(Card).where(Card.id == card_id, scope_clause(viewer.scope), Card.status != "deleted")
    ).first()
    if card is None:
        raise NotFoundError(
            f"报告卡 {card_id} 不存在", f"card {card_id} not found", field="card_id"
        )
    exists = session.scalars(
        select(EventCase).where(EventCase.event_id == event_id, EventCase.card_id == card_id)
    ).first()
    if exists is not None:
        return exists
    link = EventCase(
        event_id=event_id,
        card_id=card_id,
        unit=(unit or "").strip()[:100] or None,
        note=note,
        linked_by=viewer.actor,
        linked_at=now,
    )
    session.add(link)
    session.flush()
    record(
        session,
        actor=viewer.actor,
        action="event.link_case",
        entity_type="event",
        entity_id=event_id,
        after={"card_id": card_id, "unit": link.unit},
    )
    return link


def unlink_case(
    session: Session, event_id: int, card_id: int, *, viewer: Viewer, reason: str
) -> None:
    """Remove a wrongly linked card from an event, with a reason (audited)."""
    text = require_text(reason, "reason", "取消关联原因", "a reason")
    event = event_for_update(session, viewer, event_id)
    EVENT.check(event, "link", None)
    link = session.scalars(
        select(EventCase).where(EventCase.event_id == event_id, EventCase.card_id == card_id)
    ).first()
    if link is None:
        raise NotFoundError(
            f"报告卡 {card_id} 未关联到该事件", f"card {card_id} is not linked", field="card_id"
        )
    session.delete(link)
    record(
        session,
        actor=viewer.actor,
        action="event.unlink_case",
        entity_type="event",
        entity_id=event_id,
        before={"card_id": card_id, "unit": link.unit},
        reason=text,
    )
    session.flush()


def event_cases(session: Session, event_id: int) -> list[tuple[EventCase, Card]]:
    """The cards linked to an event with their links, by onset date."""
    rows = session.execute(
        select(EventCase, Card)
        .join(Card, Card.id == EventCase.card_id)
        .where(EventCase.event_id == event_id)
        .order_by(Card.onset_date, Card.id)
    ).all()
    return [(link, card) for link, card in rows]


SAMPLE_RESULTS = ("pending", "positive", "negative", "inconclusive")


def add_sample(
    session: Session,
    event_id: int,
    *,
    viewer: Viewer,
    data: Mapping[str, Any],
    now: datetime | None = None,
) -> Sample:
    """Record a specimen of the investigation (and its result, when known)."""
    now = now or utcnow()
    event = event_for_update(session, viewer, event_id)
    EVENT.check(event, "link", None)
    sample_type = require_text(data.get("sample_type"), "sample_type", "标本类型", "sample_type")
    result = data.get("result") or "pending"
    if result not in SAMPLE_RESULTS:
        raise BadRequestError(
            f"检测结果应为 {'、'.join(SAMPLE_RESULTS)} 之一",
            f"result must be one of {', '.join(SAMPLE_RESULTS)}",
            field="result",
        )
    sample = Sample(
        event_id=event_id,
        card_id=data.get("card_id"),
        sample_type=sample_type[:48],
        source=data.get("source"),
        collected_on=data.get("collected_on"),
        laboratory=data.get("laboratory"),
        test=data.get("test"),
        result=result,
        pathogen=data.get("pathogen"),
        result_on=data.get("result_on"),
        recorded_by=viewer.actor,
        recorded_at=now,
        version=1,
    )
    session.add(sample)
    session.flush()
    record(
        session,
        actor=viewer.actor,
        action="event.sample",
        entity_type="event_sample",
        entity_id=sample.id,
        after=snapshot(sample),
    )
    return sample


def record_sample_result(
    session: Session,
    sample_id: int,
    *,
    viewer: Viewer,
    version: int,
    result: str,
    pathogen: str | None = None,
    result_on: date | None = None,
) -> Sample:
    """Enter a laboratory result of a specimen (optimistic locking on the sample)."""
    if result not in SAMPLE_RESULTS:
        raise BadRequestError(
            f"检测结果应为 {'、'.join(SAMPLE_RESULTS)} 之一",
            f"result must be one of {', '.join(SAMPLE_RESULTS)}",
            field="result",
        )
    sample = session.scalars(
        select(Sample)
        .join(Event, Event.id == Sample.event_id)
        .where(Sample.id == sample_id, event_clause(viewer))
        .with_for_update()
    ).first()
    if sample is None:
        raise NotFoundError(f"标本 {sample_id} 不存在", f"sample {sample_id} not found")
    if sample.version != version:
        raise StaleVersionError(
            f"标本记录已被他人修改(当前版本 {sample.version}),请刷新后重试",
            f"the sample was changed by someone else (now version {sample.version}); reload it",
        )
    before = snapshot(sample)
    sample.result = result
    sample.pathogen = pathogen
    sample.result_on = result_on
    try:
        session.flush()
    except StaleDataError as exc:
        raise stale("sample") from exc
    old, new = diff(before, snapshot(sample))
    record(
        session,
        actor=viewer.actor,
        action="event.sample_result",
        entity_type="event_sample",
        entity_id=sample.id,
        before=old,
        after=new,
    )
    return sample


def event_samples(session: Session, event_id: int) -> list[Sample]:
    """An event's specimens, in the order they were recorded."""
    return list(
        session.scalars(select(Sample).where(Sample.event_id == event_id).order_by(Sample.id))
    )
