"""Response plans and tasks: templates per event type × level, tasks with owners, deadlines,
comments, attachments, reminders and escalation.

Task states::

    open ──accept──▶ accepted ──start──▶ in_progress ──complete──▶ done
      │                 │                     │
      └─────────────────┴──── past deadline (job) ──▶ overdue ──accept/start/complete──▶ …
    open/accepted/in_progress/overdue ──cancel (reason)──▶ cancelled

A task is addressed to an *owner* — a department of ``roles.yaml`` (education, agriculture,
market_regulation, culture_tourism, public_security, civil_affairs) or a health-sector
owner of ``response.yaml`` (cdc, health_commission, hospital) — within the event's region,
and optionally to one organisation. Owners see their tasks and nothing else of the event
beyond a de-identified summary; the CDC sees every task of its jurisdiction.

Plan templates come from ``data/plans.yaml`` into the ``plan_template`` table on first use;
an edited template (``edited_by`` set) is never overwritten by a reload.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, false, or_, select
from sqlalchemy.orm import Session

from yifang.catalog.models import Organisation
from yifang.core.accounts import departments
from yifang.core.audit import record
from yifang.core.db import utcnow
from yifang.core.settings import get_settings
from yifang.respond.config import plans_file, response_config
from yifang.respond.models import Attachment, Event, PlanTemplate, Task, TaskComment
from yifang.respond.notifications import notify
from yifang.respond.service import (
    ACTIVE_EVENT_STATUSES,
    BadRequestError,
    ForbiddenError,
    IllegalTransitionError,
    Machine,
    NotFoundError,
    Viewer,
    created,
    event_clause,
    load_for_update,
    region_scope,
    require_text,
    transition,
)

# --------------------------------------------------------------------------- owners


def owners() -> dict[str, dict[str, str]]:
    """Every task owner: code → {zh, en} (roles.yaml departments + response.yaml owners)."""
    out = {d["code"]: {"zh": d["name_zh"], "en": d["name_en"]} for d in departments()}
    out.update(response_config().owners)
    return out


def _check_owner(owner: str) -> None:
    if owner not in owners():
        raise BadRequestError(
            f"责任部门「{owner}」无效",
            f"owner must be one of {', '.join(owners())}",
            field="owner",
        )


# --------------------------------------------------------------------------- templates


#: A template's code: lower-case letters, digits and underscores, starting with a letter.
TEMPLATE_CODE = re.compile(r"^[a-z][a-z0-9_]{1,47}$")
_TEMPLATE_FIELDS = frozenset(
    {"name_zh", "name_en", "event_types", "diseases", "tags", "levels", "tasks", "active"}
)


def _file_fields(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A template's fields as plans.yaml gives them."""
    for task in spec["tasks"]:
        _check_owner(task["owner"])
    return {
        "name_zh": spec["name_zh"],
        "name_en": spec["name_en"],
        "event_types": list(spec.get("event_types") or []),
        "diseases": list(spec.get("diseases") or []),
        "tags": list(spec.get("tags") or []),
        "levels": list(spec.get("levels") or []),
        "tasks": list(spec["tasks"]),
    }


def file_template_codes() -> set[str]:
    """The codes of the templates plans.yaml defines (those a reset can restore)."""
    return {str(spec["code"]) for spec in plans_file().get("templates") or []}


def load_templates(session: Session) -> int:
    """Insert missing templates and refresh unedited ones from plans.yaml; returns changes."""
    changed = 0
    for spec in plans_file().get("templates") or []:
        fields = _file_fields(spec)
        row = session.get(PlanTemplate, spec["code"])
        if row is None:
            session.add(PlanTemplate(code=spec["code"], active=True, **fields))
            changed += 1
        elif not row.edited_by and any(getattr(row, k) != v for k, v in fields.items()):
            for k, v in fields.items():
                setattr(row, k, v)
            changed += 1
    session.flush()
    return changed


def list_templates(session: Session) -> list[PlanTemplate]:
    """Every template (loaded from the data file the first time), by code."""
    if session.scalars(select(PlanTemplate.code).limit(1)).first() is None:
        load_templates(session)
    return list(session.scalars(select(PlanTemplate).order_by(PlanTemplate.code)))


