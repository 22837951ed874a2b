"""The report card's review workflow as a state machine enforced by the server.

States (``Card.status``) and the transitions between them::

    draft ──submit──▶ submitted ──review──▶ reviewed ──correct (订正)──▶ submitted
      ▲ edit            │    ▲                                        (report_type 2)
      │                 return (退卡)
      │                 ▼    │ submit
      └──────────── returned ┘ (edit allowed)

    any state but deleted ──delete (reason code + text)──▶ deleted (soft; kept, not counted)

Every transition checks the state it starts from, the version the caller saw (optimistic
locking: an older version is refused with :class:`StaleVersionError`, and the stored card is left
as it was), writes a :class:`~yifang.cases.models.CardRevision` holding the whole card as it
stood before, and appends an audit entry with the fields that changed (who, when, before,
after, why). Card content always goes through :func:`yifang.cases.validation.validate_card`;
invalid content is refused with every :class:`~yifang.cases.schemas.FieldError` at once.

The review time limit runs from submission: ``review_due_at = submitted_at +
Disease.review_limit_hours`` (2 h for 甲类 and 乙类甲管, 24 h otherwise; catalog data, see
``china-surveillance-facts.md`` §4.2, where the limits are marked unconfirmed).

Errors are :class:`CardError` subclasses carrying a stable code, an HTTP status and messages
in Chinese and English, so the API and the CLI report them the same way.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from yifang.cases.models import Card, CardRevision, name_key
from yifang.cases.schemas import CARD_FIELDS
from yifang.cases.validation import Reference, validate_card
from yifang.core.audit import diff, record
from yifang.core.db import utcnow
from yifang.core.errors import AppError, FieldError
from yifang.core.jurisdiction import Scope

DRAFT = "draft"
SUBMITTED = "submitted"
RETURNED = "returned"
REVIEWED = "reviewed"
DELETED = "deleted"
STATUSES: tuple[str, ...] = (DRAFT, SUBMITTED, RETURNED, REVIEWED, DELETED)

#: Chinese names of the states (as in the national system's 审核状态 where it has one).
STATUS_LABELS: dict[str, str] = {
    DRAFT: "草稿",
    SUBMITTED: "未审核",
    RETURNED: "已退卡",
    REVIEWED: "已终审",
    DELETED: "已删除",
}

#: Action → the states it may start from.
ALLOWED_FROM: dict[str, frozenset[str]] = {
    "edit": frozenset({DRAFT, RETURNED}),
    "submit": frozenset({DRAFT, RETURNED}),
    "review": frozenset({SUBMITTED}),
    "return": frozenset({SUBMITTED}),
    "correct": frozenset({REVIEWED}),
    "delete": frozenset({DRAFT, SUBMITTED, RETURNED, REVIEWED}),
}

#: Action → its Chinese name, for messages.
ACTION_LABELS: dict[str, str] = {
    "create": "新增",
    "edit": "修改",
    "submit": "提交",
    "review": "审核",
    "return": "退卡",
    "correct": "订正",
    "delete": "删除",
    "merge": "合并重卡",
}

#: Reason codes of a deletion (删除类型; at most 8 characters). [INF] the national code
#: values were not confirmed; these are Yifang's own, with the reasons named in practice.
DELETE_REASONS: dict[str, tuple[str, str]] = {
    "dup": ("重复报告", "duplicate report"),
    "error": ("误报", "reported in error"),
    "ruledout": ("误诊(排除)", "diagnosis ruled out"),
    "test": ("测试卡", "test card"),
    "other": ("其他", "other"),
}

#: Fields a correction (订正) may change: the diagnosis, classification and disease, and the
#: dates and outcome that go with them.
CORRECTABLE_FIELDS: frozenset[str] = frozenset(
    {
        "disease_code",
        "subtype_code",
        "classification",
        "chronicity",
        "onset_date",
        "diagnosis_time",
        "death_date",
        "remarks",
    }
)


# --------------------------------------------------------------------------- errors


class CardError(AppError):
    """A refused request about a card: ``code`` is stable, ``status`` the HTTP status."""

    code = "card_error"


class CardInvalidError(CardError):
    """The card's content breaks rules; ``fields`` lists every one."""

    status = 422
    code = "validation_failed"


class BadRequestError(CardError):
    """A request parameter is unusable (a reason missing, a cursor garbled)."""

    status = 422
    code = "bad_request"


