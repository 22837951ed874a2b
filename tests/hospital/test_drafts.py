"""Draft cards in front of the doctor: confirm, correct, reject; one draft per person and
disease; missed reports (漏报) and the hospital's figures."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest
from sqlalchemy import select

from tests.hospital.conftest import HOSPITAL, ID_NUMBER, TOWNSHIP, bearer
from yifang.cases import service as cards
from yifang.cases.models import Card
from yifang.core.jurisdiction import Scope
from yifang.hospital import drafts, service
from yifang.hospital.models import IdentifiedCase, MissedReport
from yifang.hospital.rules import ruleset

SCOPE = Scope(organisation_code=HOSPITAL, actor="doctor")
NOW = datetime(2025, 3, 1, 4, 0)  # 12:00 in the city (UTC+8)


def ingest(session, rows, dx, labs=None, now=NOW):
    enc = pl.DataFrame(
        [
            {
                "org_code": HOSPITAL,
                "patient_name": "马建国",
                "sex": "1",
                "birth_date": date(1990, 1, 1),
                "address_code": TOWNSHIP,
                "doctor_name": "李医生",
                "occupation": "18",
                "id_number": ID_NUMBER,
                **r,
            }
            for r in rows
        ]
    )
    dxf = pl.DataFrame(
        [{"org_code": HOSPITAL, "entry_key": f"d{i}", **d} for i, d in enumerate(dx)]
    )
    labf = pl.DataFrame([{"org_code": HOSPITAL, **x} for x in labs]) if labs else None
    report = service.ingest_frames(session, enc, dxf, labf, now=now)
    session.commit()
    return report


def cases(session):
    session.expire_all()
    return session.scalars(select(IdentifiedCase).order_by(IdentifiedCase.id)).all()


def visit(number, when, **extra):
    return {"visit_number": number, "visit_time": when, "patient_number": "P1", **extra}


def test_confirm_submits_the_card_through_the_cases_workflow(session, rules_loaded):
    ingest(
        session, [visit("V1", datetime(2025, 3, 1, 9))], [{"visit_number": "V1", "icd10": "B01"}]
    )
    case = cases(session)[0]
    assert case.status == "draft" and case.draft_errors == []  # complete: occupation was sent
    drafts.confirm(session, case.id, scope=SCOPE, now=NOW)
    session.commit()
    card = session.get(Card, case.card_id)
    assert card.status == "submitted" and card.review_due_at is not None
    assert cases(session)[0].status == "reported"
    assert session.scalars(select(MissedReport)).all() == []


def test_confirm_with_corrections_and_invalid_corrections(session, rules_loaded):
    ingest(
        session,
        [visit("V1", datetime(2025, 3, 1, 9), occupation=None)],
        [{"visit_number": "V1", "icd10": "B01"}],
    )
    case = cases(session)[0]
    assert [e["field"] for e in case.draft_errors] == ["occupation"]
    with pytest.raises(cards.CardInvalidError):  # still incomplete: refused, nothing changes
        drafts.confirm(session, case.id, scope=SCOPE, now=NOW)
    session.rollback()
    drafts.confirm(session, case.id, scope=SCOPE, changes={"occupation": "农民"}, now=NOW)
    session.commit()
    card = session.get(Card, case.card_id)
    assert card.occupation == "18" and card.status == "submitted"


def test_reject_deletes_the_draft_with_the_reason(session, rules_loaded):
    ingest(
        session, [visit("V1", datetime(2025, 3, 1, 9))], [{"visit_number": "V1", "icd10": "A09"}]
    )
    case = cases(session)[0]
    with pytest.raises(cards.BadRequestError):
        drafts.reject(session, case.id, scope=SCOPE, reason="  ")
    drafts.reject(session, case.id, scope=SCOPE, reason="非感染性腹泻", now=NOW)
    session.commit()
    card = session.get(Card, case.card_id)
    assert card.status == "deleted" and card.deleted_reason == "非感染性腹泻"
    assert cases(session)[0].status == "rejected"
    with pytest.raises(cards.IllegalTransitionError):
        drafts.confirm(session, case.id, scope=SCOPE)


def test_another_hospital_cannot_see_or_act_on_the_draft(session, rules_loaded):
    ingest(
        session, [visit("V1", datetime(2025, 3, 1, 9))], [{"visit_number": "V1", "icd10": "B01"}]
    )
    case = cases(session)[0]
    other = Scope(organisation_code="640522HP01", actor="x")
    with pytest.raises(cards.CardNotFoundError):
        drafts.confirm(session, case.id, scope=other)
    assert drafts.list_cases(session, other) == []


def test_one_draft_per_person_and_disease_within_the_window(session, rules_loaded):
    ingest(
        session,
        [
            visit("V1", datetime(2025, 3, 1, 9)),
            visit("V2", datetime(2025, 3, 3, 9)),  # same person, 2 days later: merged
            visit("V3", datetime(2025, 5, 1, 9)),  # 61 days later: OID's window is 14 days
        ],
        [
            {"visit_number": "V1", "icd10": "A09"},
            {"visit_number": "V2", "icd10": "A08.1"},
            {"visit_number": "V3", "icd10": "A09"},
        ],
    )
    found = cases(session)
    assert [c.status for c in found] == ["draft", "merged", "draft"]
    assert found[1].merged_into_id == found[0].id
    # a later message about the same person, still within the window, joins the draft
    ingest(
        session, [visit("V4", datetime(2025, 3, 5, 9))], [{"visit_number": "V4", "icd10": "A09"}]
    )
    assert cases(session)[-1].status == "merged"


def test_a_person_already_reported_gets_no_second_draft(session, rules_loaded):
    existing = cards.create_card(
        session,
        {
            "patient_name": "马建国",
            "sex": "1",
            "id_type": "1",
            "id_number": ID_NUMBER,
            "birth_date": "1990-01-01",
            "residence_category": "1",
            "address_code": TOWNSHIP,
            "occupation": "18",
            "classification": "2",
            "onset_date": "2025-02-20",
            "diagnosis_time": "2025-02-21 10:00",
            "disease_code": "TB_NOLAB",
            "org_code": "640521TC01",
            "doctor_name": "王医生",
            "fill_date": "2025-02-21",
        },
        scope=Scope.everything("doctor"),
        now=datetime(2025, 2, 21, 4),
    )
    session.commit()
    ingest(
        session,
        [visit("V1", datetime(2025, 3, 1, 9), id_number=ID_NUMBER)],
        [{"visit_number": "V1", "icd10": "A15.000"}],  # TB_POS: same group (TB)
    )
    case = cases(session)[0]
    assert case.status == "already_reported" and case.card_id == existing.id
    assert session.scalars(select(Card).where(Card.source == "hospital")).all() == []


def test_a_laboratory_confirmation_upgrades_the_draft(session, rules_loaded):
    ingest(
        session, [visit("V1", datetime(2025, 3, 1, 9))], [{"visit_number": "V1", "icd10": "A16.1"}]
    )
    case = cases(session)[0]
    assert (case.disease_code, case.classification) == ("TB_NOLAB", "2")
    ingest(
        session,
        [visit("V1", datetime(2025, 3, 1, 9))],
        [],
        labs=[
            {
                "visit_number": "V1",
                "result_key": "L1",
                "test_name": "结核分枝杆菌核酸及利福平耐药检测(Xpert MTB/RIF)",
                "result_text": "MTB检出，利福平耐药:阳性",
                "observed_at": datetime(2025, 3, 2, 15),
            }
        ],
    )
    case = cases(session)[0]
    assert (case.disease_code, case.classification, case.status) == ("TB_RR", "3", "draft")
    card = session.get(Card, case.card_id)
    assert (card.disease_code, card.classification) == ("TB_RR", "3")


def test_missed_reports_are_flagged_resolved_and_counted(session, rules_loaded):
    ingest(
        session,
        [
            visit("V1", datetime(2025, 3, 1, 9)),
            visit("V2", datetime(2025, 3, 1, 9), patient_number="P2"),
        ],
        [
            {"visit_number": "V1", "icd10": "A00", "diagnosed_at": datetime(2025, 3, 1, 9, 20)},
            {"visit_number": "V2", "icd10": "B01"},
        ],
    )
    cholera, varicella = cases(session)
    assert cholera.due_at == datetime(2025, 3, 1, 11)  # 2 h for class A
    rules = ruleset(session)
    early = drafts.scan_missed(session, rules, now=datetime(2025, 3, 1, 2, 30))  # 10:30 local
    assert early.flagged == 0
    late = drafts.scan_missed(session, rules, now=datetime(2025, 3, 1, 3, 30))  # 11:30 local
    assert late.flagged == 1
    assert drafts.scan_missed(session, rules, now=datetime(2025, 3, 1, 4)).flagged == 0  # once
    session.commit()
    missed = session.scalars(select(MissedReport)).one()
    assert missed.case_id == cholera.id and missed.resolved_at is None
    drafts.confirm(session, cholera.id, scope=SCOPE, now=datetime(2025, 3, 1, 5))
    drafts.confirm(session, varicella.id, scope=SCOPE, now=datetime(2025, 3, 1, 5))
    session.commit()
    session.expire_all()
    assert session.get(MissedReport, missed.id).resolution == "reported_late"
    summary = drafts.missed_summary(session)
    assert summary == [
        {
            "org_code": HOSPITAL,
            "identified": 2,
            "reported_in_time": 1,
            "missed": 1,
            "missed_open": 0,
            "missed_rate": 0.5,
        }
    ]


def test_a_draft_submitted_on_the_card_pages_counts_as_reported(session, rules_loaded):
    ingest(
        session, [visit("V1", datetime(2025, 3, 1, 9))], [{"visit_number": "V1", "icd10": "B01"}]
    )
    case = cases(session)[0]
    card = session.get(Card, case.card_id)
    cards.submit_card(session, card.id, version=card.version, scope=SCOPE, now=NOW)
    session.commit()
    result = drafts.scan_missed(session, ruleset(session), now=datetime(2025, 3, 5))
    assert result.synced_reported == 1 and result.flagged == 0
    assert cases(session)[0].status == "reported"


def test_draft_api_for_the_doctor(client, session, tokens):
    ingest(
        session, [visit("V1", datetime(2025, 3, 1, 9))], [{"visit_number": "V1", "icd10": "B01"}]
    )
    h = bearer(tokens["his"])
    listed = client.get("/api/hospital/cases?status=draft", headers=h)
    assert listed.status_code == 200 and len(listed.json()) == 1
    case_id = listed.json()[0]["id"]
    assert (
        client.get("/api/hospital/cases?status=draft", headers=bearer(tokens["his2"])).json() == []
    )
    r = client.post(f"/api/hospital/cases/{case_id}/confirm", json={"changes": {}}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "reported"
    again = client.post(f"/api/hospital/cases/{case_id}/reject", json={"reason": "x"}, headers=h)
    assert again.status_code == 409 and again.json()["error"] == "illegal_transition"
    assert client.get("/api/hospital/missed/summary", headers=h).json()[0]["identified"] == 1
    assert client.post("/api/hospital/missed/scan", headers=h).status_code == 403
    assert (
        client.post("/api/hospital/missed/scan", headers=bearer(tokens["cdc"])).status_code == 200
    )