def update_template(
    session: Session, code: str, changes: Mapping[str, Any], *, actor: str
) -> PlanTemplate:
    """Edit a template (an administrator's change, kept across reloads). Audited."""
    row = _template(session, code)
    _check_template_changes(changes)
    return _change_template(
        session, row, changes, edited_by=actor, actor=actor, action="plan_template.edit"
    )


def _template(session: Session, code: str) -> PlanTemplate:
    """The template under ``code`` (the file's loaded the first time), else NotFoundError."""
    list_templates(session)
    row = session.get(PlanTemplate, code)
    if row is None:
        raise NotFoundError(f"预案模板 {code} 不存在", f"plan template {code} not found")
    return row


def _change_template(
    session: Session,
    row: PlanTemplate,
    fields: Mapping[str, Any],
    *,
    edited_by: str | None,
    actor: str,
    action: str,
) -> PlanTemplate:
    """Set ``fields`` and who edited it (None: as the file has it), and audit the change."""
    before = {k: getattr(row, k) for k in fields} | {"edited_by": row.edited_by}
    for k, v in fields.items():
        setattr(row, k, v)
    row.edited_by = edited_by
    session.flush()
    record(
        session,
        actor=actor,
        action=action,
        entity_type="plan_template",
        entity_id=row.code,
        before=before,
        after=dict(fields),
    )
    return row


def create_template(
    session: Session, code: str, fields: Mapping[str, Any], *, actor: str
) -> PlanTemplate:
    """A new template of the city's own (kept across reloads: it is not in plans.yaml).
    It needs a free code, a Chinese name and at least one action. Audited."""
    list_templates(session)
    code = (code or "").strip()
    if not TEMPLATE_CODE.match(code):
        raise BadRequestError(
            "模板代码须为小写字母开头的字母、数字或下划线(2–48 位)",
            "the code must be 2-48 lower-case letters, digits or underscores, starting with "
            "a letter",
            field="code",
        )
    if session.get(PlanTemplate, code) is not None:
        raise BadRequestError(
            f"模板代码 {code} 已被使用", f"the code {code} is already in use", field="code"
        )
    _check_template_changes(fields)
    if not str(fields.get("name_zh") or "").strip():
        raise BadRequestError("名称不能为空", "the name may not be empty", field="name_zh")
    if not fields.get("tasks"):
        raise BadRequestError(
            "预案至少要有一项任务", "a plan needs at least one action", field="tasks"
        )
    values = {k: fields[k] for k in _TEMPLATE_FIELDS if k in fields}
    values.setdefault("name_en", values["name_zh"])
    row = PlanTemplate(code=code, active=bool(values.pop("active", True)), edited_by=actor)
    for key in ("event_types", "diseases", "tags", "levels"):
        values.setdefault(key, [])
    for k, v in values.items():
        setattr(row, k, v)
    session.add(row)
    session.flush()
    record(
        session,
        actor=actor,
        action="plan_template.create",
        entity_type="plan_template",
        entity_id=code,
        after={k: getattr(row, k) for k in sorted(_TEMPLATE_FIELDS)},
    )
    return row


def reset_template(session: Session, code: str, *, actor: str) -> PlanTemplate:
    """Put a template back as plans.yaml has it (active, no longer marked edited, so later
    file updates reach it again). Only templates of the file can be reset. Audited."""
    row = _template(session, code)
    spec = next((t for t in plans_file().get("templates") or [] if t["code"] == code), None)
    if spec is None:
        raise BadRequestError(
            "该模板不来自数据文件,无法恢复", "this template is not from the data file", field="code"
        )
    fields = {**_file_fields(spec), "active": True}
    return _change_template(
        session, row, fields, edited_by=None, actor=actor, action="plan_template.reset"
    )


def _check_template_changes(changes: Mapping[str, Any]) -> None:
    """Refuse unknown fields and actions without an owner or a Chinese text."""
    unknown = sorted(set(changes) - _TEMPLATE_FIELDS)
    if unknown:
        raise BadRequestError(
            f"不能修改字段:{'、'.join(unknown)}",
            f"unknown fields: {', '.join(unknown)}",
            field=unknown[0],
        )
    for i, task in enumerate(changes.get("tasks") or []):
        if not isinstance(task, Mapping) or not task.get("zh") or not task.get("owner"):
            raise BadRequestError(
                f"第 {i + 1} 项任务须有 owner 和 zh",
                f"task #{i + 1} needs an owner and a zh text",
                field=f"tasks.{i}",
            )
        _check_owner(str(task["owner"]))


