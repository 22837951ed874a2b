"""Administrators changing the catalog over HTTP: organisations (list, create, edit, reset,
history) and the bilingual, field-by-field refusals of organisation and disease changes.

Changes need the ``admin.catalog`` permission: the editing client is a system administrator
with an API token, the refused one a county CDC reviewer. Every change must be in the audit
trail and must survive a reload of the data files, with and without ``refresh``.
"""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, profiles
from sqlalchemy import select

from yifang.catalog.models import Organisation
from yifang.catalog.service import load_all
from yifang.core import accounts
from yifang.core.audit import AuditEntry

EDITOR = "catalog.admin"

NEW_CLINIC = {
    "code": "640521100CL09",
    "name": "宁安镇康宁诊所",
    "kind": "clinic",
    "region_code": "640521100000",  # padded: stored as 640521100
    "level": "未定级",
    "parent_code": "640521CD01",
    "phone": "0955-1234567",
}


def _token_client(client, session, username: str, role: str):
    user = accounts.create_user(
        session, username=username, password="x", role_code=role, check_policy=False
    )
    _, secret = accounts.create_token(session, user, "tests")
    session.commit()
    client.headers["Authorization"] = f"Bearer {secret}"
    return client


@pytest.fixture()
def editor(client, session, monkeypatch):
    """``client`` acting as a system administrator (bearer token, so no CSRF cookie)."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
    accounts.load_roles(session)
    return _token_client(client, session, EDITOR, "system_admin")


@pytest.fixture()
def reviewer(client, session, monkeypatch):
    """``client`` acting as a county CDC reviewer, who may not change the catalog."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
    accounts.load_roles(session)
    return _token_client(client, session, "zn.reviewer", "county_cdc_reviewer")


def _fields(response) -> dict[str, dict]:
    body = response.json()
    assert body["message_zh"] and body["message_en"] and body["detail"]
    return {f["field"]: f for f in body["fields"]}


def _audit(session, entity_type: str, code: str) -> list[AuditEntry]:
    session.expire_all()
    query = (
        select(AuditEntry)
        .where(AuditEntry.entity_type == entity_type, AuditEntry.entity_id == code)
        .order_by(AuditEntry.id)
    )
    return list(session.scalars(query))


# --- reading --------------------------------------------------------------------------------


def test_list_filters_by_kind_activity_and_text(client):
    cdcs = client.get("/api/organisations", params={"kind": "cdc", "active": True}).json()
    assert len(cdcs) == 4 and all(o["edited_by"] is None for o in cdcs)
    found = client.get("/api/organisations", params={"q": "中宁县人民"}).json()
    assert [o["code"] for o in found] == ["640521HP01"]
    by_code = client.get("/api/organisations", params={"q": "640522cd"}).json()
    assert [o["code"] for o in by_code] == ["640522CD01"]
    assert client.get("/api/organisations", params={"active": False}).json() == []


# --- who may change -------------------------------------------------------------------------


def test_changes_need_admin_catalog(reviewer, session):
    client = reviewer
    assert client.post("/api/organisations", json=NEW_CLINIC).status_code == 403
    r = client.patch("/api/organisations/640521HP01", json={"phone": "0955-7000000"})
    assert r.status_code == 403
    assert client.post("/api/organisations/640521HP01/reset").status_code == 403
    assert client.get("/api/organisations/640521HP01/history").status_code == 403
    assert client.patch("/api/diseases/HFMD", json={"report_limit_hours": 12}).status_code == 403
    assert client.get("/api/diseases/HFMD/history").status_code == 403
    assert session.get(Organisation, NEW_CLINIC["code"]) is None
    assert _audit(session, "organisation", "640521HP01") == []


def test_changes_need_a_login(client):
    assert client.post("/api/organisations", json=NEW_CLINIC).status_code in (401, 403)
    r = client.patch("/api/organisations/640521HP01", json={"active": False})
    assert r.status_code in (401, 403)
    assert client.get("/api/organisations/640521HP01").json()["active"] is True


# --- creating -------------------------------------------------------------------------------