class CardNotFoundError(CardError):
    """No such card, or not one the caller's scope may see (the two are not told apart)."""

    status = 404
    code = "not_found"


class ForbiddenError(CardError):
    """The caller's scope does not allow this (e.g. revealing personal data)."""

    status = 403
    code = "forbidden"


class StaleVersionError(CardError):
    """The card changed since the caller read it; nothing was written."""

    status = 409
    code = "stale_version"


class IllegalTransitionError(CardError):
    """The action is not allowed from the card's current state."""

    status = 409
    code = "illegal_transition"


# --------------------------------------------------------------------------- helpers


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def snapshot(card: Card) -> dict[str, Any]:
    """The whole card as a JSON-ready dict of its columns (for revisions and audit)."""
    return {c.key: _jsonable(getattr(card, c.key)) for c in Card.__table__.columns}


def card_content(card: Card) -> dict[str, Any]:
    """The card's own fields (those of the printed card), as stored."""
    return {f: getattr(card, f) for f in CARD_FIELDS}


def new_card_number(now: datetime) -> str:
    """A fresh card number when the reporter gave none: date and 10 random hex digits."""
    return f"{now:%Y%m%d}{secrets.token_hex(5).upper()}"


def _validated(session: Session, data: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The card's fields parsed and checked, or :class:`CardInvalidError` with every error."""
    outcome = validate_card(data, Reference.from_session(session), now)
    if outcome.card is None or outcome.errors:
        raise CardInvalidError(
            f"报告卡有 {len(outcome.errors)} 处错误,请修改后重试",
            f"the card has {len(outcome.errors)} error(s); correct them and retry",
            fields=outcome.errors,
        )
    return {f: getattr(outcome.card, f, None) for f in CARD_FIELDS}


def _load(session: Session, card_id: int, scope: Scope | None) -> Card:
    """The card, locked for update where the database can, seen through ``scope``."""
    from yifang.cases.queries import scope_clause  # queries imports this module's errors

    stmt = select(Card).where(Card.id == card_id)
    if scope is not None:
        stmt = stmt.where(scope_clause(scope))
    card = session.scalars(stmt.with_for_update()).first()
    if card is None:
        raise CardNotFoundError(f"报告卡 {card_id} 不存在", f"card {card_id} not found")
    return card


def _check(card: Card, action: str, version: int | None) -> None:
    if version is not None and card.version != version:
        raise StaleVersionError(
            f"报告卡已被他人修改(当前版本 {card.version},您的版本 {version}),请刷新后重试",
            f"the card was changed by someone else (now version {card.version}, "
            f"yours {version}); reload it and retry",
        )
    if card.status not in ALLOWED_FROM[action]:
        allowed = "、".join(STATUS_LABELS[s] for s in sorted(ALLOWED_FROM[action]))
        raise IllegalTransitionError(
            f"「{STATUS_LABELS.get(card.status, card.status)}」状态的报告卡不能"
            f"{ACTION_LABELS[action]}(仅限:{allowed})",
            f"a card in state '{card.status}' cannot be {action}ed "
            f"(allowed from: {', '.join(sorted(ALLOWED_FROM[action]))})",
        )


def _review_due(session: Session, disease_code: str, submitted_at: datetime) -> datetime:
    hours = Reference.from_session(session).review_limit_hours(disease_code)
    return submitted_at + timedelta(hours=hours)


def _commit_change(
    session: Session,
    card: Card,
    before: dict[str, Any],
    *,
    action: str,
    actor: str,
    reason: str | None,
    now: datetime,
) -> Card:
    """Write the revision and the audit entry of a change already applied to ``card``."""
    session.add(
        CardRevision(
            card_id=card.id,
            version=before["version"],
            action=action,
            snapshot=before,
            actor=actor,
            at=now,
            reason=reason,
        )
    )
    try:
        session.flush()
    except StaleDataError as exc:  # another transaction won the race since we read it
        raise StaleVersionError(
            "报告卡已被他人修改,请刷新后重试",
            "the card was changed by someone else; reload it and retry",
        ) from exc
    old, new = diff(before, snapshot(card))
    old.pop("updated_at", None)
    new.pop("updated_at", None)
    record(
        session,
        actor=actor,
        action=f"card.{action}",
        entity_type="card",
        entity_id=card.id,
        before=old,
        after=new,
        reason=reason,
    )
    return card


def _require_reason(reason: str | None, what_zh: str, what_en: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise BadRequestError(
            f"{what_zh}须填写原因",
            f"{what_en} needs a reason",
            fields=[
                FieldError(
                    field="reason",
                    code="reason.required",
                    message_zh=f"{what_zh}原因必填",
                    message_en=f"a reason for the {what_en} is required",
                )
            ],
        )
    return text


def _set_content(card: Card, values: Mapping[str, Any]) -> None:
    for f, value in values.items():
        if f == "card_number" and not value:
            continue
        setattr(card, f, value)
    card.name_key = name_key(card.patient_name)


def _flag_duplicates(session: Session, card: Card) -> None:
    from yifang.cases.duplicates import scan  # duplicates builds on this module

    scan(session, [card.id])


# --------------------------------------------------------------------------- transitions


def create_card(
    session: Session,
    data: Mapping[str, Any],
    *,
    scope: Scope,
    submit: bool = True,
    source: str = "web",
    now: datetime | None = None,
) -> Card:
    """Store a new card as a draft or, by default, submitted for review.

    ``data`` holds raw values under the card's column names (codes or labels, strings or
    dates). A submitted card gets its review due time and is checked for duplicates.
    """
    now = now or utcnow()
    values = _validated(session, data, now)
    if not values.get("card_number"):
        values["card_number"] = new_card_number(now)
    _check_number_free(session, values["card_number"])
    card = Card(
        **values,
        status=SUBMITTED if submit else DRAFT,
        version=1,
        entered_at=now,
        created_by=scope.actor,
        source=source,
        name_key=name_key(values.get("patient_name")),
    )
    if submit:
        card.submitted_at = now
        card.review_due_at = _review_due(session, card.disease_code, now)
    session.add(card)
    session.flush()
    record(
        session,
        actor=scope.actor,
        action="card.create",
        entity_type="card",
        entity_id=card.id,
        after=snapshot(card),
    )
    if submit:
        _flag_duplicates(session, card)
    return card


def _check_number_free(session: Session, number: str, own_id: int | None = None) -> None:
    taken = session.scalar(select(Card.id).where(Card.card_number == number))
    if taken is not None and taken != own_id:
        raise CardInvalidError(
            f"卡片编号 {number} 已存在",
            f"card number {number} is already in use",
            fields=[
                FieldError(
                    field="card_number",
                    code="card_number.taken",
                    message_zh=f"卡片编号:{number} 已存在",
                    message_en=f"card_number: {number} is already in use",
                )
            ],
            code="validation_failed",
        )


def edit_card(
    session: Session,
    card_id: int,
    data: Mapping[str, Any],
    *,
    version: int,
    scope: Scope,
    now: datetime | None = None,
) -> Card:
    """Change a draft or returned card's content. ``data`` may hold only the fields that
    change; the whole resulting card is validated."""
    now = now or utcnow()
    card = _load(session, card_id, scope)
    _check(card, "edit", version)
    merged = {**card_content(card), **{k: v for k, v in data.items() if k in CARD_FIELDS}}
    values = _validated(session, merged, now)
    if values.get("card_number"):
        _check_number_free(session, values["card_number"], card.id)
    before = snapshot(card)
    _set_content(card, values)
    return _commit_change(
        session, card, before, action="edit", actor=scope.actor, reason=None, now=now
    )


def submit_card(
    session: Session,
    card_id: int,
    *,
    version: int,
    scope: Scope,
    now: datetime | None = None,
) -> Card:
    """Send a draft, or a returned card after its fix, to the county CDC for review. The
    content is validated again (the catalog may have changed since it was saved)."""
    now = now or utcnow()
    card = _load(session, card_id, scope)
    _check(card, "submit", version)
    _validated(session, card_content(card), now)
    due = _review_due(session, card.disease_code, now)  # queries first: one UPDATE per change
    before = snapshot(card)
    card.status = SUBMITTED
    card.submitted_at = now
    card.review_due_at = due
    _commit_change(session, card, before, action="submit", actor=scope.actor, reason=None, now=now)
    _flag_duplicates(session, card)
    return card


def review_card(
    session: Session,
    card_id: int,
    *,
    version: int,
    scope: Scope,
    now: datetime | None = None,
) -> Card:
    """The county CDC's review (审核): the card becomes final (已终审)."""
    now = now or utcnow()
    card = _load(session, card_id, scope)
    _check(card, "review", version)
    before = snapshot(card)
    card.status = REVIEWED
    card.reviewed_at = now
    card.reviewed_by = scope.actor
    card.returned_reason = None
    return _commit_change(
        session, card, before, action="review", actor=scope.actor, reason=None, now=now
    )


def return_card(
    session: Session,
    card_id: int,
    *,
    version: int,
    scope: Scope,
    reason: str,
    now: datetime | None = None,
) -> Card:
    """Send a submitted card back to the hospital with a reason (退卡)."""
    now = now or utcnow()
    text = _require_reason(reason, "退卡", "return")
    card = _load(session, card_id, scope)
    _check(card, "return", version)
    before = snapshot(card)
    card.status = RETURNED
    card.returned_reason = text
    card.review_due_at = None
    return _commit_change(
        session, card, before, action="return", actor=scope.actor, reason=text, now=now
    )


def correct_card(
    session: Session,
    card_id: int,
    changes: Mapping[str, Any],
    *,
    version: int,
    scope: Scope,
    reason: str | None = None,
    now: datetime | None = None,
) -> Card:
    """A correction after review (订正): new diagnosis, classification or disease.

    The card becomes a 订正报告 (report type 2) and goes back to review; the card as it was
    (订正前病种, 订正前诊断时间, 订正前终审时间 …) stays in its revisions and the audit trail.
    Only :data:`CORRECTABLE_FIELDS` may change, and at least one must.
    """
    now = now or utcnow()
    card = _load(session, card_id, scope)
    _check(card, "correct", version)
    unknown = sorted(set(changes) - CORRECTABLE_FIELDS)
    if unknown:
        raise BadRequestError(
            "订正只能修改诊断、病例分类、病种及相关日期",
            "a correction may change only the diagnosis, classification, disease and dates",
            fields=[
                FieldError(
                    field=f,
                    code=f"{f}.not_correctable",
                    message_zh=f"{f}:订正时不可修改",
                    message_en=f"{f}: cannot be changed by a correction",
                )
                for f in unknown
            ],
        )
    current = card_content(card)
    merged = {**current, **changes, "report_type": "2"}
    values = _validated(session, merged, now)
    if all(values.get(f) == current.get(f) for f in changes):
        raise BadRequestError("订正内容与原卡相同", "the correction changes nothing")
    due = _review_due(session, values["disease_code"], now)
    before = snapshot(card)
    _set_content(card, values)
    card.report_type = "2"
    card.status = SUBMITTED
    card.corrected_at = now
    card.submitted_at = now
    card.review_due_at = due
    _commit_change(
        session,
        card,
        before,
        action="correct",
        actor=scope.actor,
        reason=(reason or "").strip() or None,
        now=now,
    )
    _flag_duplicates(session, card)
    return card


def delete_card(
    session: Session,
    card_id: int,
    *,
    version: int | None,
    scope: Scope,
    reason_code: str,
    reason: str,
    duplicate_of: int | None = None,
    now: datetime | None = None,
) -> Card:
    """Soft-delete a card with a reason code (:data:`DELETE_REASONS`) and a text. The card
    stays in the database (已删除卡) and is left out of counts and lists by default.
    ``version`` None skips the version check (used when a reviewer merges duplicates)."""
    now = now or utcnow()
    if reason_code not in DELETE_REASONS:
        raise BadRequestError(
            f"删除类型「{reason_code}」无效",
            f"unknown deletion reason code '{reason_code}'",
            fields=[
                FieldError(
                    field="reason_code",
                    code="reason_code.invalid_code",
                    message_zh=f"删除类型:应为 {'、'.join(DELETE_REASONS)} 之一",
                    message_en=f"reason_code: must be one of {', '.join(DELETE_REASONS)}",
                )
            ],
        )
    text = _require_reason(reason, "删除", "deletion")
    card = _load(session, card_id, scope)
    _check(card, "delete", version)
    before = snapshot(card)
    card.status = DELETED
    card.deleted_at = now
    card.deleted_reason_code = reason_code
    card.deleted_reason = text
    card.review_due_at = None
    if duplicate_of is not None:
        card.duplicate_of_id = duplicate_of
    return _commit_change(
        session,
        card,
        before,
        action="delete",
        actor=scope.actor,
        reason=f"{DELETE_REASONS[reason_code][0]}: {text}",
        now=now,
    )


def history(session: Session, card_id: int) -> list[CardRevision]:
    """The card's earlier states, oldest first."""
    return list(
        session.scalars(
            select(CardRevision).where(CardRevision.card_id == card_id).order_by(CardRevision.id)
        )
    )