def matching_templates(session: Session, event: Event) -> list[PlanTemplate]:
    """The active templates that apply to an event (type, disease or tag; and level)."""
    out = []
    for tpl in list_templates(session):
        if not tpl.active:
            continue
        keyed = bool(tpl.event_types or tpl.diseases or tpl.tags)
        hit = (
            event.event_type in (tpl.event_types or [])
            or (event.disease_code or "") in (tpl.diseases or [])
            or bool(set(tpl.tags or []) & set(event.tags or []))
        )
        if keyed and not hit:
            continue
        if tpl.levels and event.level not in tpl.levels:
            continue
        out.append(tpl)
    return out


# --------------------------------------------------------------------------- tasks

OPEN = "open"
ACCEPTED = "accepted"
IN_PROGRESS = "in_progress"
DONE = "done"
OVERDUE = "overdue"
CANCELLED = "cancelled"
TASK_STATUSES = (OPEN, ACCEPTED, IN_PROGRESS, DONE, OVERDUE, CANCELLED)
UNFINISHED = (OPEN, ACCEPTED, IN_PROGRESS, OVERDUE)

TASK = Machine(
    entity="task",
    labels={
        OPEN: ("待接收", "open"),
        ACCEPTED: ("已接收", "accepted"),
        IN_PROGRESS: ("处理中", "in progress"),
        DONE: ("已完成", "done"),
        OVERDUE: ("已逾期", "overdue"),
        CANCELLED: ("已取消", "cancelled"),
    },
    allowed_from={
        "accept": frozenset({OPEN, OVERDUE}),
        "start": frozenset({OPEN, ACCEPTED, OVERDUE}),
        "complete": frozenset({ACCEPTED, IN_PROGRESS, OVERDUE}),
        "cancel": frozenset(UNFINISHED),
        "overdue": frozenset({OPEN, ACCEPTED, IN_PROGRESS}),
        "remind": frozenset(UNFINISHED),
        "escalate": frozenset({OVERDUE}),
        "edit": frozenset(UNFINISHED),
    },
    actions_zh={
        "accept": "接收",
        "start": "开始处理",
        "complete": "完成",
        "cancel": "取消",
        "overdue": "标记逾期",
        "remind": "提醒",
        "escalate": "升级",
        "edit": "修改",
    },
)


def addressed_clause(viewer: Viewer) -> ColumnElement[bool]:
    """Tasks addressed to the viewer: to their organisation, or to their department within
    their region."""
    conditions: list[ColumnElement[bool]] = []
    if viewer.organisation_code:
        conditions.append(Task.organisation_code == viewer.organisation_code)
    if viewer.department:
        dept = Task.owner == viewer.department
        if viewer.region_code:
            dept = dept & Task.region_code.startswith(viewer.region_code, autoescape=True)
        conditions.append(dept)
    return or_(false(), *conditions)


def task_clause(viewer: Viewer) -> ColumnElement[bool]:
    """Tasks the viewer may see: everything in their jurisdiction for those who may see
    events, otherwise only the tasks addressed to them."""
    if viewer.may("event.view"):
        return region_scope(Task.region_code, viewer.scope) | addressed_clause(viewer)
    return addressed_clause(viewer)


def is_addressee(viewer: Viewer, task: Task) -> bool:
    """Whether the task is addressed to the viewer (its owner may work on it)."""
    if viewer.is_system:
        return True
    if viewer.organisation_code and task.organisation_code == viewer.organisation_code:
        return True
    return bool(
        viewer.department
        and task.owner == viewer.department
        and task.region_code.startswith(viewer.region_code or "")
    )


def _notify_owner(session: Session, task: Task, kind: str, title: str, body: str = "") -> None:
    if task.organisation_code:
        kind_code = ("organisation", task.organisation_code)
    else:
        kind_code = ("owner", task.owner)
    notify(
        session,
        kind=kind,
        title=title,
        body=body,
        recipient_kind=kind_code[0],
        recipient_code=kind_code[1],
        region_code=task.region_code,
        entity_type="task",
        entity_id=task.id,
    )


