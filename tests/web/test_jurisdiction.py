"""Jurisdiction through every route: a county's reviewer cannot read, change or count
another county's cards, whatever endpoint or filter it tries; a hospital sees only its own
cards; other departments get aggregates only; personal data stay masked for roles that may
not see them."""

from __future__ import annotations

import pytest

from tests.web.seed import SPS_HOSPITAL, SPS_TOWN, ZN_HOSPITAL, ZN_TOWN, card_values
from yifang.cases import service
from yifang.cases.models import Card
from yifang.core.jurisdiction import Scope


@pytest.fixture()
def cards(session, demo) -> dict[str, Card]:
    """One submitted card in 中宁县 and one in 沙坡头区."""
    made = {}
    for key, name, town, org in (
        ("zn", "宁甲乙", ZN_TOWN, ZN_HOSPITAL),
        ("sps", "沙丙丁", SPS_TOWN, SPS_HOSPITAL),
    ):
        made[key] = service.create_card(
            session, card_values(name, town, org), scope=Scope.everything("seed")
        )
    session.commit()
    return made


def leaks(text: str, card: Card) -> bool:
    return card.card_number in text or card.patient_name in text or f'"id":{card.id},' in text


def test_every_card_route_refuses_another_countys_card(login, cards, session):
    client = login("sps_cdc_review")
    zn = cards["zn"]
    before = (zn.status, zn.version)
    body = {"version": zn.version, "reason": "x", "reason_code": "other", "changes": {}}
    tried = 0
    for template, operations in client.app.openapi()["paths"].items():
        if "{card_id}" not in template:
            continue
        path = template.replace("{card_id}", str(zn.id))
        for method in operations:
            method = method.upper()
            r = client.request(method, path, json=None if method == "GET" else body)
            tried += 1
            assert r.status_code in (403, 404), (method, path, r.status_code, r.text[:200])
            assert not leaks(r.text, zn), (method, path)
    assert tried >= 8
    session.expire_all()
    fresh = session.get(Card, zn.id)
    assert (fresh.status, fresh.version) == before


LIST_ROUTES = [
    "/api/cards?limit=500",
    "/api/cards?limit=500&region=640521",
    f"/api/cards?limit=500&org_code={ZN_HOSPITAL}",
    "/api/cards?limit=500&status=submitted",
    "/api/cards/overdue?limit=500",
    "/api/cards/counts",
    "/api/cards/counts?region=640521",
    "/api/cards/export?format=csv",
    "/api/cards/export?format=csv&region=640521",
    "/api/duplicates",
    "/api/web/dashboard",
]


def test_lists_exports_and_counts_stay_in_the_county(login, cards):
    client = login("sps_cdc_review")
    own = client.get("/api/cards?limit=500").json()["items"]
    assert [c["id"] for c in own] == [cards["sps"].id]
    for url in LIST_ROUTES:
        r = client.get(url)
        assert r.status_code in (200, 403, 404), (url, r.status_code, r.text[:200])
        assert not leaks(r.text, cards["zn"]), url
    counts = client.get("/api/cards/counts").json()
    assert {row["county_code"] for row in counts} <= {"640502"}
    assert client.get("/api/web/dashboard").json()["totals"]["awaiting_review"] == 1


def test_the_other_way_round_and_the_city(login, cards):
    zn = login("zn_cdc_review")
    assert [c["id"] for c in zn.get("/api/cards").json()["items"]] == [cards["zn"].id]
    assert zn.get(f"/api/cards/{cards['sps'].id}").status_code == 404
    city = login("city_cdc")
    ids = {c["id"] for c in city.get("/api/cards").json()["items"]}
    assert ids == {cards["zn"].id, cards["sps"].id}


def test_a_hospital_sees_only_its_own_cards(login, cards):
    hospital = login("zn_hospital")
    ids = [c["id"] for c in hospital.get("/api/cards").json()["items"]]
    assert ids == [cards["zn"].id]
    assert hospital.get(f"/api/cards/{cards['sps'].id}").status_code == 404
    # and may not review its own card
    r = hospital.post(f"/api/cards/{cards['zn'].id}/review", json={"version": 1})
    assert r.status_code == 403


def test_other_departments_get_aggregates_only(login, cards):
    liaison = login("edu_liaison")
    assert liaison.get("/api/cards").status_code == 403
    assert liaison.get(f"/api/cards/{cards['zn'].id}").status_code == 403
    assert liaison.get("/api/cards/export?format=csv").status_code == 403
    board = liaison.get("/api/web/dashboard")
    assert board.status_code == 200 and board.json()["totals"]["this_week"] == 2
    assert not leaks(board.text, cards["zn"])


def test_personal_data_masked_unless_the_role_may_reveal(login, cards):
    leader = login("commission")
    item = leader.get("/api/cards").json()["items"][0]
    assert "*" in item["patient_name"] and item["address_detail"] is None
    assert leader.get(f"/api/cards/{cards['zn'].id}?reveal=true").status_code == 403
    reviewer = login("zn_cdc_review")
    shown = reviewer.get(f"/api/cards/{cards['zn'].id}?reveal=true").json()["card"]
    assert shown["patient_name"] == "宁甲乙"


def test_catalog_changes_need_the_admin_permission(login):
    reviewer = login("zn_cdc_review")
    r = reviewer.patch("/api/diseases/HFMD", json={"review_limit_hours": 12})
    assert r.status_code == 403
    admin = login("admin")
    assert admin.patch("/api/diseases/HFMD", json={"review_limit_hours": 12}).status_code == 200


def test_api_needs_a_login(client, cards):
    for url in ("/api/cards", f"/api/cards/{cards['zn'].id}", "/api/web/dashboard"):
        assert client.get(url).status_code == 401, url
