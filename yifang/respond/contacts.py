"""Close contacts (密切接触者) of a case and their daily follow-up (医学观察).

A contact is registered against the case's report card. Follow-up runs from the
registration to ``follow_up_end`` = last exposure + the case disease's longest incubation
period (``Disease.incubation_max_days``, rounded up to whole days; ``default_follow_up_days``
of response.yaml when the catalog has none). Each day's follow-up records symptoms, the
temperature (°C) and the contact's condition; a fever or symptom notifies the CDC.

Contact states::

    following ──end (follow-up complete)──▶ ended
        │──convert (became a case)──▶ converted   (a draft report card is filled in)
        └──lose (unreachable)──▶ lost

Conversion — the step users of Go.Data and SORMAS miss — pre-fills a draft card through
:func:`yifang.cases.service.create_card` from the contact's own details and the case's
disease; the caller supplies what only a clinician knows (diagnosis time, classification,
reporting organisation …). If the card cannot be completed yet, an existing card may be
linked instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yifang.cases import service as cards
from yifang.cases.models import Card
from yifang.cases.queries import mask_id_number, mask_name, mask_phone, scope_clause
from yifang.catalog.models import Disease
from yifang.core.audit import record
from yifang.core.db import utcnow
from yifang.respond.config import response_config
from yifang.respond.models import Contact, Event, FollowUp
from yifang.respond.service import (
    BadRequestError,
    Machine,
    NotFoundError,
    RespondError,
    Viewer,
    created,
    load_for_update,
    notify_cdc,
    region_scope,
    require_text,
    transition,
)

FOLLOWING = "following"
ENDED = "ended"
CONVERTED = "converted"
LOST = "lost"
CONDITIONS = ("well", "symptomatic", "unreachable")

CONTACT = Machine(
    entity="contact",
    labels={
        FOLLOWING: ("医学观察中", "following"),
        ENDED: ("解除观察", "ended"),
        CONVERTED: ("转为病例", "became a case"),
        LOST: ("失访", "lost to follow-up"),
    },
    allowed_from={
        "follow_up": frozenset({FOLLOWING}),
        "end": frozenset({FOLLOWING}),
        "convert": frozenset({FOLLOWING, ENDED, LOST}),
        "lose": frozenset({FOLLOWING}),
    },
    actions_zh={"follow_up": "随访", "end": "解除观察", "convert": "转为病例", "lose": "标记失访"},
)

PERSONAL = ("name", "id_number", "phone", "address_detail")


class CardNotCreatedError(RespondError):
    """The draft card could not be stored: the card's own field errors are passed on."""

    status = 422
    code = "card_invalid"

    def __init__(self, error: cards.CardError, prefill: dict[str, Any]) -> None:
        super().__init__(error.message_zh, error.message_en)
        self.card_error = error
        self.prefill = prefill

    def as_dict(self) -> dict[str, Any]:
        """The card's error body plus the pre-filled values, to complete and resend."""
        body = self.card_error.as_dict()
        body["error"] = self.code
        body["prefill"] = {
            k: (v.isoformat() if isinstance(v, date) else v) for k, v in self.prefill.items()
        }
        return body


def contact_clause(viewer: Viewer) -> ColumnElement[bool]:
    """Contacts the viewer may see: those of regions within their scope."""
    return region_scope(Contact.region_code, viewer.scope)


def contact_view(contact: Contact, *, identified: bool) -> dict[str, Any]:
    """The contact's columns; personal data masked for callers who may not see it."""
    values = {c.key: getattr(contact, c.key) for c in Contact.__table__.columns}
    if not identified:
        values["name"] = mask_name(values["name"])
        values["id_number"] = mask_id_number(values["id_number"])
        values["phone"] = mask_phone(values["phone"])
        values["address_detail"] = None
    return values


def follow_up_days(session: Session, disease_code: str) -> int:
    """Days of follow-up after the last exposure: the disease's longest incubation."""
    disease = session.get(Disease, disease_code)
    if disease is not None and disease.incubation_max_days:
        return math.ceil(disease.incubation_max_days)
    return response_config().default_follow_up_days


