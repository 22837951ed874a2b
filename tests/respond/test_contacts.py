"""Close contacts: follow-up window from the catalog, daily records, ending, conversion."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.cases.test_workflow_factories import id_number
from tests.respond.conftest import CITY, NOW, SPS, ZN, make_card
from yifang.cases.models import Card
from yifang.respond import contacts, service
from yifang.respond.models import Notification


def test_follow_up_end_is_last_exposure_plus_longest_incubation(session):
    case = make_card(session, "MEASLES")  # incubation max 21 days in the catalog
    c = contacts.add_contact(
        session,
        case.id,
        viewer=ZN,
        data={"name": "王五", "phone": "13900001111", "last_exposure": date(2026, 5, 30)},
        now=NOW,
    )
    assert c.follow_up_end == date(2026, 6, 20) and c.status == "following"
    assert c.region_code == "640521100"


def test_personal_data_masked_for_unidentified_viewers(session):
    case = make_card(session)
    c = contacts.add_contact(
        session,
        case.id,
        viewer=ZN,
        data={"name": "王小五", "phone": "13900001111", "last_exposure": date(2026, 5, 30)},
        now=NOW,
    )
    shown = contacts.contact_view(c, identified=False)
    assert shown["name"] == "王**" and shown["phone"] == "139****1111"
    assert contacts.contact_view(c, identified=True)["name"] == "王小五"
    assert contacts.list_contacts(session, SPS) == []
    assert [x.id for x in contacts.list_contacts(session, CITY)] == [c.id]


def test_daily_follow_up_fever_notifies_and_end_completes(session):
    case = make_card(session, "HFMD")
    c = contacts.add_contact(
        session,
        case.id,
        viewer=ZN,
        data={"name": "甲", "last_exposure": date(2026, 5, 25)},
        now=NOW,
    )
    end = c.follow_up_end
    due = contacts.list_contacts(session, ZN, due_on=date(2026, 5, 26))
    assert [x.id for x in due] == [c.id]
    contacts.record_follow_up(
        session, c.id, viewer=ZN, day=date(2026, 5, 26), condition="well", temperature=36.6, now=NOW
    )
    assert contacts.list_contacts(session, ZN, due_on=date(2026, 5, 26)) == []
    with pytest.raises(service.BadRequestError):  # one record a day
        contacts.record_follow_up(
            session, c.id, viewer=ZN, day=date(2026, 5, 26), condition="well", now=NOW
        )
    with pytest.raises(service.BadRequestError):
        contacts.record_follow_up(
            session, c.id, viewer=ZN, day=date(2026, 5, 27), condition="fine", now=NOW
        )
    contacts.record_follow_up(
        session, c.id, viewer=ZN, day=date(2026, 5, 27), condition="well", temperature=38.1, now=NOW
    )
    assert session.scalars(
        select(Notification).where(Notification.kind == "contact_symptomatic")
    ).one()
    later = datetime.combine(end, datetime.min.time()) + timedelta(hours=12)
    contacts.record_follow_up(session, c.id, viewer=ZN, day=end, condition="well", now=later)
    assert c.status == "ended"
    with pytest.raises(service.IllegalTransitionError):
        contacts.record_follow_up(session, c.id, viewer=ZN, day=end, condition="well", now=later)


def test_job_ends_follow_up_after_the_end_day(session):
    case = make_card(session, "HFMD")
    c = contacts.add_contact(
        session, case.id, viewer=ZN, data={"name": "乙", "last_exposure": date(2026, 5, 1)}, now=NOW
    )
    contacts.record_follow_up(
        session, c.id, viewer=ZN, day=date(2026, 5, 10), condition="well", now=NOW
    )
    assert contacts.end_follow_up(session, NOW) == 1 and c.status == "ended"


def test_convert_contact_to_draft_card(session):
    today = datetime.now().date()
    case = make_card(session, "VARICELLA", onset=today - timedelta(days=10))
    birth = date(2016, 3, 4)
    c = contacts.add_contact(
        session,
        case.id,
        viewer=ZN,
        data={
            "name": "赵六",
            "sex": "1",
            "birth_date": birth,
            "id_number": id_number("640521", birth, 7),
            "phone": "13900002222",
            "address_code": "640521100",
            "address_detail": "宁安镇北街 3 号",
            "last_exposure": today - timedelta(days=8),
        },
    )
    with pytest.raises(contacts.CardNotCreatedError) as err:
        contacts.convert_to_case(session, c.id, viewer=ZN, version=1)  # clinician fields missing
    body = err.value.as_dict()
    assert body["fields"] and body["prefill"]["patient_name"] == "赵六"
    assert c.status == "following"
    diagnosed = datetime.combine(today - timedelta(days=1), datetime.min.time()) + timedelta(
        hours=9
    )
    contact, card = contacts.convert_to_case(
        session,
        c.id,
        viewer=ZN,
        version=1,
        card={
            "residence_category": "1",
            "occupation": "3",
            "classification": "2",
            "onset_date": diagnosed.date() - timedelta(days=1),
            "diagnosis_time": diagnosed,
            "org_code": "640521HP01",
            "doctor_name": "李医生",
            "fill_date": diagnosed.date(),
            "guardian_name": "赵大",
            "work_unit": "宁安镇第一小学",
        },
    )
    assert contact.status == "converted" and contact.converted_card_id == card.id
    stored = session.get(Card, card.id)
    assert (stored.status, stored.patient_name, stored.disease_code) == (
        "draft",
        "赵六",
        "VARICELLA",
    )


def test_convert_by_linking_existing_card(session):
    case = make_card(session)
    other = make_card(session)
    c = contacts.add_contact(
        session,
        case.id,
        viewer=ZN,
        data={"name": "丙", "last_exposure": date(2026, 5, 30)},
        now=NOW,
    )
    contacts.mark_lost(session, c.id, viewer=ZN, version=1, reason="电话停机")
    contact, card = contacts.convert_to_case(session, c.id, viewer=ZN, version=2, card_id=other.id)
    assert contact.status == "converted" and card.id == other.id
