"""Request and response shapes of the response API (pydantic).

Every state-changing request carries the ``version`` the caller last saw; a stale one is
refused with 409. Times are naive UTC, dates calendar dates.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Versioned(BaseModel):
    """A state change of a record the caller read at ``version``."""

    version: int = Field(ge=1, description="The record's version as the caller last saw it.")


class ReasonIn(Versioned):
    """A state change that needs (or accepts) a reason."""

    reason: str | None = Field(None, max_length=4000)


# --------------------------------------------------------------------------- verification


class VerificationOut(_Out):
    """A signal's verification."""

    id: int
    signal_id: int
    disease_code: str | None = Field(description="None for a syndrome's or stream's signal")
    source: str = Field("cards", description="cards, syndrome or stream")
    series_name_zh: str = ""
    series_name_en: str = ""
    region_code: str
    organisation_code: str | None
    status: str
    assigned_at: datetime
    due_at: datetime
    overdue: bool = False
    escalated_at: datetime | None
    escalated_to: str | None
    checks: list[str]
    findings: str | None
    reason_code: str | None
    reason: str | None
    verified_at: datetime | None
    verified_by: str | None
    event_id: int | None
    version: int
    # How the signal was raised (read from it, not stored on the verification), so that two
    # signals of one outbreak under different rules or region levels can be told apart.
    signal_rule: str = Field("", description="the detection rule's name, e.g. ears-c3")
    signal_method: str = Field("", description="the method, e.g. ears_c, mpm")
    signal_region_level: str = Field("", description="township, county or city")
    signal_granularity: str = Field("", description="day or week")


class OutcomeIn(Versioned):
    """The verifier's outcome."""

    outcome: str = Field(description="dismissed, watching or suspected")
    checks: list[str] = Field(default_factory=list, description="codes of what was checked")
    findings: str | None = Field(None, max_length=8000)
    reason_code: str | None = Field(None, description="for dismissed: a code of the list")
    reason: str | None = Field(None, max_length=4000)
    event_title: str | None = Field(None, max_length=200)
    event_type: str = "other"
    event_tags: list[str] = Field(default_factory=list)


class HistoryOut(_Out):
    """A transition: the state before and after, who, when, why."""

    action: str
    from_status: str | None
    to_status: str | None
    version: int
    actor: str
    at: datetime
    reason: str | None


# --------------------------------------------------------------------------- events


class EventIn(BaseModel):
    """A suspected event reported directly (not from a signal)."""

    title: str = Field(max_length=200)
    region_code: str = Field(pattern=r"^\d{4,12}$")
    event_type: str = "other"
    tags: list[str] = Field(default_factory=list)
    disease_code: str | None = None
    summary: str | None = Field(None, max_length=8000)


class EventOut(_Out):
    """An event as its managers see it."""

    id: int
    number: str
    title: str
    event_type: str
    tags: list[str]
    disease_code: str | None
    region_code: str
    organisation_code: str | None
    signal_id: int | None
    status: str
    summary: str | None
    team: list[str]
    investigation_start: date | None
    investigation_end: date | None
    findings: str | None
    affected: int | None
    deaths: int | None
    related_info: bool | None
    level: str | None
    suspected_at: datetime
    investigating_at: datetime | None
    confirmed_at: datetime | None
    ruled_out_at: datetime | None
    responding_at: datetime | None
    closed_at: datetime | None
    conclusion: str | None
    created_by: str
    version: int


class EventEditIn(Versioned):
    """Changes to an event's description or investigation record (only those given)."""

    title: str | None = Field(None, max_length=200)
    event_type: str | None = None
    tags: list[str] | None = None
    summary: str | None = None
    team: list[str] | None = None
    investigation_start: date | None = None
    investigation_end: date | None = None
    findings: str | None = None
    affected: int | None = Field(None, ge=0)
    deaths: int | None = Field(None, ge=0)


class InvestigateIn(Versioned):
    """Start of the field investigation."""

    team: list[str] = Field(default_factory=list)
    start: date | None = None


