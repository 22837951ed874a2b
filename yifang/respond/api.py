"""HTTP routes of the response (mounted under ``/api`` by ``yifang.web``).

Verification, events (investigation, cases, samples, grading), plan templates, tasks
(comments, attachments), warnings to other departments, notifications, consultations,
contacts and the command view. Every route reads the logged-in user through
:func:`yifang.core.auth.current_user` and asks for a permission of ``roles.yaml``
(``signal.view``/``signal.respond`` for verification, ``event.view``/``event.manage`` for
events, ``task.view`` for tasks and warnings addressed to the caller); the caller's
:class:`~yifang.core.jurisdiction.Scope` is applied in SQL by the service functions.

Errors are JSON ``{"error", "message_zh", "message_en", "fields"}``: 401, 403, 404 (missing
or outside the caller's jurisdiction), 409 (stale version, transition not allowed) or 422.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile
from fastapi.responses import FileResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yifang.cases.queries import mask_name
from yifang.core.accounts import User
from yifang.core.auth import current_user, scope_for
from yifang.core.db import SESSION, utcnow
from yifang.core.errors import ERROR_RESPONSES, ErrorRoute, FieldError
from yifang.detect.models import Signal
from yifang.respond import (
    command,
    consultation,
    contacts,
    grading,
    service,
    sharing,
    tasks,
)
from yifang.respond import notifications as notes
from yifang.respond.config import LEVELS, grading_config, response_config
from yifang.respond.models import Attachment, Event, EventCase, Notification, Sample, Task
from yifang.respond.schemas import (
    AddressIn,
    ApplyPlanIn,
    AssessIn,
    AttachmentOut,
    CommentIn,
    CommentOut,
    ConclusionIn,
    ConfirmIn,
    ConsultationDetail,
    ConsultationIn,
    ConsultationOut,
    ConsultationStepIn,
    ContactDetail,
    ContactIn,
    ContactOut,
    ConvertIn,
    DecisionIn,
    DecisionOut,
    EventBrief,
    EventDetail,
    EventEditIn,
    EventIn,
    EventOut,
    FollowUpIn,
    FollowUpOut,
    GradeIn,
    GradeOut,
    HistoryOut,
    InvestigateIn,
    ItemOut,
    LinkCaseIn,
    LinkedCaseOut,
    MapEventOut,
    NotificationOut,
    OutcomeIn,
    ReasonIn,
    RecipientOut,
    SampleIn,
    SampleOut,
    SampleResultIn,
    SuggestionOut,
    TaskDetail,
    TaskIn,
    TaskOut,
    TaskStepIn,
    TemplateIn,
    TemplateOut,
    TemplatePatch,
    TimelineOut,
    TimelinePage,
    VerificationOut,
    Versioned,
    WarningIn,
    WarningOut,
)
from yifang.respond.service import Viewer

# --------------------------------------------------------------------------- errors


router = APIRouter(tags=["respond"], route_class=ErrorRoute, responses=ERROR_RESPONSES)


# --------------------------------------------------------------------------- the caller


async def current_viewer(user: User = Depends(current_user)) -> Viewer:
    """The logged-in caller as a :class:`Viewer` (scope, organisation, department, rights)."""
    return Viewer.from_user(user, scope_for(user))


def needs(*permissions: str) -> Callable[..., Awaitable[Viewer]]:
    """A dependency admitting callers holding any of ``permissions`` (else 403)."""

    async def dependency(viewer: Viewer = Depends(current_viewer)) -> Viewer:
        if not any(viewer.can(p) for p in permissions):
            raise service.ForbiddenError(
                f"需要权限:{' 或 '.join(permissions)}",
                f"needs permission {' or '.join(permissions)}",
            )
        return viewer

    dependency.__name__ = "needs_" + "_or_".join(p.replace(".", "_") for p in permissions)
    return dependency


SIGNAL_VIEW = Depends(needs("signal.view"))
SIGNAL_RESPOND = Depends(needs("signal.respond"))
EVENT_VIEW = Depends(needs("event.view"))
EVENT_MANAGE = Depends(needs("event.manage"))
TASK_VIEW = Depends(needs("task.view", "event.view"))
ANYONE = Depends(current_viewer)
DB = SESSION


def _history(session: Session, entity: str, ident: int) -> list[HistoryOut]:
    return [HistoryOut.model_validate(h) for h in service.history(session, entity, ident)]


# --------------------------------------------------------------------------- reference


@router.get("/respond/reference", summary="Code lists of the response (for forms)")
def reference(_v: Viewer = ANYONE) -> dict[str, Any]:
    cfg = response_config()
    return {
        "dismiss_reasons": cfg.dismiss_reasons,
        "checks": cfg.checks,
        "event_types": {k: {"zh": zh, "en": en} for k, (zh, en) in service.EVENT_TYPES.items()},
        "owners": tasks.owners(),
        "levels": {lvl: grading_config().level_names.get(lvl, {}) for lvl in LEVELS},
        "risk_levels": cfg.risk_levels,
        "verification_statuses": {k: v[0] for k, v in service.VERIFICATION.labels.items()},
        "event_statuses": {k: v[0] for k, v in service.EVENT.labels.items()},
        "task_statuses": {k: v[0] for k, v in tasks.TASK.labels.items()},
        "contact_statuses": {k: v[0] for k, v in contacts.CONTACT.labels.items()},
    }


# --------------------------------------------------------------------------- verification


def _verification_outs(session: Session, rows: Sequence[Any]) -> list[VerificationOut]:
    """The verifications with their overdue flag and how their signals were raised (rule,
    method, region level, granularity — read in one query)."""
    ids = {r.signal_id for r in rows}
    raised = (
        {
            sid: (rule, method, level, granularity)
            for sid, rule, method, level, granularity in session.execute(
                select(
                    Signal.id, Signal.rule, Signal.method, Signal.region_level, Signal.granularity
                ).where(Signal.id.in_(ids))
            )
        }
        if ids
        else {}
    )
    now = utcnow()
    outs = []
    for row in rows:
        out = VerificationOut.model_validate(row)
        out.overdue = row.status == service.PENDING and row.due_at < now
        rule, method, level, granularity = raised.get(row.signal_id, ("", "", "", ""))
        out.signal_rule, out.signal_method = rule or "", method or ""
        out.signal_region_level, out.signal_granularity = level or "", granularity or ""
        outs.append(out)
    return outs


def _verification_out(session: Session, row: Any) -> VerificationOut:
    return _verification_outs(session, [row])[0]


@router.get("/verifications", response_model=list[VerificationOut], summary="Verifications")
def list_verifications(
    status: str | None = Query(None, description="pending, dismissed, watching, suspected"),
    overdue: bool | None = Query(None, description="true: pending and past due"),
    escalated: bool | None = Query(None),
    disease: str | None = Query(None),
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0),
    session: Session = DB,
    viewer: Viewer = SIGNAL_VIEW,
) -> list[VerificationOut]:
    rows = service.list_verifications(
        session,
        viewer,
        status=status,
        overdue=overdue,
        escalated=escalated,
        disease_code=disease,
        limit=limit,
        offset=offset,
    )
    return _verification_outs(session, rows)


@router.get("/verifications/{verification_id}", response_model=VerificationOut)
def get_verification(
    verification_id: int, session: Session = DB, viewer: Viewer = SIGNAL_VIEW
) -> VerificationOut:
    return _verification_out(session, service.get_verification(session, viewer, verification_id))


@router.get("/verifications/{verification_id}/history", response_model=list[HistoryOut])
def verification_history(
    verification_id: int, session: Session = DB, viewer: Viewer = SIGNAL_VIEW
) -> list[HistoryOut]:
    service.get_verification(session, viewer, verification_id)
    return _history(session, "verification", verification_id)


@router.post(
    "/verifications/{verification_id}/outcome",
    response_model=VerificationOut,
    summary="Record the verification's outcome",
)
def record_outcome(
    verification_id: int, body: OutcomeIn, session: Session = DB, viewer: Viewer = SIGNAL_RESPOND
) -> VerificationOut:
    row = service.record_outcome(
        session,
        verification_id,
        viewer=viewer,
        version=body.version,
        outcome=body.outcome,
        checks=body.checks,
        findings=body.findings,
        reason_code=body.reason_code,
        reason=body.reason,
        event_title=body.event_title,
        event_type=body.event_type,
        event_tags=body.event_tags,
    )
    return _verification_out(session, row)


# --------------------------------------------------------------------------- events


def _event_detail(session: Session, viewer: Viewer, event: Event) -> EventDetail:
    identified = viewer.scope.identified
    cases = [
        LinkedCaseOut(
            card_id=card.id,
            card_number=card.card_number,
            patient_name=card.patient_name if identified else mask_name(card.patient_name),
            sex=card.sex,
            age_value=card.age_value,
            age_unit=card.age_unit,
            address_code=card.address_code,
            disease_code=card.disease_code,
            classification=card.classification,
            onset_date=card.onset_date,
            death_date=card.death_date,
            unit=link.unit,
            linked_by=link.linked_by,
            linked_at=link.linked_at,
        )
        for link, card in service.event_cases(session, event.id)
    ]
    base = EventOut.model_validate(event).model_dump()
    return EventDetail(
        **base,
        cases=cases,
        samples=[SampleOut.model_validate(s) for s in service.event_samples(session, event.id)],
        grades=[GradeOut.model_validate(g) for g in grading.grades(session, event.id)],
        history=_history(session, "event", event.id),
    )


@router.post("/events", response_model=EventOut, status_code=201, summary="Report an event")
def open_event(body: EventIn, session: Session = DB, viewer: Viewer = EVENT_MANAGE) -> EventOut:
    event = service.open_event(
        session,
        viewer=viewer,
        title=body.title,
        region_code=body.region_code,
        event_type=body.event_type,
        tags=body.tags,
        disease_code=body.disease_code,
        summary=body.summary,
    )
    return EventOut.model_validate(event)


@router.get("/events", response_model=list[EventOut], summary="Events, newest first")
def list_events(
    status: list[str] = Query(default_factory=list),
    disease: str | None = None,
    region: str | None = None,
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0),
    session: Session = DB,
    viewer: Viewer = EVENT_VIEW,
) -> list[EventOut]:
    rows = service.list_events(
        session,
        viewer,
        status=status,
        disease_code=disease,
        region_prefix=region,
        limit=limit,
        offset=offset,
    )
    return [EventOut.model_validate(e) for e in rows]


@router.get("/events/{event_id}", response_model=EventDetail)
def get_event(event_id: int, session: Session = DB, viewer: Viewer = EVENT_VIEW) -> EventDetail:
    return _event_detail(session, viewer, service.get_event(session, viewer, event_id))


@router.patch("/events/{event_id}", response_model=EventOut, summary="Edit description")
def edit_event(
    event_id: int, body: EventEditIn, session: Session = DB, viewer: Viewer = EVENT_MANAGE
) -> EventOut:
    changes = body.model_dump(exclude_unset=True)
    changes.pop("version", None)
    event = service.edit_event(session, event_id, changes, viewer=viewer, version=body.version)
    return EventOut.model_validate(event)


@router.post("/events/{event_id}/investigate", response_model=EventOut)
def investigate(
    event_id: int, body: InvestigateIn, session: Session = DB, viewer: Viewer = EVENT_MANAGE
) -> EventOut:
    event = service.start_investigation(
        session, event_id, viewer=viewer, version=body.version, team=body.team, start=body.start
    )
    return EventOut.model_validate(event)


@router.post("/events/{event_id}/confirm", response_model=EventOut)
def confirm(
    event_id: int, body: ConfirmIn, session: Session = DB, viewer: Viewer = EVENT_MANAGE
) -> EventOut:
    event = service.confirm_event(
        session, event_id, viewer=viewer, version=body.version, findings=body.findings
    )
    return EventOut.model_validate(event)


@router.post("/events/{event_id}/rule-out", response_model=EventOut)
def rule_out(
    event_id: int, body: ReasonIn, session: Session = DB, viewer: Viewer = EVENT_MANAGE
) -> EventOut:
    event = service.rule_out_event(
        session, event_id, viewer=viewer, version=body.version, reason=body.reason or ""
    )
    return EventOut.model_validate(event)


@router.post("/events/{event_id}/respond", response_model=EventOut)
def start_response(
    event_id: int, body: Versioned, session: Session = DB, viewer: Viewer = EVENT_MANAGE
) -> EventOut:
    event = service.start_response(session, event_id, viewer=viewer, version=body.version)
    return EventOut.model_validate(event)


@router.post("/events/{event_id}/close", response_model=EventOut)
def close(
    event_id: int, body: ConclusionIn, session: Session = DB, viewer: Viewer = EVENT_MANAGE
) -> EventOut:
    event = service.close_event(
        session, event_id, viewer=viewer, version=body.version, conclusion=body.conclusion
    )
    return EventOut.model_validate(event)


@router.get("/events/{event_id}/history", response_model=list[HistoryOut])
def event_history(
    event_id: int, session: Session = DB, viewer: Viewer = EVENT_VIEW
) -> list[HistoryOut]:
    service.get_event(session, viewer, event_id)
    return _history(session, "event", event_id)


@router.post("/events/{event_id}/cases", status_code=201, summary="Link a report card")
def link_case(
    event_id: int, body: LinkCaseIn, session: Session = DB, viewer: Viewer = EVENT_MANAGE
) -> dict[str, Any]:
    link = service.link_case(
        session, event_id, body.card_id, viewer=viewer, unit=body.unit, note=body.note
    )
    return {"event_id": event_id, "card_id": link.card_id, "unit": link.unit}


@router.post("/events/{event_id}/cases/{card_id}/unlink", status_code=204)
def unlink_case(
    event_id: int,
    card_id: int,
    reason: str = Query(..., max_length=4000),
    session: Session = DB,
    viewer: Viewer = EVENT_MANAGE,
) -> Response:
    service.unlink_case(session, event_id, card_id, viewer=viewer, reason=reason)
    return Response(status_code=204)


@router.post("/events/{event_id}/samples", response_model=SampleOut, status_code=201)
def add_sample(
    event_id: int, body: SampleIn, session: Session = DB, viewer: Viewer = EVENT_MANAGE
) -> SampleOut:
    sample = service.add_sample(session, event_id, viewer=viewer, data=body.model_dump())
    return SampleOut.model_validate(sample)


@router.post("/samples/{sample_id}/result", response_model=SampleOut)
def sample_result(
    sample_id: int, body: SampleResultIn, session: Session = DB, viewer: Viewer = EVENT_MANAGE
) -> SampleOut:
    sample: Sample = service.record_sample_result(
        session,
        sample_id,
        viewer=viewer,
        version=body.version,
        result=body.result,
        pathogen=body.pathogen,
        result_on=body.result_on,
    )
    return SampleOut.model_validate(sample)


@router.get("/events/{event_id}/grade-suggestion", response_model=SuggestionOut)
def grade_suggestion(
    event_id: int, session: Session = DB, viewer: Viewer = EVENT_VIEW
) -> SuggestionOut:
    event = service.get_event(session, viewer, event_id)
    s = grading.suggest_grade(session, event)
    return SuggestionOut.model_validate(
        {"related_info": s.related_info, "level": s.level, "basis": s.basis_dicts()}
    )


@router.post("/events/{event_id}/grade", response_model=GradeOut, summary="Grade or re-grade")
def grade(
    event_id: int, body: GradeIn, session: Session = DB, viewer: Viewer = EVENT_MANAGE
) -> GradeOut:
    row = grading.grade_event(
        session,
        event_id,
        viewer=viewer,
        version=body.version,
        related_info=body.related_info,
        level=body.level,
        accept=body.accept,
        reason=body.reason,
    )
    return GradeOut.model_validate(row)


@router.post("/events/{event_id}/plan", response_model=list[TaskOut], summary="Apply the plan")
def apply_plan(
    event_id: int, body: ApplyPlanIn, session: Session = DB, viewer: Viewer = EVENT_MANAGE
) -> list[TaskOut]:
    made = tasks.apply_plan(session, event_id, viewer=viewer, template_codes=body.template_codes)
    return [TaskOut.model_validate(t) for t in made]


@router.get("/events/{event_id}/timeline", response_model=TimelinePage)
def timeline(event_id: int, session: Session = DB, viewer: Viewer = EVENT_VIEW) -> TimelinePage:
    entries = command.timeline(session, viewer, event_id)
    return TimelinePage(
        event_id=event_id,
        entries=[TimelineOut.model_validate(e, from_attributes=True) for e in entries],
        hours_to=command.step_durations(entries),
    )


@router.get("/events/{event_id}/report.docx", summary="Final report (Word)")
def event_report(event_id: int, session: Session = DB, viewer: Viewer = EVENT_VIEW) -> Response:
    from yifang.respond.report import event_report_docx

    data = event_report_docx(session, viewer, event_id)
    return Response(
        content=data,
        media_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        headers={"Content-Disposition": f'attachment; filename="event-{event_id}.docx"'},
    )


@router.get("/events/{event_id}/report.pdf", summary="Final report (PDF)")
def event_report_pdf(event_id: int, session: Session = DB, viewer: Viewer = EVENT_VIEW) -> Response:
    from yifang.respond.report_pdf import event_report_pdf as render

    data = render(session, viewer, event_id)
    return Response(
        content=data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="event-{event_id}.pdf"'},
    )


@router.get("/events/{event_id}/places", summary="Townships of the linked cases (for the map)")
def event_places(
    event_id: int, session: Session = DB, viewer: Viewer = EVENT_VIEW
) -> list[dict[str, Any]]:
    from dataclasses import asdict

    from yifang.respond.report import case_places

    service.get_event(session, viewer, event_id)
    return [asdict(p) for p in case_places(session, event_id)]


# --------------------------------------------------------------------------- plans


def _template_out(row: Any) -> TemplateOut:
    out = TemplateOut.model_validate(row)
    out.from_file = row.code in tasks.file_template_codes()
    return out


def _city_only(viewer: Viewer) -> None:
    if viewer.scope.region_prefix:
        raise service.ForbiddenError(
            "只有市级疾控可以修改预案模板", "only the city CDC may edit plan templates"
        )


def _valid_plan(changes: dict[str, Any]) -> None:
    problems = plan_field_errors(changes)
    if problems:
        raise service.BadRequestError(
            "预案模板有误,请按字段修改",
            "the template is not valid: see the fields",
            fields=problems,
        )


@router.get("/plans", response_model=list[TemplateOut], summary="Response plan templates")
def list_plans(session: Session = DB, _v: Viewer = EVENT_VIEW) -> list[TemplateOut]:
    return [_template_out(t) for t in tasks.list_templates(session)]


@router.post(
    "/plans", response_model=TemplateOut, status_code=201, summary="Add a template (city CDC)"
)
def create_plan(
    body: TemplateIn, session: Session = DB, viewer: Viewer = EVENT_MANAGE
) -> TemplateOut:
    _city_only(viewer)
    fields = body.model_dump(exclude={"code"})
    if not fields["name_en"]:
        fields.pop("name_en")
    _valid_plan(fields)
    row = tasks.create_template(session, body.code, fields, actor=viewer.actor)
    return _template_out(row)


@router.post(
    "/plans/{code}/reset",
    response_model=TemplateOut,
    summary="Put a template back as the data file has it (city CDC)",
)
def reset_plan(code: str, session: Session = DB, viewer: Viewer = EVENT_MANAGE) -> TemplateOut:
    _city_only(viewer)
    return _template_out(tasks.reset_template(session, code, actor=viewer.actor))


@router.patch("/plans/{code}", response_model=TemplateOut, summary="Edit a template")
def edit_plan(
    code: str, body: TemplatePatch, session: Session = DB, viewer: Viewer = EVENT_MANAGE
) -> TemplateOut:
    _city_only(viewer)
    changes = body.model_dump(exclude_unset=True)
    read_at = changes.pop("updated_at", None)
    _valid_plan(changes)
    if read_at is not None:
        current = next((t for t in tasks.list_templates(session) if t.code == code), None)
        if current is not None and not _same_moment(current.updated_at, read_at):
            raise service.StaleVersionError(
                "预案模板已被他人修改,请刷新后重试",
                "the template was changed by someone else since you read it; reload and retry",
                field="updated_at",
            )
    row = tasks.update_template(session, code, changes, actor=viewer.actor)
    return _template_out(row)


def _same_moment(stored: datetime | None, given: datetime) -> bool:
    """Whether a stored naive-UTC time is the one a client sent back (to the millisecond:
    browsers keep no finer time, and some databases store none)."""
    if stored is None:
        return False
    if given.tzinfo is not None:
        given = given.astimezone(UTC).replace(tzinfo=None)
    if stored.tzinfo is not None:
        stored = stored.astimezone(UTC).replace(tzinfo=None)
    return abs((stored - given).total_seconds()) < 0.001


#: Longest deadline a plan's action may have (hours): a year.
MAX_DEADLINE_HOURS = 8760


def plan_field_errors(changes: dict[str, Any]) -> list[FieldError]:
    """Every problem of a template edit, by field (``tasks.2.deadline_hours``, ``levels``):
    each action needs a known owner, a Chinese text and a deadline of 1 to 8760 hours;
    levels are I–IV and event types those of the response. Nothing is stored when any."""
    out: list[FieldError] = []

    def bad(field: str, zh: str, en: str) -> None:
        out.append(FieldError(field=field, code=f"{field}.invalid", message_zh=zh, message_en=en))

    for name in ("name_zh", "name_en"):
        if name in changes and not (changes[name] or "").strip():
            bad(name, "名称不能为空", "the name may not be empty")
    unknown_levels = [lvl for lvl in changes.get("levels") or [] if lvl not in LEVELS]
    if unknown_levels:
        bad("levels", f"级别须为 {'、'.join(LEVELS)}", f"levels must be among {', '.join(LEVELS)}")
    unknown_types = [t for t in changes.get("event_types") or [] if t not in service.EVENT_TYPES]
    if unknown_types:
        bad(
            "event_types",
            f"事件类型无效:{'、'.join(unknown_types)}",
            f"unknown event type(s): {', '.join(unknown_types)}",
        )
    if "tasks" in changes:
        actions = changes["tasks"] or []
        if not actions:
            bad("tasks", "预案至少要有一项任务", "a plan needs at least one action")
        known = tasks.owners()
        for i, action in enumerate(actions):
            if not isinstance(action, dict):
                bad(f"tasks.{i}", f"第 {i + 1} 项任务无效", f"action #{i + 1} is not valid")
                continue
            if str(action.get("owner") or "") not in known:
                bad(
                    f"tasks.{i}.owner",
                    f"第 {i + 1} 项:请选择责任部门",
                    f"action #{i + 1}: choose a responsible department",
                )
            if not str(action.get("zh") or "").strip():
                bad(
                    f"tasks.{i}.zh",
                    f"第 {i + 1} 项:请填写任务内容",
                    f"action #{i + 1}: say what must be done (in Chinese)",
                )
            hours = action.get("deadline_hours")
            ok = (
                isinstance(hours, int | float)
                and not isinstance(hours, bool)
                and 1 <= hours <= MAX_DEADLINE_HOURS
            )
            if hours is not None and not ok:
                bad(
                    f"tasks.{i}.deadline_hours",
                    f"第 {i + 1} 项:时限须为 1–{MAX_DEADLINE_HOURS} 小时",
                    f"action #{i + 1}: the deadline must be 1 to {MAX_DEADLINE_HOURS} hours",
                )
    return out


# --------------------------------------------------------------------------- tasks


def _event_brief(session: Session, event_id: int | None) -> EventBrief | None:
    if event_id is None:
        return None
    event = session.get(Event, event_id)
    if event is None:
        return None
    n = session.scalar(
        select(func.count()).select_from(EventCase).where(EventCase.event_id == event_id)
    )
    return EventBrief(
        id=event.id,
        number=event.number,
        disease_code=event.disease_code,
        region_code=event.region_code,
        status=event.status,
        level=event.level,
        cases=max(int(n or 0), event.affected or 0),
    )


@router.get("/tasks", response_model=list[TaskOut], summary="Tasks the caller may see")
def list_tasks(
    event_id: int | None = None,
    status: list[str] = Query(default_factory=list),
    owner: str | None = None,
    mine: bool = Query(False, description="only tasks addressed to the caller"),
    limit: int = Query(200, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    session: Session = DB,
    viewer: Viewer = TASK_VIEW,
) -> list[TaskOut]:
    rows = tasks.list_tasks(
        session,
        viewer,
        event_id=event_id,
        status=status,
        owner=owner,
        mine=mine,
        limit=limit,
        offset=offset,
    )
    counts = _attachment_counts(session, [t.id for t in rows])
    outs = [TaskOut.model_validate(t) for t in rows]
    for out in outs:
        out.attachment_count = counts.get(out.id, 0)
    return outs


def _attachment_counts(session: Session, task_ids: Sequence[int]) -> dict[int, int]:
    """How many files each of the tasks has (one grouped query)."""
    if not task_ids:
        return {}
    rows = session.execute(
        select(Attachment.task_id, func.count())
        .where(Attachment.task_id.in_(set(task_ids)), Attachment.deleted_at.is_(None))
        .group_by(Attachment.task_id)
    )
    return {int(task_id): int(n) for task_id, n in rows}


@router.post("/tasks", response_model=TaskOut, status_code=201, summary="Create a task")
def create_task(body: TaskIn, session: Session = DB, viewer: Viewer = EVENT_MANAGE) -> TaskOut:
    region = body.region_code or viewer.scope.region_prefix or viewer.region_code or ""
    task = tasks.create_task(
        session,
        viewer=viewer,
        title=body.title,
        owner=body.owner,
        region_code=region,
        deadline=body.deadline,
        description=body.description,
        event_id=body.event_id,
        organisation_code=body.organisation_code,
    )
    return TaskOut.model_validate(task)


@router.get("/tasks/{task_id}", response_model=TaskDetail)
def get_task(task_id: int, session: Session = DB, viewer: Viewer = TASK_VIEW) -> TaskDetail:
    task = tasks.get_task(session, viewer, task_id)
    files = [AttachmentOut.model_validate(a) for a in tasks.task_attachments(session, task.id)]
    return TaskDetail(
        **TaskOut.model_validate(task).model_dump(exclude={"attachment_count"}),
        attachment_count=len(files),
        event=_event_brief(session, task.event_id),
        comments=[CommentOut.model_validate(c) for c in tasks.comments(session, task.id)],
        attachments=files,
        history=_history(session, "task", task.id),
    )


@router.get(
    "/tasks/{task_id}/attachments",
    response_model=list[AttachmentOut],
    summary="A task's attachments, oldest first",
)
def list_attachments(
    task_id: int, session: Session = DB, viewer: Viewer = TASK_VIEW
) -> list[AttachmentOut]:
    task = tasks.get_task(session, viewer, task_id)
    return [AttachmentOut.model_validate(a) for a in tasks.task_attachments(session, task.id)]


@router.post("/tasks/{task_id}/comments", response_model=CommentOut, status_code=201)
def add_comment(
    task_id: int, body: CommentIn, session: Session = DB, viewer: Viewer = TASK_VIEW
) -> CommentOut:
    return CommentOut.model_validate(
        tasks.add_comment(session, task_id, viewer=viewer, text=body.text)
    )


@router.post("/tasks/{task_id}/attachments", response_model=AttachmentOut, status_code=201)
async def add_attachment(
    task_id: int,
    file: UploadFile = File(...),
    session: Session = DB,
    viewer: Viewer = TASK_VIEW,
) -> AttachmentOut:
    limit = response_config().attachment_max_bytes
    data = await file.read(limit + 1)
    row = tasks.add_attachment(
        session,
        task_id,
        viewer=viewer,
        filename=file.filename or "file",
        content_type=file.content_type or "application/octet-stream",
        data=data,
    )
    return AttachmentOut.model_validate(row)


@router.post("/tasks/{task_id}/{action}", response_model=TaskOut, summary="Move a task")
def task_step(
    task_id: int,
    action: str,
    body: TaskStepIn,
    session: Session = DB,
    viewer: Viewer = TASK_VIEW,
) -> TaskOut:
    task = tasks.task_step(
        session,
        task_id,
        action,
        viewer=viewer,
        version=body.version,
        result=body.result,
        reason=body.reason,
    )
    return TaskOut.model_validate(task)


@router.get("/attachments/{attachment_id}", summary="Download an attachment")
def get_attachment(
    attachment_id: int, session: Session = DB, viewer: Viewer = TASK_VIEW
) -> FileResponse:
    row, path = tasks.get_attachment(session, viewer, attachment_id)
    if not path.exists():
        raise service.NotFoundError("附件文件丢失", "the attachment's file is missing")
    return FileResponse(path, media_type=row.content_type, filename=row.filename)


@router.delete(
    "/attachments/{attachment_id}",
    status_code=204,
    summary="Withdraw an attachment (by who attached it, or the event's managers)",
)
def withdraw_attachment(
    attachment_id: int, session: Session = DB, viewer: Viewer = TASK_VIEW
) -> Response:
    tasks.withdraw_attachment(session, viewer, attachment_id)
    return Response(status_code=204)


# --------------------------------------------------------------------------- warnings


def _warning_out(session: Session, row: Any) -> WarningOut:
    out = WarningOut.model_validate(row)
    out.recipients = [RecipientOut.model_validate(r) for r in sharing.recipients(session, row.id)]
    return out


@router.post("/events/{event_id}/warnings", response_model=WarningOut, status_code=201)
def send_warning(
    event_id: int, body: WarningIn, session: Session = DB, viewer: Viewer = EVENT_MANAGE
) -> WarningOut:
    row = sharing.send_warning(
        session, event_id, viewer=viewer, to=body.to, advice=body.advice, title=body.title
    )
    return _warning_out(session, row)


@router.get("/warnings", response_model=list[WarningOut], summary="Warnings to the caller")
def list_warnings(
    event_id: int | None = None,
    unacknowledged: bool = False,
    session: Session = DB,
    viewer: Viewer = TASK_VIEW,
) -> list[WarningOut]:
    rows = sharing.list_warnings(session, viewer, event_id=event_id, unacknowledged=unacknowledged)
    return [_warning_out(session, r) for r in rows]


@router.get("/warnings/{warning_id}", response_model=WarningOut)
def get_warning(warning_id: int, session: Session = DB, viewer: Viewer = TASK_VIEW) -> WarningOut:
    return _warning_out(session, sharing.get_warning(session, viewer, warning_id))


@router.post("/warnings/{warning_id}/acknowledge", response_model=RecipientOut)
def acknowledge(warning_id: int, session: Session = DB, viewer: Viewer = TASK_VIEW) -> RecipientOut:
    return RecipientOut.model_validate(sharing.acknowledge(session, warning_id, viewer=viewer))


# --------------------------------------------------------------------------- notifications


def _mine(viewer: Viewer) -> Any:
    return notes.addressed_to(
        viewer.actor, viewer.organisation_code, viewer.department, viewer.region_code
    )


@router.get("/notifications", response_model=list[NotificationOut], summary="My notifications")
def my_notifications(
    unread: bool = False,
    limit: int = Query(50, ge=1, le=500),
    session: Session = DB,
    viewer: Viewer = ANYONE,
) -> list[NotificationOut]:
    stmt = select(Notification).where(_mine(viewer))
    if unread:
        stmt = stmt.where(Notification.read_at.is_(None))
    rows = session.scalars(stmt.order_by(Notification.id.desc()).limit(limit))
    return [NotificationOut.model_validate(r) for r in rows]


@router.get("/notifications/unread-count", summary="How many unread notifications")
def unread_count(session: Session = DB, viewer: Viewer = ANYONE) -> dict[str, int]:
    n = session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(_mine(viewer), Notification.read_at.is_(None))
    )
    return {"unread": int(n or 0)}


@router.post("/notifications/{notification_id}/read", response_model=NotificationOut)
def mark_read(
    notification_id: int, session: Session = DB, viewer: Viewer = ANYONE
) -> NotificationOut:
    row = session.scalars(
        select(Notification).where(Notification.id == notification_id, _mine(viewer))
    ).first()
    if row is None:
        raise service.NotFoundError("通知不存在", f"notification {notification_id} not found")
    if row.read_at is None:
        row.read_at, row.read_by = utcnow(), viewer.actor
    return NotificationOut.model_validate(row)


@router.post("/notifications/read-all", summary="Mark all my notifications read")
def mark_all_read(session: Session = DB, viewer: Viewer = ANYONE) -> dict[str, int]:
    rows = session.scalars(
        select(Notification).where(_mine(viewer), Notification.read_at.is_(None))
    ).all()
    now = utcnow()
    for row in rows:
        row.read_at, row.read_by = now, viewer.actor
    return {"read": len(rows)}


@router.post("/notification-addresses", status_code=201, summary="Add an email/SMS address")
def add_address(body: AddressIn, session: Session = DB, viewer: Viewer = ANYONE) -> dict[str, Any]:
    own = body.recipient_kind == "user" and body.recipient_code == viewer.actor
    if not own and not (viewer.can("admin.users") or viewer.can("event.manage")):
        raise service.ForbiddenError(
            "只能为自己设置通知地址", "you may set only your own notification addresses"
        )
    try:
        row = notes.set_address(
            session,
            recipient_kind=body.recipient_kind,
            recipient_code=body.recipient_code,
            email=body.email,
            phone=body.phone,
        )
    except ValueError as exc:
        raise service.BadRequestError(str(exc), str(exc), field="email") from exc
    return {"id": row.id, "email": row.email, "phone": row.phone}


# --------------------------------------------------------------------------- consultation


def _consultation_detail(session: Session, row: Any) -> ConsultationDetail:
    return ConsultationDetail(
        **ConsultationOut.model_validate(row).model_dump(),
        items=[ItemOut.model_validate(i) for i in consultation.items(session, row.id)],
        decisions=[DecisionOut.model_validate(d) for d in consultation.decisions(session, row.id)],
    )


@router.get("/consultations", response_model=list[ConsultationOut])
def list_consultations(session: Session = DB, viewer: Viewer = EVENT_VIEW) -> list[ConsultationOut]:
    return [
        ConsultationOut.model_validate(c) for c in consultation.list_consultations(session, viewer)
    ]


@router.post("/consultations", response_model=ConsultationDetail, status_code=201)
def create_consultation(
    body: ConsultationIn, session: Session = DB, viewer: Viewer = EVENT_MANAGE
) -> ConsultationDetail:
    row = consultation.create_consultation(
        session,
        viewer=viewer,
        title=body.title,
        kind=body.kind,
        scheduled_at=body.scheduled_at,
        participants=body.participants,
    )
    return _consultation_detail(session, row)


@router.get("/consultations/{consultation_id}", response_model=ConsultationDetail)
def get_consultation(
    consultation_id: int, session: Session = DB, viewer: Viewer = EVENT_VIEW
) -> ConsultationDetail:
    return _consultation_detail(
        session, consultation.get_consultation(session, viewer, consultation_id)
    )


@router.post("/consultations/{consultation_id}/agenda", response_model=ConsultationDetail)
def rebuild_agenda(
    consultation_id: int, session: Session = DB, viewer: Viewer = EVENT_MANAGE
) -> ConsultationDetail:
    row = consultation.get_consultation(session, viewer, consultation_id)
    if row.status != consultation.PLANNED:
        raise service.IllegalTransitionError(
            "只有待召开的会商可以重新生成议程", "only a planned consultation's agenda is rebuilt"
        )
    consultation.build_agenda(session, row, viewer, utcnow())
    return _consultation_detail(session, row)


@router.post("/consultations/{consultation_id}/decisions", response_model=DecisionOut)
def add_decision(
    consultation_id: int, body: DecisionIn, session: Session = DB, viewer: Viewer = EVENT_MANAGE
) -> DecisionOut:
    row = consultation.add_decision(
        session,
        consultation_id,
        viewer=viewer,
        text=body.text,
        item_id=body.item_id,
        task=body.task.model_dump() if body.task else None,
    )
    return DecisionOut.model_validate(row)


@router.post("/consultations/{consultation_id}/{action}", response_model=ConsultationOut)
def consultation_step(
    consultation_id: int,
    action: str,
    body: ConsultationStepIn,
    session: Session = DB,
    viewer: Viewer = EVENT_MANAGE,
) -> ConsultationOut:
    row = consultation.consultation_step(
        session,
        consultation_id,
        action,
        viewer=viewer,
        version=body.version,
        minutes=body.minutes,
        reason=body.reason,
    )
    return ConsultationOut.model_validate(row)


@router.post("/consultation-items/{item_id}/assess", response_model=ItemOut)
def assess(
    item_id: int, body: AssessIn, session: Session = DB, viewer: Viewer = EVENT_MANAGE
) -> ItemOut:
    row = consultation.assess_item(
        session,
        item_id,
        viewer=viewer,
        likelihood=body.likelihood,
        impact=body.impact,
        notes=body.notes,
    )
    return ItemOut.model_validate(row)


# --------------------------------------------------------------------------- contacts


def _contact_out(viewer: Viewer, row: Any) -> ContactOut:
    return ContactOut.model_validate(contacts.contact_view(row, identified=viewer.scope.identified))


@router.get("/contacts", response_model=list[ContactOut])
def list_contacts(
    case_card_id: int | None = None,
    event_id: int | None = None,
    status: str | None = None,
    due_on: date | None = Query(None, description="still to follow up on this day"),
    session: Session = DB,
    viewer: Viewer = EVENT_VIEW,
) -> list[ContactOut]:
    rows = contacts.list_contacts(
        session, viewer, case_card_id=case_card_id, event_id=event_id, status=status, due_on=due_on
    )
    return [_contact_out(viewer, r) for r in rows]


@router.post("/contacts", response_model=ContactOut, status_code=201)
def add_contact(
    body: ContactIn, session: Session = DB, viewer: Viewer = EVENT_MANAGE
) -> ContactOut:
    data = body.model_dump(exclude={"case_card_id", "event_id"})
    row = contacts.add_contact(
        session, body.case_card_id, viewer=viewer, data=data, event_id=body.event_id
    )
    return _contact_out(viewer, row)


@router.get("/contacts/{contact_id}", response_model=ContactDetail)
def get_contact(
    contact_id: int, session: Session = DB, viewer: Viewer = EVENT_VIEW
) -> ContactDetail:
    row = contacts.get_contact(session, viewer, contact_id)
    return ContactDetail(
        **_contact_out(viewer, row).model_dump(),
        follow_ups=[FollowUpOut.model_validate(f) for f in contacts.follow_ups(session, row.id)],
    )


@router.post("/contacts/{contact_id}/follow-ups", response_model=FollowUpOut, status_code=201)
def follow_up(
    contact_id: int, body: FollowUpIn, session: Session = DB, viewer: Viewer = EVENT_MANAGE
) -> FollowUpOut:
    row = contacts.record_follow_up(
        session,
        contact_id,
        viewer=viewer,
        day=body.day,
        condition=body.condition,
        symptoms=body.symptoms,
        temperature=body.temperature,
        note=body.note,
    )
    return FollowUpOut.model_validate(row)


@router.post("/contacts/{contact_id}/lost", response_model=ContactOut)
def contact_lost(
    contact_id: int, body: ReasonIn, session: Session = DB, viewer: Viewer = EVENT_MANAGE
) -> ContactOut:
    row = contacts.mark_lost(
        session, contact_id, viewer=viewer, version=body.version, reason=body.reason or ""
    )
    return _contact_out(viewer, row)


@router.post("/contacts/{contact_id}/convert", summary="The contact became a case")
def convert(
    contact_id: int, body: ConvertIn, session: Session = DB, viewer: Viewer = EVENT_MANAGE
) -> dict[str, Any]:
    contact, card = contacts.convert_to_case(
        session,
        contact_id,
        viewer=viewer,
        version=body.version,
        card=body.card,
        card_id=body.card_id,
    )
    return {
        "contact": _contact_out(viewer, contact).model_dump(mode="json"),
        "card_id": card.id,
        "card_status": card.status,
    }


# --------------------------------------------------------------------------- command view


@router.get("/command/map", response_model=list[MapEventOut], summary="Active events on the map")
def event_map(session: Session = DB, viewer: Viewer = EVENT_VIEW) -> list[MapEventOut]:
    return [MapEventOut.model_validate(e) for e in command.event_map(session, viewer)]


@router.get("/command/board", summary="Tasks by owner and status")
def task_board(
    event_id: int | None = None, session: Session = DB, viewer: Viewer = TASK_VIEW
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Each card also carries its event's number (``event_number``, for callers who may not
    list events), when it was finished (``finished_at``: completed, or cancelled) and how
    many files it has (``attachment_count``)."""
    board = command.task_board(session, viewer, event_id=event_id)
    cards = [c for lanes in board.values() for items in lanes.values() for c in items]
    ids = [c["id"] for c in cards]
    if not ids:
        return board
    finished = {
        tid: (status, done_at, updated_at)
        for tid, status, done_at, updated_at in session.execute(
            select(Task.id, Task.status, Task.done_at, Task.updated_at).where(Task.id.in_(ids))
        )
    }
    event_ids = {c["event_id"] for c in cards if c["event_id"] is not None}
    numbers = (
        dict(session.execute(select(Event.id, Event.number).where(Event.id.in_(event_ids))).all())
        if event_ids
        else {}
    )
    counts = _attachment_counts(session, ids)
    for c in cards:
        status, done_at, updated_at = finished.get(c["id"], (None, None, None))
        c["finished_at"] = (
            done_at if status == tasks.DONE else updated_at if status == tasks.CANCELLED else None
        )
        c["event_number"] = numbers.get(c["event_id"])
        c["attachment_count"] = counts.get(c["id"], 0)
    return board