def add_contact(
    session: Session,
    case_card_id: int,
    *,
    viewer: Viewer,
    data: Mapping[str, Any],
    event_id: int | None = None,
    now: datetime | None = None,
) -> Contact:
    """Register a close contact of the case on card ``case_card_id``."""
    now = now or utcnow()
    card = session.scalars(
        select(Card).where(Card.id == case_card_id, scope_clause(viewer.scope))
    ).first()
    if card is None:
        raise NotFoundError(
            f"报告卡 {case_card_id} 不存在", f"card {case_card_id} not found", field="case_card_id"
        )
    if event_id is not None and session.get(Event, event_id) is None:
        raise NotFoundError(
            f"事件 {event_id} 不存在", f"event {event_id} not found", field="event_id"
        )
    name = require_text(data.get("name"), "name", "姓名", "a name")
    last = data.get("last_exposure")
    if not isinstance(last, date):
        raise BadRequestError(
            "末次暴露日期必填", "last_exposure (a date) is required", field="last_exposure"
        )
    if last > now.date():
        raise BadRequestError(
            "末次暴露日期不能晚于今天", "last_exposure is in the future", field="last_exposure"
        )
    end = last + timedelta(days=follow_up_days(session, card.disease_code))
    address = (data.get("address_code") or card.address_code or "")[:12]
    contact = Contact(
        case_card_id=card.id,
        event_id=event_id,
        disease_code=card.disease_code,
        region_code=address[:9] if address else card.address_code[:9],
        name=name[:40],
        sex=data.get("sex"),
        birth_date=data.get("birth_date"),
        id_number=data.get("id_number"),
        phone=data.get("phone"),
        address_code=address or None,
        address_detail=data.get("address_detail"),
        relation=data.get("relation"),
        last_exposure=last,
        follow_up_end=end,
        status=FOLLOWING,
        created_by=viewer.actor,
        created_at=now,
        version=1,
    )
    session.add(contact)
    session.flush()
    created(session, "contact", contact, actor=viewer.actor, now=now)
    return contact


def list_contacts(
    session: Session,
    viewer: Viewer,
    *,
    case_card_id: int | None = None,
    event_id: int | None = None,
    status: str | None = None,
    due_on: date | None = None,
    limit: int = 200,
) -> list[Contact]:
    """Contacts the viewer may see; ``due_on``: those still under follow-up on that day
    without a record for it (the day's to-do list)."""
    stmt = select(Contact).where(contact_clause(viewer))
    if case_card_id is not None:
        stmt = stmt.where(Contact.case_card_id == case_card_id)
    if event_id is not None:
        stmt = stmt.where(Contact.event_id == event_id)
    if status:
        stmt = stmt.where(Contact.status == status)
    if due_on is not None:
        done = select(FollowUp.contact_id).where(FollowUp.day == due_on)
        stmt = stmt.where(
            Contact.status == FOLLOWING, Contact.follow_up_end >= due_on, Contact.id.not_in(done)
        )
    return list(session.scalars(stmt.order_by(Contact.id).limit(limit)))


def get_contact(session: Session, viewer: Viewer, contact_id: int) -> Contact:
    """One contact the viewer may see, else :class:`NotFoundError`."""
    row = session.scalars(
        select(Contact).where(Contact.id == contact_id, contact_clause(viewer))
    ).first()
    if row is None:
        raise NotFoundError(f"密切接触者 {contact_id} 不存在", f"contact {contact_id} not found")
    return row


def follow_ups(session: Session, contact_id: int) -> list[FollowUp]:
    """A contact's daily records, by day."""
    return list(
        session.scalars(
            select(FollowUp).where(FollowUp.contact_id == contact_id).order_by(FollowUp.day)
        )
    )