def test_create_is_audited_and_survives_reloads(editor, session):
    r = editor.post("/api/organisations", json=NEW_CLINIC)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["region_code"] == "640521100"
    assert (body["edited_by"], body["synthetic"], body["active"]) == (EDITOR, False, True)
    [entry] = _audit(session, "organisation", NEW_CLINIC["code"])
    assert (entry.action, entry.actor) == ("organisation.create", EDITOR)
    assert entry.after["name"] == "宁安镇康宁诊所"
    for refresh in (False, True):
        load_all(session, refresh=refresh)
        session.commit()
        got = editor.get(f"/api/organisations/{NEW_CLINIC['code']}").json()
        assert got["name"] == "宁安镇康宁诊所"
    conflict = editor.post("/api/organisations", json=NEW_CLINIC)
    assert conflict.status_code == 409
    assert "code" in _fields(conflict)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"code": "clinic-9"}, "code"),
        ({"code": "640521HP1"}, "code"),
        ({"kind": "zoo"}, "kind"),
        ({"region_code": "64052x"}, "region_code"),
        ({"region_code": "640599"}, "region_code"),  # well formed, not in the catalog
        ({"parent_code": "640521CD99"}, "parent_code"),
        ({"parent_code": NEW_CLINIC["code"]}, "parent_code"),
        ({"name": "  "}, "name"),
        ({"phone": "call me"}, "phone"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_organisations_are_refused_by_field(editor, session, change, field):
    r = editor.post("/api/organisations", json={**NEW_CLINIC, **change})
    assert r.status_code == 422, r.text
    fields = _fields(r)
    assert field in fields, fields
    assert fields[field]["message_zh"] and fields[field]["message_en"]
    assert session.get(Organisation, NEW_CLINIC["code"]) is None


def test_a_missing_field_is_named(editor):
    body = {k: v for k, v in NEW_CLINIC.items() if k != "kind"}
    fields = _fields(editor.post("/api/organisations", json=body))
    assert fields["kind"]["message_zh"] == "机构类型：必填"


# --- editing --------------------------------------------------------------------------------


def test_edit_is_audited_and_survives_reload_and_refresh(editor, session):
    r = editor.patch(
        "/api/organisations/640521HP01",
        json={"name": "中宁县人民医院(新院区)", "level": "三级", "reason": "upgraded"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["edited_by"] == EDITOR
    [entry] = _audit(session, "organisation", "640521HP01")
    assert entry.action == "organisation.update"
    assert entry.before == {"name": "中宁县人民医院", "level": "二级"}
    assert entry.after == {"name": "中宁县人民医院(新院区)", "level": "三级"}
    assert entry.reason == "upgraded"
    for refresh in (False, True):
        report = load_all(session, refresh=refresh)
        session.commit()
        assert report.table("organisation").kept == 1
        assert editor.get("/api/organisations/640521HP01").json()["level"] == "三级"

    history = editor.get("/api/organisations/640521HP01/history").json()
    assert [h["action"] for h in history] == ["organisation.update"]
    assert history[0]["actor"] == EDITOR

    reset = editor.post("/api/organisations/640521HP01/reset")
    assert reset.status_code == 200, reset.text
    assert (reset.json()["level"], reset.json()["edited_by"]) == ("二级", None)
    actions = [h["action"] for h in editor.get("/api/organisations/640521HP01/history").json()]
    assert actions == ["organisation.reset", "organisation.update"]


def test_deactivating_and_moving_an_organisation(editor, session):
    r = editor.patch(
        "/api/organisations/640522CL04", json={"active": False, "region_code": "640522101000"}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["active"], r.json()["region_code"]) == (False, "640522101")
    inactive = editor.get("/api/organisations", params={"active": False}).json()
    assert [o["code"] for o in inactive] == ["640522CL04"]


def test_bad_edits_are_refused_by_field_and_change_nothing(editor, session):
    cases = [
        ({"kind": "zoo"}, "kind"),
        ({"region_code": "999999"}, "region_code"),
        ({"parent_code": "640521HP01"}, "parent_code"),  # own parent
        ({"name": None}, "name"),
        ({"code": "640521HP02"}, "code"),  # the code cannot change
    ]
    for change, field in cases:
        r = editor.patch("/api/organisations/640521HP01", json=change)
        assert r.status_code == 422, (change, r.text)
        assert field in _fields(r), (change, r.json())
    # a CDC cannot become the child of a hospital it reviews: that would be a cycle
    cycle = editor.patch("/api/organisations/640521CD01", json={"parent_code": "640521HP01"})
    assert cycle.status_code == 422 and "parent_code" in _fields(cycle)
    assert editor.get("/api/organisations/640521HP01").json()["edited_by"] is None
    assert _audit(session, "organisation", "640521HP01") == []


def test_unknown_organisation_is_a_bilingual_404(editor):
    r = editor.patch("/api/organisations/640521XX99", json={"active": False})
    assert r.status_code == 404
    assert r.json()["error"] == "not_found" and "640521XX99" in r.json()["message_zh"]
    assert editor.get("/api/organisations/640521XX99/history").status_code == 404
    created = editor.post("/api/organisations", json=NEW_CLINIC)
    assert created.status_code == 201
    assert editor.post(f"/api/organisations/{NEW_CLINIC['code']}/reset").status_code == 404


# --- diseases: refusals by field, history, reset ---------------------------------------------


def test_disease_edits_are_refused_by_field_in_both_languages(editor):
    r = editor.patch("/api/diseases/HFMD", json={"report_limit_hours": 0})
    assert r.status_code == 422
    field = _fields(r)["report_limit_hours"]
    assert field["message_zh"] == "报告时限（小时）：不能小于 1"
    assert field["message_en"].startswith("report_limit_hours:")
    r = editor.patch("/api/diseases/HFMD", json={"incubation_min_days": 30})
    assert "incubation_mean_days" in _fields(r)
    r = editor.patch("/api/diseases/HFMD", json={"managed_as_class_a": True})
    assert _fields(r)["managed_as_class_a"]["message_zh"].startswith("按甲类管理：")
    r = editor.patch("/api/diseases/HFMD", json={"report_limit_hours": "soon"})
    assert r.status_code == 422 and "report_limit_hours" in _fields(r)
    r = editor.post("/api/diseases", json={"code": "lower", "name_zh": "x"})
    fields = _fields(r)
    assert {"code", "name_en", "disease_class"} <= set(fields)
    assert editor.get("/api/diseases/HFMD").json()["report_limit_hours"] == 24


def test_disease_history_and_reset(editor, session):
    assert editor.get("/api/diseases/HFMD/history").json() == []
    r = editor.patch("/api/diseases/HFMD", json={"report_limit_hours": 12, "reason": "pilot"})
    assert r.status_code == 200
    [change] = editor.get("/api/diseases/HFMD/history").json()
    assert change["before"] == {"report_limit_hours": 24}
    assert change["after"] == {"report_limit_hours": 12}
    assert (change["actor"], change["reason"]) == (EDITOR, "pilot")
    load_all(session)
    session.commit()
    assert editor.get("/api/diseases/HFMD").json()["report_limit_hours"] == 12
    reset = editor.post("/api/diseases/HFMD/reset")
    assert reset.status_code == 200
    assert (reset.json()["report_limit_hours"], reset.json()["edited_by"]) == (24, None)
    assert editor.get("/api/diseases/NOPE/history").status_code == 404