def _owner_organisation(session: Session, owner: str, event: Event | None) -> str | None:
    if owner == "cdc" and event is not None:
        return event.organisation_code
    return None


def create_task(
    session: Session,
    *,
    viewer: Viewer,
    title: str,
    owner: str,
    region_code: str,
    deadline: datetime | None = None,
    description: str | None = None,
    event_id: int | None = None,
    consultation_id: int | None = None,
    organisation_code: str | None = None,
    template_code: str | None = None,
    now: datetime | None = None,
) -> Task:
    """Create one task and notify its owner. An event task needs an active event the
    viewer may see; its region is the event's."""
    now = now or utcnow()
    title = require_text(title, "title", "任务内容", "a title")
    _check_owner(owner)
    event: Event | None = None
    if event_id is not None:
        event = session.scalars(
            select(Event).where(Event.id == event_id, event_clause(viewer))
        ).first()
        if event is None:
            raise NotFoundError(f"事件 {event_id} 不存在", f"event {event_id} not found")
        if event.status not in ACTIVE_EVENT_STATUSES:
            raise IllegalTransitionError(
                "已结案或已排除的事件不能再派发任务",
                "a closed or ruled-out event takes no new tasks",
            )
        region_code = event.region_code
    if organisation_code is not None and session.get(Organisation, organisation_code) is None:
        raise BadRequestError(
            f"机构 {organisation_code} 不存在",
            f"unknown organisation {organisation_code}",
            field="organisation_code",
        )
    due = deadline or now + timedelta(hours=response_config().task_default_deadline_hours)
    if due <= now:
        raise BadRequestError(
            "期限须晚于当前时间", "the deadline must be in the future", field="deadline"
        )
    task = Task(
        event_id=event_id,
        consultation_id=consultation_id,
        template_code=template_code,
        title=title[:200],
        description=description,
        owner=owner,
        organisation_code=organisation_code or _owner_organisation(session, owner, event),
        region_code=region_code,
        deadline=due,
        status=OPEN,
        created_by=viewer.actor,
        created_at=now,
        version=1,
    )
    session.add(task)
    session.flush()
    created(session, "task", task, actor=viewer.actor, now=now)
    _notify_owner(
        session,
        task,
        "task_assigned",
        f"新任务:{task.title}",
        f"请于 {due:%Y-%m-%d %H:%M} (UTC) 前完成。",
    )
    return task


def apply_plan(
    session: Session,
    event_id: int,
    *,
    viewer: Viewer,
    template_codes: Sequence[str] | None = None,
    now: datetime | None = None,
) -> list[Task]:
    """Create the tasks of the templates that match the event (or of those named).

    A template already applied to the event is skipped, so applying twice adds nothing.
    """
    now = now or utcnow()
    event = session.scalars(select(Event).where(Event.id == event_id, event_clause(viewer))).first()
    if event is None:
        raise NotFoundError(f"事件 {event_id} 不存在", f"event {event_id} not found")
    if template_codes is None:
        chosen = matching_templates(session, event)
    else:
        by_code = {t.code: t for t in list_templates(session)}
        missing = [c for c in template_codes if c not in by_code]
        if missing:
            raise BadRequestError(
                f"预案模板不存在:{'、'.join(missing)}",
                f"unknown template(s): {', '.join(missing)}",
                field="template_codes",
            )
        chosen = [by_code[c] for c in template_codes]
    applied = set(
        session.scalars(
            select(Task.template_code).where(
                Task.event_id == event_id, Task.template_code.is_not(None)
            )
        )
    )
    made = []
    for tpl in chosen:
        if tpl.code in applied:
            continue
        for spec in tpl.tasks:
            hours = float(
                spec.get("deadline_hours") or response_config().task_default_deadline_hours
            )
            made.append(
                create_task(
                    session,
                    viewer=viewer,
                    title=str(spec["zh"]),
                    description=spec.get("en"),
                    owner=str(spec["owner"]),
                    region_code=event.region_code,
                    deadline=now + timedelta(hours=hours),
                    event_id=event.id,
                    template_code=tpl.code,
                    now=now,
                )
            )
    return made


