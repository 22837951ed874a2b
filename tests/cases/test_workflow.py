"""The card workflow: every transition, every illegal one, history, locking and audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.cases.test_workflow_factories import (
    CITY,
    SPT,
    ZN,
    card_data,
    catalog,  # noqa: F401 - fixture
    make_card,
)
from yifang.cases import queries, service
from yifang.cases.models import Card
from yifang.cases.service import (
    CardInvalidError,
    CardNotFoundError,
    IllegalTransitionError,
    StaleVersionError,
)
from yifang.core.audit import AuditEntry
from yifang.core.db import utcnow

pytestmark = pytest.mark.usefixtures("catalog")


def _audit(session: Session, card_id: int) -> list[AuditEntry]:
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity_type == "card", AuditEntry.entity_id == str(card_id))
            .order_by(AuditEntry.id)
        )
    )


def test_create_submitted_sets_review_due_from_disease_limit(session: Session) -> None:
    now = utcnow()
    card = service.create_card(session, card_data(), scope=CITY, now=now)
    assert card.status == service.SUBMITTED and card.version == 1
    assert card.submitted_at == now
    assert card.review_due_at == now + timedelta(hours=24)
    assert card.card_number and card.name_key == "张三"
    plague = service.create_card(
        session, card_data(disease="T_PLAGUE", seq=103), scope=CITY, now=now
    )
    assert plague.review_due_at == now + timedelta(hours=2)
    assert [a.action for a in _audit(session, card.id)] == ["card.create"]


def test_create_draft_has_no_due_time(session: Session) -> None:
    card = make_card(session, submit=False)
    assert card.status == service.DRAFT and card.review_due_at is None


def test_create_invalid_lists_every_field_error(session: Session) -> None:
    bad = card_data(patient_name="", sex="x", onset_date="2099-01-01")
    with pytest.raises(CardInvalidError) as info:
        service.create_card(session, bad, scope=CITY)
    fields = {f.field for f in info.value.fields}
    assert {"patient_name", "sex", "onset_date"} <= fields
    body = info.value.as_dict()
    assert body["error"] == "validation_failed" and body["message_zh"] and body["fields"]
    assert session.scalar(select(Card.id)) is None


def test_full_cycle_submit_return_edit_resubmit_review(session: Session) -> None:
    card = make_card(session, submit=False)
    card = service.submit_card(session, card.id, version=1, scope=CITY)
    assert card.status == service.SUBMITTED and card.version == 2
    card = service.return_card(session, card.id, version=2, scope=ZN, reason="地址不详")
    assert card.status == service.RETURNED and card.returned_reason == "地址不详"
    assert card.review_due_at is None
    card = service.edit_card(
        session, card.id, {"address_detail": "宁安镇北街 3 号"}, version=3, scope=CITY
    )
    assert card.status == service.RETURNED and card.address_detail == "宁安镇北街 3 号"
    card = service.submit_card(session, card.id, version=4, scope=CITY)
    assert card.status == service.SUBMITTED and card.review_due_at is not None
    card = service.review_card(session, card.id, version=5, scope=ZN)
    session.commit()
    assert card.status == service.REVIEWED and card.reviewed_by == "cdc-zn"
    assert card.reviewed_at is not None and card.version == 6
    revisions = service.history(session, card.id)
    assert [r.action for r in revisions] == ["submit", "return", "edit", "submit", "review"]
    assert [r.version for r in revisions] == [1, 2, 3, 4, 5]
    audit = _audit(session, card.id)
    assert [a.action for a in audit] == [
        "card.create",
        "card.submit",
        "card.return",
        "card.edit",
        "card.submit",
        "card.review",
    ]
    ret = audit[2]
    assert ret.actor == "cdc-zn" and ret.reason == "地址不详"
    assert ret.before["status"] == "submitted" and ret.after["status"] == "returned"
    assert audit[3].before == {"address_detail": "宁安镇南街 12 号", "version": 3}
    assert audit[3].after == {"address_detail": "宁安镇北街 3 号", "version": 4}


def test_correction_keeps_history_and_goes_back_to_review(session: Session) -> None:
    card = make_card(session, disease="T_HEPA", classification="2")
    card = service.review_card(session, card.id, version=1, scope=CITY)
    reviewed_at = card.reviewed_at
    card = service.correct_card(
        session,
        card.id,
        {"disease_code": "T_HEPE", "classification": "3"},
        version=2,
        scope=CITY,
        reason="实验室确诊为戊肝",
    )
    session.commit()
    assert card.report_type == "2" and card.status == service.SUBMITTED
    assert card.disease_code == "T_HEPE" and card.classification == "3"
    assert card.corrected_at is not None and card.review_due_at is not None
    old = service.history(session, card.id)[-1]
    assert old.action == "correct" and old.reason == "实验室确诊为戊肝"
    assert old.snapshot["disease_code"] == "T_HEPA"  # 订正前病种
    assert old.snapshot["classification"] == "2"
    assert old.snapshot["reviewed_at"] == reviewed_at.isoformat()  # 订正前终审时间
    assert old.snapshot["patient_name"] == "张三"  # the whole card, not only the diff
    entry = _audit(session, card.id)[-1]
    assert entry.action == "card.correct"
    assert entry.before["disease_code"] == "T_HEPA" and entry.after["disease_code"] == "T_HEPE"
    assert entry.before["report_type"] == "1" and entry.after["report_type"] == "2"
    card = service.review_card(session, card.id, version=3, scope=CITY)
    assert card.status == service.REVIEWED


def test_correction_is_validated_and_limited_to_diagnosis_fields(session: Session) -> None:
    card = make_card(session)
    service.review_card(session, card.id, version=1, scope=CITY)
    with pytest.raises(service.BadRequestError) as info:
        service.correct_card(session, card.id, {"patient_name": "李四"}, version=2, scope=CITY)
    assert info.value.fields[0].field == "patient_name"
    with pytest.raises(CardInvalidError):
        service.correct_card(session, card.id, {"classification": "9"}, version=2, scope=CITY)
    with pytest.raises(service.BadRequestError):
        service.correct_card(session, card.id, {"classification": "3"}, version=2, scope=CITY)


def test_soft_delete_keeps_the_card_and_needs_a_reason(session: Session) -> None:
    card = make_card(session)
    with pytest.raises(service.BadRequestError):
        service.delete_card(
            session, card.id, version=1, scope=CITY, reason_code="error", reason=" "
        )
    with pytest.raises(service.BadRequestError):
        service.delete_card(session, card.id, version=1, scope=CITY, reason_code="nope", reason="x")
    card = service.delete_card(
        session, card.id, version=1, scope=CITY, reason_code="ruledout", reason="排除诊断"
    )
    session.commit()
    assert card.status == service.DELETED and card.deleted_reason_code == "ruledout"
    assert session.get(Card, card.id) is not None
    assert queries.list_cards(session, CITY).items == []
    assert queries.counts(session, CITY) == []
    assert _audit(session, card.id)[-1].reason == "误诊(排除): 排除诊断"


@pytest.mark.parametrize(
    ("status", "action"),
    [
        ("draft", "review"),
        ("draft", "return"),
        ("draft", "correct"),
        ("submitted", "submit"),
        ("submitted", "edit"),
        ("submitted", "correct"),
        ("returned", "review"),
        ("returned", "return"),
        ("returned", "correct"),
        ("reviewed", "submit"),
        ("reviewed", "review"),
        ("reviewed", "return"),
        ("reviewed", "edit"),
        ("deleted", "submit"),
        ("deleted", "review"),
        ("deleted", "return"),
        ("deleted", "edit"),
        ("deleted", "correct"),
        ("deleted", "delete"),
    ],
)
def test_illegal_transitions_are_refused(session: Session, status: str, action: str) -> None:
    card = make_card(session, submit=status != "draft")
    v = card.version
    if status == "returned":
        v = service.return_card(session, card.id, version=v, scope=CITY, reason="r").version
    elif status == "reviewed":
        v = service.review_card(session, card.id, version=v, scope=CITY).version
    elif status == "deleted":
        v = service.delete_card(
            session, card.id, version=v, scope=CITY, reason_code="test", reason="t"
        ).version
    session.commit()
    calls = {
        "submit": lambda: service.submit_card(session, card.id, version=v, scope=CITY),
        "review": lambda: service.review_card(session, card.id, version=v, scope=CITY),
        "return": lambda: service.return_card(session, card.id, version=v, scope=CITY, reason="r"),
        "edit": lambda: service.edit_card(
            session, card.id, {"remarks": "x"}, version=v, scope=CITY
        ),
        "correct": lambda: service.correct_card(
            session, card.id, {"classification": "2"}, version=v, scope=CITY
        ),
        "delete": lambda: service.delete_card(
            session, card.id, version=v, scope=CITY, reason_code="test", reason="t"
        ),
    }
    revisions = len(service.history(session, card.id))
    with pytest.raises(IllegalTransitionError) as info:
        calls[action]()
    assert info.value.status == 409 and info.value.message_zh and info.value.message_en
    session.rollback()
    assert session.get(Card, card.id).status == status
    assert len(service.history(session, card.id)) == revisions


def test_stale_version_is_refused_and_nothing_is_lost(session: Session, engine) -> None:
    card = make_card(session)
    service.return_card(session, card.id, version=1, scope=CITY, reason="请补充电话")
    session.commit()
    with pytest.raises(StaleVersionError) as info:
        service.review_card(session, card.id, version=1, scope=CITY)
    assert info.value.status == 409
    session.rollback()
    stored = session.get(Card, card.id)
    assert stored.status == service.RETURNED and stored.returned_reason == "请补充电话"


def test_concurrent_update_loses_the_race_cleanly(session: Session, engine) -> None:
    card = make_card(session)
    with Session(engine) as other:
        service.review_card(other, card.id, version=1, scope=CITY)
        # the first session read version 1 before the other committed
        loaded = session.get(Card, card.id)
        assert loaded.version == 1
        other.commit()
    with pytest.raises(StaleVersionError):
        loaded.status = service.RETURNED  # as if a stale in-memory copy were written
        service._commit_change(
            session,
            loaded,
            service.snapshot(loaded),
            action="return",
            actor="x",
            reason="r",
            now=utcnow(),
        )
    session.rollback()
    assert session.get(Card, card.id).status == service.REVIEWED


def test_out_of_scope_card_is_not_found(session: Session) -> None:
    card = make_card(session)  # a 中宁县 resident reported in 中宁县
    with pytest.raises(CardNotFoundError):
        service.review_card(session, card.id, version=1, scope=SPT)
    with pytest.raises(CardNotFoundError):
        service.review_card(session, 999_999, version=1, scope=CITY)


def test_overdue_lists_submitted_cards_past_due(session: Session) -> None:
    now = utcnow()
    late = service.create_card(session, card_data(), scope=CITY, now=now - timedelta(hours=30))
    urgent = service.create_card(
        session, card_data(disease="T_PLAGUE", seq=103), scope=CITY, now=now - timedelta(hours=3)
    )
    fresh = service.create_card(session, card_data(seq=105), scope=CITY, now=now)
    done = service.create_card(
        session, card_data(seq=107), scope=CITY, now=now - timedelta(hours=30)
    )
    service.review_card(session, done.id, version=1, scope=CITY, now=now)
    session.commit()
    ids = {c["id"] for c in queries.overdue(session, CITY, now=now).items}
    assert ids == {late.id, urgent.id}
    assert fresh.id not in ids
    assert queries.overdue(session, SPT, now=now).items == []