class ConfirmIn(Versioned):
    """Confirmation, with the findings."""

    findings: str | None = None


class ConclusionIn(Versioned):
    """Closing an event."""

    conclusion: str = Field(max_length=8000)


class LinkCaseIn(BaseModel):
    """A report card to link, and the collective unit it belongs to."""

    card_id: int
    unit: str | None = Field(None, max_length=100)
    note: str | None = None


class LinkedCaseOut(BaseModel):
    """A linked card, with personal data masked unless the caller may see it."""

    card_id: int
    card_number: str
    patient_name: str | None
    sex: str
    age_value: int | None
    age_unit: str | None
    address_code: str
    disease_code: str
    classification: str
    onset_date: date
    death_date: date | None
    unit: str | None
    linked_by: str
    linked_at: datetime


class SampleIn(BaseModel):
    """A specimen."""

    sample_type: str = Field(max_length=48)
    card_id: int | None = None
    source: str | None = Field(None, max_length=100)
    collected_on: date | None = None
    laboratory: str | None = Field(None, max_length=100)
    test: str | None = Field(None, max_length=100)
    result: str = "pending"
    pathogen: str | None = Field(None, max_length=100)
    result_on: date | None = None


class SampleOut(_Out, SampleIn):
    """A stored specimen."""

    id: int
    event_id: int
    recorded_by: str
    recorded_at: datetime
    version: int


class SampleResultIn(Versioned):
    """A laboratory result."""

    result: str
    pathogen: str | None = None
    result_on: date | None = None


class RuleHitOut(BaseModel):
    """A threshold reached."""

    rule: str
    level: str | None
    group: str
    cases: int
    deaths: int
    groups: int
    confirmed: bool
    zh: str
    en: str


class SuggestionOut(BaseModel):
    """Yifang's suggested grade and its basis."""

    related_info: bool
    level: str | None
    basis: list[RuleHitOut]


class GradeIn(Versioned):
    """A grading: accept the suggestion, or set related_info/level with a reason."""

    accept: bool = False
    related_info: bool | None = None
    level: str | None = None
    reason: str | None = Field(None, max_length=4000)


class GradeOut(_Out):
    """One grading in the history."""

    id: int
    related_info: bool
    level: str | None
    suggested_related_info: bool
    suggested_level: str | None
    accepted: bool
    basis: list[dict[str, Any]]
    reason: str | None
    actor: str
    at: datetime


class EventDetail(EventOut):
    """An event with its cases, samples, grades and history."""

    cases: list[LinkedCaseOut]
    samples: list[SampleOut]
    grades: list[GradeOut]
    history: list[HistoryOut]


class EventBrief(BaseModel):
    """What a task's owner outside the CDC may see of its event (no personal data)."""

    id: int
    number: str
    disease_code: str | None
    region_code: str
    status: str
    level: str | None
    cases: int


# --------------------------------------------------------------------------- plans & tasks


class TemplateOut(_Out):
    """A response plan template."""

    code: str
    name_zh: str
    name_en: str
    event_types: list[str]
    diseases: list[str]
    tags: list[str]
    levels: list[str]
    tasks: list[dict[str, Any]]
    active: bool
    edited_by: str | None
    updated_at: datetime | None = Field(
        None, description="when last changed: send it back with an edit to refuse stale ones"
    )
    from_file: bool = Field(
        False, description="defined in plans.yaml, so it can be reset to the file's version"
    )


class TemplatePatch(BaseModel):
    """Changes to a template (only those given). ``updated_at``, when given, must be the
    template's current one, else the edit is refused as stale (409)."""

    updated_at: datetime | None = None

    name_zh: str | None = None
    name_en: str | None = None
    event_types: list[str] | None = None
    diseases: list[str] | None = None
    tags: list[str] | None = None
    levels: list[str] | None = None
    tasks: list[dict[str, Any]] | None = None
    active: bool | None = None


