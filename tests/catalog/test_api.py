"""The catalog's HTTP routes, round-tripped through the whole application.

Reading needs no login; changing a disease needs the ``admin.catalog`` permission, so the
editing tests authenticate with an API token of a system administrator.
"""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, profiles

from yifang.core import accounts

EDITOR = "catalog.admin"


@pytest.fixture()
def editor(client, session, monkeypatch):
    """``client`` acting as a system administrator (bearer token, so no CSRF cookie)."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
    accounts.load_roles(session)
    user = accounts.create_user(
        session, username=EDITOR, password="x", role_code="system_admin", check_policy=False
    )
    _, secret = accounts.create_token(session, user, "tests")
    session.commit()
    client.headers["Authorization"] = f"Bearer {secret}"
    return client


def test_list_and_get_diseases(client):
    r = client.get("/api/diseases")
    assert r.status_code == 200
    assert len(r.json()) == 87
    class_a = client.get("/api/diseases", params={"class": "A"}).json()
    assert {d["code"] for d in class_a} == {"PLAGUE", "CHOLERA"}
    hep_b = client.get("/api/diseases/HEP_B").json()
    assert hep_b["name_zh"] == "乙型肝炎"
    assert hep_b["chronicity"] == ["1", "2"]
    assert hep_b["leaf"] is True
    children = client.get("/api/diseases", params={"parent": "TB"}).json()
    assert len(children) == 4


def test_unknown_disease_is_a_json_404(client):
    r = client.get("/api/diseases/NOPE")
    assert r.status_code == 404
    assert "NOPE" in r.json()["detail"]


def test_changing_a_disease_needs_a_login(client):
    r = client.patch("/api/diseases/FLU", json={"report_limit_hours": 12})
    assert r.status_code in (401, 403)
    assert client.get("/api/diseases/FLU").json()["report_limit_hours"] == 24


def test_patch_a_disease_records_the_user_and_survives_reload(editor, session):
    client = editor
    r = client.patch(
        "/api/diseases/VARICELLA",
        json={"duplicate_window_days": 60, "reason": "school outbreaks"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["duplicate_window_days"] == 60
    assert r.json()["edited_by"] == EDITOR
    from yifang.catalog.service import load_all

    load_all(session)
    session.commit()
    assert client.get("/api/diseases/VARICELLA").json()["duplicate_window_days"] == 60


def test_patch_that_breaks_a_rule_is_refused_with_the_field(editor):
    client = editor
    r = client.patch("/api/diseases/FLU", json={"classifications": ["8"]})
    assert r.status_code == 422
    assert "classifications" in r.json()["detail"]
    r = client.patch("/api/diseases/FLU", json={"no_such_field": 1})
    assert r.status_code == 422
    assert client.get("/api/diseases/FLU").json()["classifications"] == ["1", "2", "3"]


def test_post_a_disease(editor):
    client = editor
    body = {
        "code": "CHIKV",
        "name_zh": "基孔肯雅热",
        "name_en": "chikungunya",
        "disease_class": "other",
        "transmission_route": "vector_zoonotic",
        "incubation_min_days": 1,
        "incubation_mean_days": 3,
        "incubation_max_days": 12,
    }
    r = client.post("/api/diseases", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["edited_by"] == EDITOR
    assert client.post("/api/diseases", json=body).status_code == 409
    bad = client.post("/api/diseases", json={**body, "code": "lower"})
    assert bad.status_code == 422


def test_regions(client):
    provinces = client.get("/api/regions").json()
    assert len(provinces) == 34
    counties = client.get("/api/regions", params={"parent": "640500"}).json()
    assert [c["name"] for c in counties] == ["沙坡头区", "中宁县", "海原县"]
    town = client.get("/api/regions/640522214000").json()
    assert town["name"] == "甘城乡" and town["kind"] == "乡"
    assert client.get("/api/regions/123456").status_code == 404
    assert client.get("/api/regions", params={"parent": "12x"}).status_code == 422


def test_organisations(client):
    orgs = client.get("/api/organisations", params={"region": "640521"}).json()
    assert len(orgs) == 16  # CDC, 2 hospitals, 12 health centres, 1 clinic
    assert all(o["region_code"].startswith("640521") for o in orgs)
    cdcs = client.get("/api/organisations", params={"kind": "cdc"}).json()
    assert len(cdcs) == 4
    assert client.get("/api/organisations/640500CD01").json()["name"] == "中卫市疾病预防控制中心"


def test_populations(client):
    r = client.get("/api/populations", params={"region": "640500", "year": 2021})
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 1_075_000
    assert len(body["bands"]) == 36
    missing = client.get("/api/populations", params={"region": "640500", "year": 1990})
    assert missing.status_code == 404


def test_code_lists(client):
    assert "population_group" in client.get("/api/codes").json()
    sexes = client.get("/api/codes/sex").json()
    assert sexes[0] == {"code": "1", "zh": "男", "en": "male", "attributes": {}}
    assert client.get("/api/codes/nothing").status_code == 404
