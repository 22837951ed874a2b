"""Reading cards: jurisdiction in SQL, masking, keyset pages that stay stable, counts."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from tests.cases.test_workflow_factories import (
    CITY,
    ORG_SPT,
    ORG_ZN,
    SPT,
    TOWN_SPT,
    TOWN_ZN,
    ZN,
    catalog,  # noqa: F401 - fixture
    make_card,
)
from yifang.cases import queries, service
from yifang.cases.models import Card
from yifang.core.audit import AuditEntry
from yifang.core.jurisdiction import Scope

pytestmark = pytest.mark.usefixtures("catalog")

_numbers = itertools.count(1)


def _bulk(session: Session, n: int, *, address: str = TOWN_ZN, org: str = ORG_ZN,
          start: datetime | None = None, step_hours: int = 1) -> None:  # fmt: skip
    """``n`` plain submitted cards straight into the table (no validation: list tests)."""
    start = start or datetime(2025, 6, 1, 8)
    rows = []
    for i in range(n):
        k = next(_numbers)
        t = start - timedelta(hours=(i // 3) * step_hours)  # three cards share each hour
        rows.append(
            {
                "card_number": f"B{k:07d}",
                "patient_name": f"病人{k}",
                "sex": "1",
                "residence_category": "1",
                "address_code": address,
                "occupation": "18",
                "classification": "3",
                "onset_date": t.date(),
                "diagnosis_time": t,
                "disease_code": "T_FLU",
                "org_code": org,
                "doctor_name": "李医生",
                "fill_date": t.date(),
                "status": service.SUBMITTED,
                "version": 1,
            }
        )
    session.execute(insert(Card), rows)
    session.commit()


def _all_pages(session: Session, scope: Scope, flt: queries.CardFilter | None = None,
               limit: int = 7, between=None) -> list[int]:  # type: ignore[no-untyped-def]  # fmt: skip
    seen: list[int] = []
    page = queries.list_cards(session, scope, flt, limit=limit)
    seen += [c["id"] for c in page.items]
    while page.next_cursor:
        if between:
            between()
        page = queries.list_cards(session, scope, flt, cursor=page.next_cursor, limit=limit)
        seen += [c["id"] for c in page.items]
    return seen


def test_mask_functions() -> None:
    assert queries.mask_name("张三") == "张*"
    assert queries.mask_name("欧阳娜娜") == "欧***"
    assert queries.mask_id_number("640402199001011234") == "6404**********1234"
    assert queries.mask_phone("13812345678") == "138****5678"
    assert queries.mask_phone(None) is None


def test_county_scope_never_returns_another_county(session: Session) -> None:
    _bulk(session, 20, address=TOWN_ZN, org=ORG_ZN)
    _bulk(session, 20, address=TOWN_SPT, org=ORG_SPT)
    zn_ids = _all_pages(session, ZN)
    cards = {c.id: c for c in session.scalars(select(Card))}
    assert len(zn_ids) == 20
    assert all(cards[i].address_code.startswith("640521") for i in zn_ids)
    # a filter cannot widen the scope
    leaked = queries.list_cards(session, ZN, queries.CardFilter(region_prefix="640502"))
    assert leaked.items == []
    spt_id = next(i for i, c in cards.items() if c.address_code.startswith("640502"))
    with pytest.raises(service.CardNotFoundError):
        queries.get_card(session, ZN, spt_id)
    exported = [row[0] for row in list(queries.export_rows(session, ZN))[1:]]
    assert sorted(exported) == sorted(zn_ids)
    assert sum(r.cards for r in queries.counts(session, ZN)) == 20


def test_region_scope_includes_cards_reported_by_its_hospitals(session: Session) -> None:
    card = make_card(session, address=TOWN_SPT, org=ORG_ZN, seq=103, residence_category="2")
    assert [c["id"] for c in queries.list_cards(session, ZN).items] == [card.id]
    assert [c["id"] for c in queries.list_cards(session, SPT).items] == [card.id]
    hospital = Scope(organisation_code=ORG_SPT, actor="h")
    assert queries.list_cards(session, hospital).items == []


def test_keyset_pages_cover_everything_once(session: Session) -> None:
    _bulk(session, 50)
    ids = _all_pages(session, CITY, limit=7)
    assert len(ids) == len(set(ids)) == 50
    rows = session.execute(select(Card.id, Card.diagnosis_time)).all()
    expected = [i for i, _ in sorted(rows, key=lambda r: (r[1], r[0]), reverse=True)]
    assert ids == expected


def test_keyset_pages_stable_while_inserting(session: Session, engine) -> None:  # type: ignore[no-untyped-def]
    _bulk(session, 40, start=datetime(2025, 6, 1, 8))
    original = set(session.scalars(select(Card.id)))
    writer = Session(engine)
    times = iter(range(100))

    def insert_more() -> None:
        # new cards both newer than everything and in the middle of the range
        n = next(times)
        _bulk(writer, 2, start=datetime(2025, 6, 2, 8) + timedelta(hours=n))
        _bulk(writer, 2, start=datetime(2025, 5, 31, 20) + timedelta(minutes=n))

    ids = _all_pages(session, CITY, limit=6, between=insert_more)
    writer.close()
    assert len(ids) == len(set(ids)), "a card appeared on two pages"
    assert original <= set(ids), "a card present from the start was skipped"


def test_filters(session: Session) -> None:
    _bulk(session, 9, start=datetime(2025, 6, 1, 8), step_hours=24)  # 3 days
    flt = queries.CardFilter(diagnosis_from=date(2025, 5, 31), diagnosis_to=date(2025, 5, 31))
    assert len(queries.list_cards(session, CITY, flt).items) == 3
    flt = queries.CardFilter(onset_from=date(2025, 5, 30), onset_to=date(2025, 5, 31))
    assert len(queries.list_cards(session, CITY, flt).items) == 6
    assert (
        queries.list_cards(session, CITY, queries.CardFilter(disease_codes=["T_HEPA"])).items == []
    )
    assert (
        len(queries.list_cards(session, CITY, queries.CardFilter(classifications=["3"])).items) == 9
    )
    assert queries.list_cards(session, CITY, queries.CardFilter(statuses=["reviewed"])).items == []
    first = session.scalars(select(Card.card_number).order_by(Card.id)).first()
    found = queries.list_cards(session, CITY, queries.CardFilter(card_number=first)).items
    assert [c["card_number"] for c in found] == [first]
    township = queries.CardFilter(region_prefix=TOWN_ZN)
    assert len(queries.list_cards(session, CITY, township).items) == 9
    assert queries.list_cards(session, CITY, queries.CardFilter(region_prefix=TOWN_SPT)).items == []
    with pytest.raises(service.BadRequestError):
        queries.list_cards(session, CITY, cursor="nonsense")


def test_reveal_needs_identified_scope_and_is_audited(session: Session) -> None:
    card = make_card(session)
    masked = queries.view_card(session, CITY, card.id)
    assert masked["patient_name"] == "张*" and masked["address_detail"] is None
    assert masked["phone"] == "138****5678"
    shown = queries.view_card(session, CITY, card.id, reveal=True)
    assert shown["patient_name"] == "张三"
    audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "card.reveal")).all()
    assert len(audit) == 1 and audit[0].entity_id == str(card.id)
    aggregate = Scope(identified=False, actor="dept")
    with pytest.raises(service.ForbiddenError):
        queries.view_card(session, aggregate, card.id, reveal=True)


def test_counts_group_by_disease_county_day(session: Session) -> None:
    _bulk(session, 6, start=datetime(2025, 6, 1, 8), step_hours=24)
    _bulk(session, 3, address=TOWN_SPT, org=ORG_SPT, start=datetime(2025, 6, 1, 8))
    rows = queries.counts(session, CITY)
    by_key = {(r.county_code, r.day): r.cards for r in rows}
    assert by_key[("640521", date(2025, 6, 1))] == 3
    assert by_key[("640521", date(2025, 5, 31))] == 3
    assert by_key[("640502", date(2025, 6, 1))] == 3
    assert sum(by_key.values()) == 9