class TemplateIn(BaseModel):
    """A new template: a free code (lower-case letters, digits, underscores), a Chinese name
    and at least one action; what it applies to (nothing: any event; no levels: any)."""

    code: str = Field(max_length=48)
    name_zh: str = Field(max_length=100)
    name_en: str | None = Field(None, max_length=200)
    event_types: list[str] = Field(default_factory=list)
    diseases: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    levels: list[str] = Field(default_factory=list)
    tasks: list[dict[str, Any]] = Field(default_factory=list)
    active: bool = True


class ApplyPlanIn(BaseModel):
    """Which templates to apply (default: every matching one)."""

    template_codes: list[str] | None = None


class TaskIn(BaseModel):
    """A task created by hand."""

    title: str = Field(max_length=200)
    owner: str
    description: str | None = None
    event_id: int | None = None
    region_code: str | None = Field(None, pattern=r"^\d{4,12}$")
    organisation_code: str | None = None
    deadline: datetime | None = None


class TaskOut(_Out):
    """A task."""

    id: int
    event_id: int | None
    consultation_id: int | None
    template_code: str | None
    title: str
    description: str | None
    owner: str
    organisation_code: str | None
    region_code: str
    deadline: datetime
    status: str
    created_by: str
    created_at: datetime
    accepted_at: datetime | None
    accepted_by: str | None
    done_at: datetime | None
    result: str | None
    cancelled_reason: str | None
    reminded_at: datetime | None
    escalated_at: datetime | None
    version: int
    attachment_count: int = Field(0, description="files attached to the task")


class CommentOut(_Out):
    """A comment on a task."""

    id: int
    author: str
    at: datetime
    text: str


class AttachmentOut(_Out):
    """A file attached to a task."""

    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: datetime


class TaskDetail(TaskOut):
    """A task with its event summary, comments, attachments and history."""

    event: EventBrief | None
    comments: list[CommentOut]
    attachments: list[AttachmentOut]
    history: list[HistoryOut]


class TaskStepIn(Versioned):
    """accept / start / complete (with a result) / cancel (with a reason)."""

    result: str | None = Field(None, max_length=8000)
    reason: str | None = Field(None, max_length=4000)


class CommentIn(BaseModel):
    """A new comment."""

    text: str = Field(max_length=4000)


# --------------------------------------------------------------------------- sharing


class WarningIn(BaseModel):
    """A warning to other departments."""

    to: list[str]
    advice: str = Field(max_length=4000)
    title: str | None = Field(None, max_length=200)


class RecipientOut(_Out):
    """An addressee and its acknowledgement."""

    owner: str
    acknowledged_at: datetime | None
    acknowledged_by: str | None


class WarningOut(_Out):
    """A de-identified warning."""

    id: int
    event_id: int
    region_code: str
    title: str
    content: dict[str, Any]
    advice: str
    sent_by: str
    sent_at: datetime
    recipients: list[RecipientOut] = Field(default_factory=list)


# --------------------------------------------------------------------------- notifications


class NotificationOut(_Out):
    """An in-app notification."""

    id: int
    kind: str
    title: str
    body: str
    entity_type: str | None
    entity_id: int | None
    created_at: datetime
    read_at: datetime | None
    email_status: str | None
    sms_status: str | None


class AddressIn(BaseModel):
    """An email/phone address of a recipient."""

    recipient_kind: str = Field(description="user, organisation or owner")
    recipient_code: str = Field(max_length=64)
    email: str | None = Field(None, max_length=255)
    phone: str | None = Field(None, max_length=20)


# --------------------------------------------------------------------------- consultation


class ConsultationIn(BaseModel):
    """A consultation to plan."""

    title: str = Field(max_length=200)
    kind: str = "scheduled"
    scheduled_at: datetime | None = None
    participants: list[str] = Field(default_factory=list)


class ItemOut(_Out):
    """An agenda item and its risk assessment."""

    id: int
    position: int
    item_type: str
    ref_id: int | None
    title: str
    summary: dict[str, Any]
    likelihood: int | None
    impact: int | None
    risk_score: int | None
    risk_level: str | None
    notes: str | None