def list_tasks(
    session: Session,
    viewer: Viewer,
    *,
    event_id: int | None = None,
    status: Sequence[str] = (),
    owner: str | None = None,
    mine: bool = False,
    limit: int = 200,
    offset: int = 0,
) -> list[Task]:
    """Tasks the viewer may see (``mine``: only those addressed to them), by deadline."""
    stmt = select(Task).where(addressed_clause(viewer) if mine else task_clause(viewer))
    if event_id is not None:
        stmt = stmt.where(Task.event_id == event_id)
    if status:
        stmt = stmt.where(Task.status.in_(list(status)))
    if owner:
        stmt = stmt.where(Task.owner == owner)
    return list(session.scalars(stmt.order_by(Task.deadline, Task.id).limit(limit).offset(offset)))


def get_task(session: Session, viewer: Viewer, task_id: int) -> Task:
    """One task the viewer may see, else :class:`NotFoundError`."""
    task = session.scalars(select(Task).where(Task.id == task_id, task_clause(viewer))).first()
    if task is None:
        raise NotFoundError(f"任务 {task_id} 不存在", f"task {task_id} not found")
    return task


def _task_for_update(session: Session, viewer: Viewer, task_id: int) -> Task:
    return load_for_update(session, Task, task_id, task_clause(viewer), "任务", "task")


def _may_work(viewer: Viewer, task: Task) -> None:
    if not (is_addressee(viewer, task) or viewer.may("event.manage")):
        raise ForbiddenError(
            "只有任务的责任单位可以处理该任务", "only the task's owner may work on it"
        )


