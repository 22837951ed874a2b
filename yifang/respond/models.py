"""Tables of the response to signals and events (闭环管理).

Every workflow row carries ``status`` and ``version`` (optimistic locking: each ORM UPDATE
carries ``WHERE version = <seen>`` and bumps it) and ``region_code``, the GB/T 2260 code the
jurisdiction rule is applied to. Every transition leaves a :class:`RespondHistory` row (the
row as it stood before, who, when, why) next to the audit entry.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from yifang.core.audit import BigId
from yifang.core.db import Base, utcnow


class Verification(Base):
    """The check of one signal (初步核实) by the responsible CDC.

    ``status``: ``pending`` → ``dismissed`` (reason code + text) | ``watching`` (keep
    watching) | ``suspected`` (an :class:`Event` is opened); ``watching`` may still become
    ``dismissed`` or ``suspected``. ``due_at`` is the signal's time plus the disease class's
    limit (2 h / 24 h, data/response.yaml); past it a pending verification is overdue and is
    escalated once to the parent CDC (``escalated_to``).
    """

    __tablename__ = "verification"
    __table_args__ = (Index("ix_verification_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    signal_id: Mapped[int] = mapped_column(ForeignKey("signal.id"), unique=True)
    # None for a syndrome's or another stream's signal; the series names say what it watched
    disease_code: Mapped[str | None] = mapped_column(ForeignKey("disease.code"), nullable=True)
    source: Mapped[str] = mapped_column(String(16), default="cards", server_default="cards")
    series_name_zh: Mapped[str] = mapped_column(String(100), default="", server_default="")
    series_name_en: Mapped[str] = mapped_column(String(100), default="", server_default="")
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    organisation_code: Mapped[str | None] = mapped_column(ForeignKey("organisation.code"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime] = mapped_column()
    escalated_at: Mapped[datetime | None] = mapped_column()
    escalated_to: Mapped[str | None] = mapped_column(String(32))
    checks: Mapped[list[str]] = mapped_column(JSON, default=list)
    findings: Mapped[str | None] = mapped_column(Text)
    reason_code: Mapped[str | None] = mapped_column(String(24))
    reason: Mapped[str | None] = mapped_column(Text)
    verified_at: Mapped[datetime | None] = mapped_column()
    verified_by: Mapped[str | None] = mapped_column(String(64))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("event.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class Event(Base):
    """A suspected or real public-health event and its handling.

    ``status``: ``suspected`` → ``investigating`` → ``confirmed`` | ``ruled_out``;
    ``confirmed`` → ``responding`` → ``closed``; ``ruled_out`` → ``closed``. The grade
    (``related_info``: 突发公共卫生事件相关信息; ``level``: I-IV) is set on confirmed events;
    each grading leaves an :class:`EventGrade`. ``affected``/``deaths`` are people counted by
    the investigators beyond the linked report cards (food poisoning has no card).
    """

    __tablename__ = "event"
    __table_args__ = (Index("ix_event_status_region", "status", "region_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(32), default="other")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    disease_code: Mapped[str | None] = mapped_column(ForeignKey("disease.code"))
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    organisation_code: Mapped[str | None] = mapped_column(ForeignKey("organisation.code"))
    signal_id: Mapped[int | None] = mapped_column(ForeignKey("signal.id"))
    status: Mapped[str] = mapped_column(String(16), default="suspected")
    summary: Mapped[str | None] = mapped_column(Text)
    team: Mapped[list[str]] = mapped_column(JSON, default=list)
    investigation_start: Mapped[date | None] = mapped_column()
    investigation_end: Mapped[date | None] = mapped_column()
    findings: Mapped[str | None] = mapped_column(Text)
    affected: Mapped[int | None] = mapped_column(Integer)
    deaths: Mapped[int | None] = mapped_column(Integer)
    related_info: Mapped[bool | None] = mapped_column(Boolean)
    level: Mapped[str | None] = mapped_column(String(4))
    suspected_at: Mapped[datetime] = mapped_column(default=utcnow)
    investigating_at: Mapped[datetime | None] = mapped_column()
    confirmed_at: Mapped[datetime | None] = mapped_column()
    ruled_out_at: Mapped[datetime | None] = mapped_column()
    responding_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    conclusion: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64), default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class EventCase(Base):
    """A report card linked to an event; ``unit`` is the collective unit (school, class …)."""

    __tablename__ = "event_case"
    __table_args__ = (UniqueConstraint("event_id", "card_id", name="event_card"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id"), index=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("card.id"), index=True)
    unit: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    linked_by: Mapped[str] = mapped_column(String(64))
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)


class Sample(Base):
    """A specimen taken in an investigation and its laboratory result."""

    __tablename__ = "event_sample"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id"), index=True)
    card_id: Mapped[int | None] = mapped_column(ForeignKey("card.id"))
    sample_type: Mapped[str] = mapped_column(String(48))
    source: Mapped[str | None] = mapped_column(String(100))  # patient, food, water, animal…
    collected_on: Mapped[date | None] = mapped_column()
    laboratory: Mapped[str | None] = mapped_column(String(100))
    test: Mapped[str | None] = mapped_column(String(100))
    result: Mapped[str] = mapped_column(String(16), default="pending")  # positive, negative
    pathogen: Mapped[str | None] = mapped_column(String(100))
    result_on: Mapped[date | None] = mapped_column()
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class EventGrade(Base):
    """One grading of an event: what Yifang suggested, what was set, by whom and why."""

    __tablename__ = "event_grade"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id"), index=True)
    related_info: Mapped[bool] = mapped_column(Boolean)
    level: Mapped[str | None] = mapped_column(String(4))
    suggested_related_info: Mapped[bool] = mapped_column(Boolean)
    suggested_level: Mapped[str | None] = mapped_column(String(4))
    accepted: Mapped[bool] = mapped_column(Boolean)
    basis: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class RespondHistory(Base):
    """A workflow row as it stood before a transition (verification, event, task …)."""

    __tablename__ = "respond_history"
    __table_args__ = (Index("ix_respond_history_entity", "entity_type", "entity_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entity_type: Mapped[str] = mapped_column(String(24))
    entity_id: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str | None] = mapped_column(Text)


class PlanTemplate(Base):
    """A response plan template (data/plans.yaml, then editable): which owners do what."""

    __tablename__ = "plan_template"

    code: Mapped[str] = mapped_column(String(48), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(200))
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    diseases: Mapped[list[str]] = mapped_column(JSON, default=list)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    levels: Mapped[list[str]] = mapped_column(JSON, default=list)
    tasks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    edited_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Task(Base):
    """A piece of response work owned by a department or organisation, with a deadline.

    ``status``: ``open`` → ``accepted`` → ``in_progress`` → ``done``; past its deadline an
    unfinished task becomes ``overdue`` (and may still be accepted, worked on or done); any
    unfinished task may be ``cancelled`` with a reason. ``owner`` is a department code
    (roles.yaml) or a health-sector owner (response.yaml); ``organisation_code`` narrows it
    to one organisation. ``region_code`` is the event's (jurisdiction).
    """

    __tablename__ = "task"
    __table_args__ = (
        Index("ix_task_owner", "owner", "status"),
        Index("ix_task_status_deadline", "status", "deadline"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("event.id"), index=True)
    consultation_id: Mapped[int | None] = mapped_column(ForeignKey("consultation.id"))
    template_code: Mapped[str | None] = mapped_column(String(48))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(32))
    organisation_code: Mapped[str | None] = mapped_column(ForeignKey("organisation.code"))
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    deadline: Mapped[datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column()
    accepted_by: Mapped[str | None] = mapped_column(String(64))
    done_at: Mapped[datetime | None] = mapped_column()
    result: Mapped[str | None] = mapped_column(Text)
    cancelled_reason: Mapped[str | None] = mapped_column(Text)
    reminded_at: Mapped[datetime | None] = mapped_column()
    escalated_at: Mapped[datetime | None] = mapped_column()
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class TaskComment(Base):
    """A comment on a task."""

    __tablename__ = "task_comment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id"), index=True)
    author: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    text: Mapped[str] = mapped_column(Text)


class Attachment(Base):
    """A file attached to a task, stored under ``settings.data_dir`` by its SHA-256."""

    __tablename__ = "task_attachment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(255))  # relative to settings.data_dir
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
    # withdrawn (a wrong file): hidden from lists and downloads, kept with its file
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    deleted_by: Mapped[str | None] = mapped_column(String(64), default=None)


class SharedWarning(Base):
    """A de-identified warning shared with other departments (横向通报).

    ``content`` holds only disease, townships, counts, dates and advice — never names, ID
    numbers, phones or addresses; it is built by :func:`yifang.respond.sharing.warning_content`.
    """

    __tablename__ = "warning"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id"), index=True)
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    title: Mapped[str] = mapped_column(String(200))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    advice: Mapped[str] = mapped_column(Text)
    sent_by: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)


class WarningRecipient(Base):
    """One addressee of a warning and whether (when, by whom) it acknowledged it."""

    __tablename__ = "warning_recipient"
    __table_args__ = (UniqueConstraint("warning_id", "owner", name="warning_owner"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    warning_id: Mapped[int] = mapped_column(ForeignKey("warning.id"), index=True)
    owner: Mapped[str] = mapped_column(String(32))
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))


class Notification(Base):
    """A message to a user, an organisation or a department (within a region).

    ``recipient_kind``: ``user`` (code = user name), ``organisation`` (organisation code) or
    ``owner`` (department/owner code; ``region_code`` says where). In-app delivery is the row
    itself; ``email_status``/``sms_status`` (``pending``, ``sent``, ``failed``,
    ``no_address``; None = not sent on that channel) form the outbox the delivery job works
    through after the transaction that created the row has committed.
    """

    __tablename__ = "notification"
    __table_args__ = (
        Index("ix_notification_recipient", "recipient_kind", "recipient_code"),
        Index("ix_notification_email", "email_status"),
        Index("ix_notification_sms", "sms_status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    recipient_kind: Mapped[str] = mapped_column(String(16))
    recipient_code: Mapped[str] = mapped_column(String(64))
    region_code: Mapped[str | None] = mapped_column(String(12))
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    entity_type: Mapped[str | None] = mapped_column(String(24))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    read_at: Mapped[datetime | None] = mapped_column()
    read_by: Mapped[str | None] = mapped_column(String(64))
    email_status: Mapped[str | None] = mapped_column(String(12))
    sms_status: Mapped[str | None] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class NotificationAddress(Base):
    """Where a recipient (user, organisation or owner) receives email and SMS."""

    __tablename__ = "notification_address"
    __table_args__ = (
        UniqueConstraint("recipient_kind", "recipient_code", "email", name="address_email"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recipient_kind: Mapped[str] = mapped_column(String(16))
    recipient_code: Mapped[str] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Consultation(Base):
    """A risk-assessment meeting (研判会商), scheduled or ad hoc.

    ``status``: ``planned`` → ``in_session`` → ``closed`` (minutes required); ``planned`` →
    ``cancelled``. Its agenda items are built from the open signals, active events and key
    indicators of the jurisdiction when it is created (and may be rebuilt while planned).
    """

    __tablename__ = "consultation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # scheduled, ad_hoc
    title: Mapped[str] = mapped_column(String(200))
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    scheduled_at: Mapped[datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="planned")
    participants: Mapped[list[str]] = mapped_column(JSON, default=list)
    minutes: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column()
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class ConsultationItem(Base):
    """One agenda item with its risk assessment (likelihood × impact, 1-5 each)."""

    __tablename__ = "consultation_item"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    item_type: Mapped[str] = mapped_column(String(16))  # signal, event, indicator, other
    ref_id: Mapped[int | None] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    likelihood: Mapped[int | None] = mapped_column(Integer)
    impact: Mapped[int | None] = mapped_column(Integer)
    risk_score: Mapped[int | None] = mapped_column(Integer)
    risk_level: Mapped[str | None] = mapped_column(String(16))
    notes: Mapped[str | None] = mapped_column(Text)


class ConsultationDecision(Base):
    """A decision of a consultation; decisions that assign work create a :class:`Task`."""

    __tablename__ = "consultation_decision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("consultation_item.id"))
    text: Mapped[str] = mapped_column(Text)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("task.id"))
    decided_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)


class Contact(Base):
    """A close contact (密切接触者) of a case, followed up daily until ``follow_up_end``.

    ``status``: ``following`` → ``ended`` (follow-up completed), ``converted`` (became a
    case: ``converted_card_id``), ``lost`` (lost to follow-up). ``follow_up_end`` = last
    exposure + the case disease's longest incubation period (catalog), in days.
    """

    __tablename__ = "contact"
    __table_args__ = (Index("ix_contact_status_end", "status", "follow_up_end"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_card_id: Mapped[int] = mapped_column(ForeignKey("card.id"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("event.id"), index=True)
    disease_code: Mapped[str] = mapped_column(ForeignKey("disease.code"))
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    name: Mapped[str] = mapped_column(String(40))
    sex: Mapped[str | None] = mapped_column(String(1))
    birth_date: Mapped[date | None] = mapped_column()
    id_number: Mapped[str | None] = mapped_column(String(32))
    phone: Mapped[str | None] = mapped_column(String(20))
    address_code: Mapped[str | None] = mapped_column(String(12))
    address_detail: Mapped[str | None] = mapped_column(String(100))
    relation: Mapped[str | None] = mapped_column(String(32))
    last_exposure: Mapped[date] = mapped_column()
    follow_up_end: Mapped[date] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="following")
    converted_card_id: Mapped[int | None] = mapped_column(ForeignKey("card.id"))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class FollowUp(Base):
    """One day's follow-up of a contact: symptoms, temperature (°C) and how they are."""

    __tablename__ = "contact_follow_up"
    __table_args__ = (UniqueConstraint("contact_id", "day", name="follow_up_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), index=True)
    day: Mapped[date] = mapped_column()
    symptoms: Mapped[list[str]] = mapped_column(JSON, default=list)
    temperature: Mapped[float | None] = mapped_column(Float)
    condition: Mapped[str] = mapped_column(String(16))  # well, symptomatic, unreachable
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