class DecisionOut(_Out):
    """A decision (and the task it created)."""

    id: int
    item_id: int | None
    text: str
    task_id: int | None
    decided_by: str
    decided_at: datetime


class ConsultationOut(_Out):
    """A consultation."""

    id: int
    kind: str
    title: str
    region_code: str
    scheduled_at: datetime
    status: str
    participants: list[str]
    minutes: str | None
    created_by: str
    closed_at: datetime | None
    version: int


class ConsultationDetail(ConsultationOut):
    """A consultation with agenda and decisions."""

    items: list[ItemOut]
    decisions: list[DecisionOut]


class ConsultationStepIn(Versioned):
    """start / close (minutes) / cancel (reason) / edit (draft minutes)."""

    minutes: str | None = None
    reason: str | None = None


class AssessIn(BaseModel):
    """A place on the risk matrix."""

    likelihood: int = Field(ge=1, le=5)
    impact: int = Field(ge=1, le=5)
    notes: str | None = None


class DecisionTaskIn(BaseModel):
    """The task a decision assigns."""

    owner: str
    title: str | None = None
    deadline: datetime | None = None
    event_id: int | None = None
    organisation_code: str | None = None


class DecisionIn(BaseModel):
    """A decision."""

    text: str = Field(max_length=4000)
    item_id: int | None = None
    task: DecisionTaskIn | None = None


# --------------------------------------------------------------------------- contacts


class ContactIn(BaseModel):
    """A close contact of the case on ``case_card_id``."""

    case_card_id: int
    event_id: int | None = None
    name: str = Field(max_length=40)
    sex: str | None = Field(None, pattern=r"^[12]$")
    birth_date: date | None = None
    id_number: str | None = Field(None, max_length=32)
    phone: str | None = Field(None, max_length=20)
    address_code: str | None = Field(None, pattern=r"^\d{6,12}$")
    address_detail: str | None = Field(None, max_length=100)
    relation: str | None = Field(None, max_length=32)
    last_exposure: date


class ContactOut(BaseModel):
    """A contact; personal fields masked unless the caller may see them."""

    id: int
    case_card_id: int
    event_id: int | None
    disease_code: str
    region_code: str
    name: str | None
    sex: str | None
    birth_date: date | None
    id_number: str | None
    phone: str | None
    address_code: str | None
    address_detail: str | None
    relation: str | None
    last_exposure: date
    follow_up_end: date
    status: str
    converted_card_id: int | None
    version: int


class FollowUpIn(BaseModel):
    """One day's follow-up."""

    day: date
    condition: str = Field(description="well, symptomatic or unreachable")
    symptoms: list[str] = Field(default_factory=list)
    temperature: float | None = Field(None, description="°C")
    note: str | None = None


class FollowUpOut(_Out, FollowUpIn):
    """A stored follow-up."""

    id: int
    recorded_by: str
    recorded_at: datetime


class ContactDetail(ContactOut):
    """A contact with their follow-up records."""

    follow_ups: list[FollowUpOut]


class ConvertIn(Versioned):
    """Conversion to a case: card fields to complete the draft, or an existing card."""

    card: dict[str, Any] | None = None
    card_id: int | None = None


# --------------------------------------------------------------------------- command view


class MapEventOut(BaseModel):
    """An active event on the map."""

    id: int
    number: str
    title: str
    status: str
    level: str | None
    related_info: bool | None
    disease_code: str | None
    disease_name: str
    region_code: str
    region_name: str
    longitude: float | None
    latitude: float | None
    cases: int


class TimelineOut(BaseModel):
    """One moment of an event's life."""

    at: datetime
    kind: str
    action: str
    actor: str
    detail: dict[str, Any]


class TimelinePage(BaseModel):
    """An event's timeline and the hours from its signal to each state."""

    event_id: int
    entries: list[TimelineOut]
    hours_to: dict[str, float]