def task_step(
    session: Session,
    task_id: int,
    action: str,
    *,
    viewer: Viewer,
    version: int,
    result: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> Task:
    """accept / start / complete (with a result) by the owner; cancel (with a reason) by
    the event's managers."""
    now = now or utcnow()
    targets = {"accept": ACCEPTED, "start": IN_PROGRESS, "complete": DONE, "cancel": CANCELLED}
    if action not in targets:
        raise BadRequestError(
            f"任务操作「{action}」无效",
            f"action must be one of {', '.join(targets)}",
            field="action",
        )
    task = _task_for_update(session, viewer, task_id)
    changes: dict[str, Any] = {}
    text: str | None = (reason or "").strip() or None
    if action == "cancel":
        if not viewer.may("event.manage"):
            raise ForbiddenError(
                "只有事件管理人员可以取消任务", "only event managers may cancel tasks"
            )
        text = require_text(reason, "reason", "取消原因", "a reason")
        changes["cancelled_reason"] = text
    else:
        _may_work(viewer, task)
    if action == "accept" or (action in ("start", "complete") and task.accepted_at is None):
        changes.update(accepted_at=now, accepted_by=viewer.actor)
    if action == "complete":
        changes.update(done_at=now, result=(result or "").strip() or None)
    transition(
        session,
        TASK,
        task,
        action,
        actor=viewer.actor,
        version=version,
        changes=changes,
        to_status=targets[action],
        reason=text,
        now=now,
    )
    notify(
        session,
        kind="task_status",
        title=f"任务{TASK.labels[task.status][0]}:{task.title}",
        body=f"{viewer.actor} {TASK.actions_zh[action]}",
        recipient_kind="user",
        recipient_code=task.created_by,
        entity_type="task",
        entity_id=task.id,
    )
    return task


def add_comment(session: Session, task_id: int, *, viewer: Viewer, text: str) -> TaskComment:
    """Comment on a task the viewer may see."""
    body = require_text(text, "text", "评论内容", "a comment")
    task = get_task(session, viewer, task_id)
    comment = TaskComment(task_id=task.id, author=viewer.actor, at=utcnow(), text=body[:4000])
    session.add(comment)
    session.flush()
    record(
        session,
        actor=viewer.actor,
        action="task.comment",
        entity_type="task",
        entity_id=task.id,
        after={"comment_id": comment.id},
    )
    return comment


def comments(session: Session, task_id: int) -> list[TaskComment]:
    """A task's comments, oldest first."""
    return list(
        session.scalars(
            select(TaskComment).where(TaskComment.task_id == task_id).order_by(TaskComment.id)
        )
    )


# --------------------------------------------------------------------------- attachments

_MAGIC: dict[str, tuple[bytes, ...]] = {
    "pdf": (b"%PDF-",),
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpg": (b"\xff\xd8\xff",),
    "jpeg": (b"\xff\xd8\xff",),
    "docx": (b"PK\x03\x04",),
    "xlsx": (b"PK\x03\x04",),
}
_SAFE_NAME = re.compile(r"[^\w.\-\u4e00-\u9fff]+")


def _check_file(filename: str, content_type: str, data: bytes) -> str:
    """The file's extension if its name, declared type, size and first bytes agree."""
    cfg = response_config()
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if ext not in cfg.attachment_types:
        raise BadRequestError(
            f"不支持的文件类型 .{ext}",
            f"file type .{ext} is not accepted ({', '.join(cfg.attachment_types)})",
            field="file",
        )
    declared = content_type.split(";")[0].strip().lower()
    if declared not in cfg.attachment_types[ext] and declared != "application/octet-stream":
        raise BadRequestError(
            f"文件类型 {declared} 与扩展名 .{ext} 不符",
            f"content type {declared} does not match .{ext}",
            field="file",
        )
    if not data:
        raise BadRequestError("文件为空", "the file is empty", field="file")
    if len(data) > cfg.attachment_max_bytes:
        raise BadRequestError(
            f"文件超过 {cfg.attachment_max_bytes // 1048576} MB",
            f"the file is larger than {cfg.attachment_max_bytes} bytes",
            field="file",
        )
    magic = _MAGIC.get(ext)
    if magic is not None and not data.startswith(magic):
        raise BadRequestError(
            f"文件内容不是 .{ext} 格式", f"the file's content is not .{ext}", field="file"
        )
    if magic is None:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            try:
                data.decode("gb18030")
            except UnicodeDecodeError:
                raise BadRequestError(
                    "文本文件须为 UTF-8 或 GB18030 编码",
                    "a text file must be UTF-8 or GB18030",
                    field="file",
                ) from None
    return ext


def attachments_dir() -> Path:
    """Where attachments are kept: ``<data_dir>/attachments``."""
    return Path(get_settings().data_dir) / "attachments"


def add_attachment(
    session: Session,
    task_id: int,
    *,
    viewer: Viewer,
    filename: str,
    content_type: str,
    data: bytes,
) -> Attachment:
    """Store a file for a task after checking its type, size and first bytes. Only those
    who may work on the task (its owner, the event's managers) attach files; others who may
    see it read them.

    The file is written under its SHA-256 (a temporary file renamed into place, so a crash
    never leaves half a file under a final name) before the row is added; a crash after the
    write leaves only an unreferenced file, never a row without its file.
    """
    task = get_task(session, viewer, task_id)
    _may_work(viewer, task)  # evidence of the work: its owner's or the event managers'
    name = _SAFE_NAME.sub("_", Path(filename or "file").name)[:200] or "file"
    ext = _check_file(name, content_type or "application/octet-stream", data)
    digest = hashlib.sha256(data).hexdigest()
    relative = Path(digest[:2]) / f"{digest}.{ext}"
    target = attachments_dir() / relative
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    row = Attachment(
        task_id=task.id,
        filename=name,
        content_type=response_config().attachment_types[ext][0],
        size=len(data),
        sha256=digest,
        path=str(relative),
        uploaded_by=viewer.actor,
        uploaded_at=utcnow(),
    )
    session.add(row)
    session.flush()
    record(
        session,
        actor=viewer.actor,
        action="task.attachment",
        entity_type="task",
        entity_id=task.id,
        after={"attachment_id": row.id, "filename": name, "size": len(data), "sha256": digest},
    )
    return row


def task_attachments(session: Session, task_id: int) -> list[Attachment]:
    """A task's attachments still in force (not withdrawn), oldest first."""
    return list(
        session.scalars(
            select(Attachment)
            .where(Attachment.task_id == task_id, Attachment.deleted_at.is_(None))
            .order_by(Attachment.id)
        )
    )


def get_attachment(session: Session, viewer: Viewer, attachment_id: int) -> tuple[Attachment, Path]:
    """An attachment (not withdrawn) of a task the viewer may see, and its file's path."""
    row = session.get(Attachment, attachment_id)
    if row is None or row.deleted_at is not None:
        raise NotFoundError(f"附件 {attachment_id} 不存在", f"attachment {attachment_id} not found")
    get_task(session, viewer, row.task_id)
    return row, attachments_dir() / row.path


def withdraw_attachment(session: Session, viewer: Viewer, attachment_id: int) -> Attachment:
    """Withdraw a file attached by mistake: by whoever attached it, while they may still
    work on the task, or by the event's managers. The row and the file are kept (the
    audit trail names them); lists, counts and downloads no longer show it."""
    row, _path = get_attachment(session, viewer, attachment_id)  # checks the task is visible
    task = session.get(Task, row.task_id)  # already loaded by that check: no second query
    assert task is not None
    _may_work(viewer, task)
    if row.uploaded_by != viewer.actor and not viewer.may("event.manage"):
        raise ForbiddenError(
            "只能撤回自己上传的附件", "only the person who attached a file may withdraw it"
        )
    row.deleted_at = utcnow()
    row.deleted_by = viewer.actor
    session.flush()
    record(
        session,
        actor=viewer.actor,
        action="task.attachment_withdraw",
        entity_type="task",
        entity_id=task.id,
        after={"attachment_id": row.id, "filename": row.filename, "sha256": row.sha256},
    )
    return row


# --------------------------------------------------------------------------- reminders


@dataclass(frozen=True)
class ReminderReport:
    """What one reminder pass did (counts of tasks)."""

    reminded: int
    overdue: int
    escalated: int


def remind_and_escalate(session: Session, now: datetime | None = None) -> ReminderReport:
    """The periodic job: remind owners before deadlines, mark late tasks overdue, and
    escalate long-overdue ones to their creator and the responsible CDC."""
    now = now or utcnow()
    cfg = response_config()
    reminded = overdue = escalated = 0
    soon = now + timedelta(hours=cfg.task_remind_before_hours)
    for task in session.scalars(
        select(Task).where(
            Task.status.in_([OPEN, ACCEPTED, IN_PROGRESS]),
            Task.reminded_at.is_(None),
            Task.deadline > now,
            Task.deadline <= soon,
        )
    ).all():
        transition(
            session,
            TASK,
            task,
            "remind",
            actor="system",
            version=task.version,
            changes={"reminded_at": now},
            now=now,
        )
        _notify_owner(
            session,
            task,
            "task_reminder",
            f"任务即将到期:{task.title}",
            f"期限 {task.deadline:%Y-%m-%d %H:%M} (UTC)",
        )
        reminded += 1
    for task in session.scalars(
        select(Task).where(Task.status.in_([OPEN, ACCEPTED, IN_PROGRESS]), Task.deadline <= now)
    ).all():
        transition(
            session,
            TASK,
            task,
            "overdue",
            actor="system",
            version=task.version,
            to_status=OVERDUE,
            reason="逾期 past deadline",
            now=now,
        )
        _notify_owner(
            session,
            task,
            "task_overdue",
            f"任务已逾期:{task.title}",
            f"期限 {task.deadline:%Y-%m-%d %H:%M} (UTC)",
        )
        overdue += 1
    late = now - timedelta(hours=cfg.task_escalate_after_hours)
    for task in session.scalars(
        select(Task).where(
            Task.status == OVERDUE, Task.escalated_at.is_(None), Task.deadline <= late
        )
    ).all():
        transition(
            session,
            TASK,
            task,
            "escalate",
            actor="system",
            version=task.version,
            changes={"escalated_at": now},
            reason="逾期未完成 overdue",
            now=now,
        )
        event = session.get(Event, task.event_id) if task.event_id else None
        notify(
            session,
            kind="task_escalated",
            title=f"任务逾期未完成:{task.title}",
            body=f"责任单位 {task.owner},期限 {task.deadline:%Y-%m-%d %H:%M} (UTC)",
            recipient_kind="user",
            recipient_code=task.created_by,
            entity_type="task",
            entity_id=task.id,
        )
        if event is not None and event.organisation_code:
            notify(
                session,
                kind="task_escalated",
                title=f"任务逾期未完成:{task.title}",
                body=f"事件 {event.number},责任单位 {task.owner}",
                recipient_kind="organisation",
                recipient_code=event.organisation_code,
                region_code=task.region_code,
                entity_type="task",
                entity_id=task.id,
            )
        escalated += 1
    return ReminderReport(reminded=reminded, overdue=overdue, escalated=escalated)
