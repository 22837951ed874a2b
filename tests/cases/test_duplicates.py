"""Duplicate cards (重卡): the rules, the window, and the reviewer's merge or keep."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from tests.cases.test_workflow_factories import (
    CITY,
    SPT,
    TOWN_SPT,
    TOWN_ZN,
    TOWN_ZN2,
    card_data,
    catalog,  # noqa: F401 - fixture
    make_card,
)
from yifang.cases import duplicates, service
from yifang.cases.models import Card, DuplicateFlag, ImportBatch, name_key
from yifang.cases.service import IllegalTransitionError

pytestmark = pytest.mark.usefixtures("catalog")


def _flags(session: Session) -> list[DuplicateFlag]:
    return list(session.scalars(select(DuplicateFlag).order_by(DuplicateFlag.id)))


def _days_ago(n: int):  # type: ignore[no-untyped-def]
    base = card_data()["diagnosis_time"]
    return base - timedelta(days=n)


def test_name_key_normalises_width_spaces_and_dots() -> None:
    assert name_key("张 三") == name_key("张三") == name_key("张\u3000三")
    assert name_key("ＺＨＡＮＧ San") == "zhangsan"
    assert name_key("买买提·艾力") == name_key("买买提艾力")
    assert name_key("") is None


def test_same_id_number_same_disease_is_flagged(session: Session) -> None:
    first = make_card(session, diagnosis=_days_ago(10))
    second = make_card(session, name="张叁", address=TOWN_ZN2)  # same ID, other name
    flags = _flags(session)
    assert len(flags) == 1
    assert (flags[0].card_id, flags[0].other_card_id) == (second.id, first.id)
    assert flags[0].rule == "id_number" and flags[0].score == 1.0
    assert flags[0].decision is None


def test_same_disease_group_is_flagged(session: Session) -> None:
    make_card(session, disease="T_HEPA")
    make_card(session, disease="T_HEPE")
    assert [f.rule for f in _flags(session)] == ["id_number"]


def test_different_disease_is_not_flagged(session: Session) -> None:
    make_card(session, disease="T_FLU")
    make_card(session, disease="T_HEPA")
    assert _flags(session) == []


def test_outside_window_is_not_flagged(session: Session) -> None:
    make_card(session, diagnosis=_days_ago(40))  # T_FLU window: 30 days
    make_card(session)
    assert _flags(session) == []
    make_card(session, diagnosis=_days_ago(29))
    assert len(_flags(session)) == 2  # the new card matches both earlier ones


def test_unknown_id_numbers_never_match(session: Session) -> None:
    make_card(session, name="王五", id_number="00000000000000000X", id_type="99")
    make_card(
        session,
        name="赵六",
        id_number="00000000000000000X",
        id_type="99",
        birth=__import__("datetime").date(1990, 1, 1),
    )
    assert _flags(session) == []


def test_fuzzy_name_birth_county_match(session: Session) -> None:
    first = make_card(
        session, name="李 四", id_number="00000000000000000X", id_type="99", address=TOWN_ZN
    )
    second = make_card(
        session, name="李四", seq=103, address=TOWN_ZN, address_detail="宁安镇南街12号"
    )
    flags = _flags(session)
    assert len(flags) == 1 and flags[0].rule == "fuzzy"
    assert (flags[0].card_id, flags[0].other_card_id) == (second.id, first.id)
    assert 0.9 < flags[0].score <= 1.0


def test_fuzzy_needs_same_county_and_birth_date(session: Session) -> None:
    make_card(session, name="李四", id_number="00000000000000000X", id_type="99")
    make_card(session, name="李四", seq=103, address=TOWN_SPT, residence_category="2")
    make_card(session, name="李四", seq=105, birth=date(1981, 5, 6))
    assert _flags(session) == []


def test_real_different_id_numbers_are_different_people(session: Session) -> None:
    make_card(session, name="李四", seq=101)
    make_card(session, name="李四", seq=103)  # same name, birth, county; other ID
    assert _flags(session) == []


def test_drafts_are_not_compared_until_submitted(session: Session) -> None:
    make_card(session)
    draft = make_card(session, submit=False)
    assert _flags(session) == []
    service.submit_card(session, draft.id, version=1, scope=CITY)
    assert len(_flags(session)) == 1


def test_rescan_adds_nothing(session: Session) -> None:
    a = make_card(session)
    b = make_card(session)
    assert duplicates.scan(session, [a.id, b.id]) == 0
    assert len(_flags(session)) == 1


def test_merge_deletes_later_card_as_duplicate(session: Session) -> None:
    first = make_card(session)
    second = make_card(session)
    flag = _flags(session)[0]
    listed = duplicates.list_flags(session, CITY)
    assert [f["id"] for f in listed] == [flag.id]
    assert listed[0]["card"]["patient_name"] == "张*"
    duplicates.resolve(session, flag.id, "merge", scope=CITY)
    session.commit()
    later = session.get(Card, second.id)
    assert later.status == service.DELETED and later.deleted_reason_code == "dup"
    assert later.duplicate_of_id == first.id
    assert session.get(Card, first.id).status == service.SUBMITTED
    assert flag.decision == "merge" and flag.decided_by == "cdc-city"
    assert duplicates.list_flags(session, CITY) == []
    with pytest.raises(IllegalTransitionError):
        duplicates.resolve(session, flag.id, "keep", scope=CITY)


def test_keep_leaves_both_cards(session: Session) -> None:
    make_card(session)
    make_card(session)
    flag = _flags(session)[0]
    with pytest.raises(service.BadRequestError):
        duplicates.resolve(session, flag.id, "delete-both", scope=CITY)
    duplicates.resolve(session, flag.id, "keep", scope=CITY, note="两次独立发病")
    assert {c.status for c in session.scalars(select(Card))} == {service.SUBMITTED}
    assert duplicates.list_flags(session, CITY, open_only=False)[0]["decision"] == "keep"


def test_flags_are_scoped(session: Session) -> None:
    make_card(session)
    make_card(session)
    flag = _flags(session)[0]
    assert duplicates.list_flags(session, SPT) == []
    with pytest.raises(service.CardNotFoundError):
        duplicates.resolve(session, flag.id, "keep", scope=SPT)


def test_scan_batch_flags_an_import_set_based(session: Session) -> None:
    existing = make_card(session)
    batch = ImportBatch(filename="x.csv", file_sha256="0" * 64, file_format="csv")
    session.add(batch)
    session.flush()
    base = service.card_content(existing)
    rows = []
    for i in range(30):
        row = {
            **base,
            "card_number": f"IMP{i:05d}",
            "status": service.SUBMITTED,
            "version": 1,
            "import_batch_id": batch.id,
            "source": "import",
        }
        if i % 3:  # a third are the same person as the existing card
            row["id_number"] = None
            row["patient_name"] = f"病人{i}"
        rows.append(row)
    session.execute(insert(Card), rows)
    assert duplicates.scan_batch(session, batch.id, chunk=7) == 10 + 45  # vs existing + pairs
    flags = _flags(session)
    assert all(f.card_id > f.other_card_id for f in flags)
    assert duplicates.scan_batch(session, batch.id) == 0