def record_follow_up(
    session: Session,
    contact_id: int,
    *,
    viewer: Viewer,
    day: date,
    condition: str,
    symptoms: Sequence[str] = (),
    temperature: float | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> FollowUp:
    """One day's follow-up. A fever or symptom notifies the CDC; a record on or after
    the end day completes the follow-up (→ ended) unless the contact is unwell."""
    now = now or utcnow()
    if condition not in CONDITIONS:
        raise BadRequestError(
            f"状况应为 {'、'.join(CONDITIONS)} 之一",
            f"condition must be one of {', '.join(CONDITIONS)}",
            field="condition",
        )
    if temperature is not None and not 30.0 <= temperature <= 45.0:
        raise BadRequestError(
            "体温应在 30-45 ℃ 之间", "temperature must be 30-45 °C", field="temperature"
        )
    contact = load_for_update(
        session, Contact, contact_id, contact_clause(viewer), "密切接触者", "contact"
    )
    CONTACT.check(contact, "follow_up", None)
    if day < contact.last_exposure or day > now.date():
        raise BadRequestError(
            "随访日期应在末次暴露之后且不晚于今天",
            "day must be after the last exposure and not in the future",
            field="day",
        )
    row = FollowUp(
        contact_id=contact.id,
        day=day,
        symptoms=[s.strip() for s in symptoms if s.strip()],
        temperature=temperature,
        condition=condition,
        note=note,
        recorded_by=viewer.actor,
        recorded_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise BadRequestError(
            f"{day} 已有随访记录", f"a follow-up for {day} already exists", field="day"
        ) from None
    record(
        session,
        actor=viewer.actor,
        action="contact.follow_up",
        entity_type="contact",
        entity_id=contact.id,
        after={
            "day": day,
            "condition": condition,
            "temperature": temperature,
            "symptoms": row.symptoms,
        },
    )
    fever = temperature is not None and temperature >= response_config().fever_celsius
    if fever or row.symptoms or condition == "symptomatic":
        notify_cdc(
            session,
            None,
            contact.region_code,
            kind="contact_symptomatic",
            title=f"密切接触者出现症状(编号 {contact.id})",
            body=f"{day}:{'、'.join(row.symptoms) or condition}"
            + (f",体温 {temperature} ℃" if temperature is not None else ""),
            entity_type="contact",
            entity_id=contact.id,
        )
    elif day >= contact.follow_up_end:
        transition(
            session,
            CONTACT,
            contact,
            "end",
            actor=viewer.actor,
            version=contact.version,
            to_status=ENDED,
            reason="观察期满 follow-up complete",
            now=now,
        )
    return row


def end_follow_up(session: Session, now: datetime | None = None) -> int:
    """The periodic job: contacts past their end day whose last record was well → ended."""
    now = now or utcnow()
    count = 0
    for contact in session.scalars(
        select(Contact).where(Contact.status == FOLLOWING, Contact.follow_up_end < now.date())
    ).all():
        last = session.scalars(
            select(FollowUp).where(FollowUp.contact_id == contact.id).order_by(FollowUp.day.desc())
        ).first()
        if last is not None and last.condition == "well":
            transition(
                session,
                CONTACT,
                contact,
                "end",
                actor="system",
                version=contact.version,
                to_status=ENDED,
                reason="观察期满 follow-up complete",
                now=now,
            )
            count += 1
    return count


def mark_lost(
    session: Session, contact_id: int, *, viewer: Viewer, version: int, reason: str
) -> Contact:
    """Record that a contact could no longer be reached (失访), with a reason."""
    text = require_text(reason, "reason", "失访原因", "a reason")
    contact = load_for_update(
        session, Contact, contact_id, contact_clause(viewer), "密切接触者", "contact"
    )
    return transition(
        session,
        CONTACT,
        contact,
        "lose",
        actor=viewer.actor,
        version=version,
        to_status=LOST,
        reason=text,
    )


def card_prefill(session: Session, contact: Contact) -> dict[str, Any]:
    """The card fields a contact's record already gives (the rest is the clinician's)."""
    values: dict[str, Any] = {
        "patient_name": contact.name,
        "sex": contact.sex,
        "birth_date": contact.birth_date,
        "id_number": contact.id_number,
        "id_type": "1" if contact.id_number else None,
        "phone": contact.phone,
        "address_code": contact.address_code,
        "address_detail": contact.address_detail,
        "disease_code": contact.disease_code,
        "remarks": f"密切接触者转病例(原病例卡 {contact.case_card_id})",
    }
    return {k: v for k, v in values.items() if v is not None}


def convert_to_case(
    session: Session,
    contact_id: int,
    *,
    viewer: Viewer,
    version: int,
    card: Mapping[str, Any] | None = None,
    card_id: int | None = None,
    now: datetime | None = None,
) -> tuple[Contact, Card]:
    """The contact became a case: create a draft report card pre-filled from the contact
    (``card`` completes or overrides fields), or link an existing card (``card_id``)."""
    now = now or utcnow()
    contact = load_for_update(
        session, Contact, contact_id, contact_clause(viewer), "密切接触者", "contact"
    )
    CONTACT.check(contact, "convert", version)
    if card_id is not None:
        linked = session.scalars(
            select(Card).where(Card.id == card_id, scope_clause(viewer.scope))
        ).first()
        if linked is None:
            raise NotFoundError(
                f"报告卡 {card_id} 不存在", f"card {card_id} not found", field="card_id"
            )
        new_card = linked
    else:
        data = {**card_prefill(session, contact), **dict(card or {})}
        try:
            with session.begin_nested():
                new_card = cards.create_card(
                    session, data, scope=viewer.scope, submit=False, now=now
                )
        except cards.CardError as exc:
            raise CardNotCreatedError(exc, data) from exc
    transition(
        session,
        CONTACT,
        contact,
        "convert",
        actor=viewer.actor,
        version=version,
        changes={"converted_card_id": new_card.id},
        to_status=CONVERTED,
        reason=f"card {new_card.id}",
        now=now,
    )
    return contact, new_card
