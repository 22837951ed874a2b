"""The cards API: round trip through the workflow, error shapes, scope and exports."""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Any

import pytest
from fastapi import Header
from sqlalchemy.orm import Session

from tests.cases.test_workflow_factories import (
    ORG_SPT,
    TOWN_SPT,
    card_data,
    catalog,  # noqa: F401 - fixture
)
from yifang.core import auth
from yifang.core.accounts import Role, User
from yifang.core.jurisdiction import Scope

pytestmark = pytest.mark.usefixtures("catalog")


def header_caller(
    x_yifang_user: Annotated[str | None, Header()] = None,
    x_yifang_region: Annotated[str | None, Header()] = None,
    x_yifang_org: Annotated[str | None, Header()] = None,
) -> Scope:
    """The caller named by headers: a user name, a region-code prefix, an organisation."""
    return Scope(
        region_prefix=x_yifang_region or None,
        organisation_code=x_yifang_org or None,
        actor=x_yifang_user or "anonymous",
    )


def any_permission() -> User:
    """A caller whose role grants every permission."""
    role = Role(code="all", name_zh="全部", name_en="all", active=True, permissions=[])
    role.allows = lambda permission: True  # type: ignore[method-assign]
    return User(username="tester", active=True, role=role)


@pytest.fixture()
def client(engine):  # type: ignore[no-untyped-def]
    """The cases routes alone, with the caller named by headers instead of a login: these
    tests are about the routes; logins and roles are tested in ``tests/web``."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from yifang.cases.api import router

    app = FastAPI(openapi_url="/api/openapi.json")
    app.include_router(router, prefix="/api")
    app.dependency_overrides[auth.current_scope] = header_caller
    app.dependency_overrides[auth.current_user] = any_permission
    with TestClient(app) as c:
        yield c


CITY = {"X-Yifang-User": "cdc-city"}
ZN = {"X-Yifang-User": "cdc-zn", "X-Yifang-Region": "640521"}
SPT = {"X-Yifang-User": "cdc-spt", "X-Yifang-Region": "640502"}


def _body(**kw: Any) -> dict[str, Any]:
    return json.loads(json.dumps(card_data(**kw), default=str))


def _create(client, headers=CITY, submit: bool = True, **kw: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = client.post(f"/api/cards?submit={str(submit).lower()}", json=_body(**kw), headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def _assert_error(r, status: int, code: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "message_zh", "message_en", "fields"}
    assert body["error"] == code and body["message_zh"] and body["message_en"]
    return body


def test_round_trip_through_the_workflow(client, session: Session) -> None:  # type: ignore[no-untyped-def]
    card = _create(client, submit=False)
    assert card["status"] == "draft" and card["version"] == 1
    cid = card["id"]
    r = client.put(
        f"/api/cards/{cid}", json={"version": 1, "changes": {"remarks": "补充"}}, headers=CITY
    )
    assert r.status_code == 200 and r.json()["remarks"] == "补充"
    r = client.post(f"/api/cards/{cid}/submit", json={"version": 2}, headers=CITY)
    assert r.json()["status"] == "submitted"
    r = client.post(
        f"/api/cards/{cid}/return", json={"version": 3, "reason": "电话有误"}, headers=ZN
    )
    assert r.json()["status"] == "returned"
    r = client.patch(
        f"/api/cards/{cid}", json={"version": 4, "changes": {"phone": "13900001111"}}, headers=CITY
    )
    assert r.status_code == 200
    client.post(f"/api/cards/{cid}/submit", json={"version": 5}, headers=CITY)
    r = client.post(f"/api/cards/{cid}/review", json={"version": 6}, headers=ZN)
    assert r.json()["status"] == "reviewed"
    r = client.post(
        f"/api/cards/{cid}/correct",
        json={"version": 7, "changes": {"classification": "2"}, "reason": "复核"},
        headers=CITY,
    )
    assert r.json()["report_type"] == "2" and r.json()["status"] == "submitted"
    detail = client.get(f"/api/cards/{cid}", headers=CITY).json()
    assert detail["card"]["patient_name"] == "张*"
    assert detail["card"]["id_number"].startswith("6405") and "*" in detail["card"]["id_number"]
    assert detail["card"]["address_detail"] is None
    actions = [h["action"] for h in detail["history"]]
    assert actions == ["create", "edit", "submit", "return", "edit", "submit", "review", "correct"]
    phone_edit = detail["history"][4]
    assert phone_edit["after"]["phone"] == "139****1111"
    assert detail["revisions"][-1]["snapshot"]["classification"] == "3"
    assert detail["revisions"][-1]["snapshot"]["patient_name"] == "张*"
    history = client.get(f"/api/cards/{cid}/history", headers=CITY).json()["items"]
    assert [h["action"] for h in history] == actions
    r = client.post(
        f"/api/cards/{cid}/delete",
        json={"version": 8, "reason_code": "error", "reason": "误报"},
        headers=CITY,
    )
    assert r.json()["status"] == "deleted"
    assert client.get("/api/cards", headers=CITY).json()["items"] == []


def test_reveal_is_audited(client, session: Session) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from yifang.core.audit import AuditEntry

    cid = _create(client)["id"]
    card = client.get(f"/api/cards/{cid}?reveal=true", headers=CITY).json()["card"]
    assert card["patient_name"] == "张三" and card["address_detail"]
    listed = client.get("/api/cards?reveal=true", headers=CITY).json()["items"]
    assert listed[0]["patient_name"] == "张三"
    reveals = session.scalars(select(AuditEntry).where(AuditEntry.action == "card.reveal")).all()
    assert len(reveals) == 2 and {r.actor for r in reveals} == {"cdc-city"}


def test_validation_error_shape(client) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/api/cards", json=_body(patient_name="1", sex="?"), headers=CITY)
    body = _assert_error(r, 422, "validation_failed")
    assert {"patient_name", "sex"} <= {f["field"] for f in body["fields"]}
    assert all(f["message_zh"] and f["message_en"] for f in body["fields"])
    check = client.post("/api/cards/validate", json=_body(sex="?"), headers=CITY).json()
    assert check["ok"] is False and check["errors"][0]["field"] == "sex"


@pytest.mark.parametrize(
    ("method", "url", "payload", "status", "code"),
    [
        ("post", "/api/cards", ["not", "a", "card"], 422, "bad_request"),
        ("get", "/api/cards?cursor=garbage!!", None, 422, "bad_cursor"),
        ("get", "/api/cards?status=lost", None, 422, "bad_request"),
        ("get", "/api/cards?limit=100000", None, 422, "bad_request"),
        ("get", "/api/cards?diagnosis_from=yesterday", None, 422, "bad_request"),
        ("get", "/api/cards/abc", None, 422, "bad_request"),
        ("get", "/api/cards/424242", None, 404, "not_found"),
        ("post", "/api/cards/424242/review", {"version": 1}, 404, "not_found"),
        ("post", "/api/cards/1/review", {}, 422, "bad_request"),
        ("post", "/api/duplicates/9/resolve", {"decision": "keep"}, 404, "not_found"),
        ("get", "/api/imports/77", None, 404, "not_found"),
        ("get", "/api/imports/77/errors.csv", None, 404, "not_found"),
    ],
)
def test_bad_input_gets_a_clear_4xx(client, method, url, payload, status, code) -> None:  # type: ignore[no-untyped-def]
    kwargs = {"headers": CITY}
    if payload is not None:
        kwargs["json"] = payload
    _assert_error(getattr(client, method)(url, **kwargs), status, code)


def test_stale_and_illegal_are_409(client) -> None:  # type: ignore[no-untyped-def]
    cid = _create(client)["id"]
    assert client.post(f"/api/cards/{cid}/review", json={"version": 1}, headers=CITY).is_success
    _assert_error(
        client.post(f"/api/cards/{cid}/return", json={"version": 1, "reason": "x"}, headers=CITY),
        409,
        "stale_version",
    )
    _assert_error(
        client.post(f"/api/cards/{cid}/return", json={"version": 2, "reason": "x"}, headers=CITY),
        409,
        "illegal_transition",
    )
    _assert_error(
        client.post(
            f"/api/cards/{cid}/delete",
            json={"version": 2, "reason_code": "zzz", "reason": "x"},
            headers=CITY,
        ),
        422,
        "bad_request",
    )


def test_scope_hides_other_counties(client) -> None:  # type: ignore[no-untyped-def]
    zn = _create(client)
    spt = _create(client, address=TOWN_SPT, org=ORG_SPT, seq=103, name="王五")
    ids = {c["id"] for c in client.get("/api/cards", headers=ZN).json()["items"]}
    assert ids == {zn["id"]}
    _assert_error(client.get(f"/api/cards/{spt['id']}", headers=ZN), 404, "not_found")
    _assert_error(
        client.post(f"/api/cards/{spt['id']}/review", json={"version": 1}, headers=ZN),
        404,
        "not_found",
    )
    text = client.get("/api/cards/export?format=csv", headers=ZN).content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["id"]) for r in rows] == [zn["id"]]
    assert rows[0]["patient_name"] == "张*"
    org = {"X-Yifang-User": "h", "X-Yifang-Org": ORG_SPT}
    assert [c["id"] for c in client.get("/api/cards", headers=org).json()["items"]] == [spt["id"]]


def test_list_filters_pages_and_counts(client) -> None:  # type: ignore[no-untyped-def]
    made = [_create(client, seq=101 + 2 * i, name=f"病人{'甲乙丙丁戊'[i]}") for i in range(5)]
    hep = _create(client, disease="T_HEPA", seq=121, name="肝炎")
    r = client.get("/api/cards?disease_code=T_FLU&limit=2", headers=CITY).json()
    seen = [c["id"] for c in r["items"]]
    while r["next_cursor"]:
        r = client.get(
            f"/api/cards?disease_code=T_FLU&limit=2&cursor={r['next_cursor']}", headers=CITY
        ).json()
        seen += [c["id"] for c in r["items"]]
    assert sorted(seen) == sorted(c["id"] for c in made) and len(seen) == 5
    r = client.get(
        "/api/cards?disease_code=T_HEPA&disease_code=T_FLU&region=640521", headers=CITY
    ).json()
    assert len(r["items"]) == 6
    number = hep["card_number"]
    r = client.get(f"/api/cards?card_number={number[:12]}", headers=CITY).json()
    assert hep["id"] in [c["id"] for c in r["items"]]
    counts = client.get("/api/cards/counts", headers=CITY).json()
    assert sum(c["cards"] for c in counts) == 6
    assert {c["county_code"] for c in counts} == {"640521"}


def test_overdue_and_duplicates_endpoints(client) -> None:  # type: ignore[no-untyped-def]
    _create(client)
    _create(client)
    assert client.get("/api/cards/overdue", headers=CITY).json()["items"] == []
    flags = client.get("/api/duplicates", headers=CITY).json()
    assert len(flags) == 1 and flags[0]["rule"] == "id_number"
    assert flags[0]["card"]["patient_name"] == "张*"
    assert client.get("/api/duplicates", headers=SPT).json() == []
    r = client.post(
        f"/api/duplicates/{flags[0]['id']}/resolve", json={"decision": "merge"}, headers=ZN
    )
    assert r.status_code == 200 and r.json()["decision"] == "merge"
    assert r.json()["card"]["status"] == "deleted"
    _assert_error(
        client.post(
            f"/api/duplicates/{flags[0]['id']}/resolve", json={"decision": "keep"}, headers=ZN
        ),
        409,
        "illegal_transition",
    )


def test_export_xlsx(client) -> None:  # type: ignore[no-untyped-def]
    import openpyxl

    _create(client)
    r = client.get("/api/cards/export?format=xlsx", headers=CITY)
    assert r.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True)
    rows = list(book["cards"].iter_rows(values_only=True))
    assert rows[0][0] == "id" and len(rows) == 2


def test_import_upload_flags_duplicates_and_reports_errors(client) -> None:  # type: ignore[no-untyped-def]
    _create(client)
    good = _body(seq=101)  # the same person as the card above
    good["card_number"] = "UP0001"
    bad = _body(seq=103, sex="?")
    bad["card_number"] = "UP0002"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(good))
    writer.writeheader()
    writer.writerow(good)
    writer.writerow(bad)
    files = {"file": ("cards.csv", buffer.getvalue().encode("utf-8"), "text/csv")}
    r = client.post("/api/imports", files=files, headers=CITY)
    assert r.status_code == 201, r.text
    batch = r.json()
    assert batch["rows_stored"] == 1 and batch["rows_quarantined"] == 1
    assert batch["duplicate_flags"] == 1
    assert client.get(f"/api/imports/{batch['id']}", headers=CITY).json()["status"] == "done"
    report = client.get(f"/api/imports/{batch['id']}/errors.csv", headers=CITY)
    assert report.status_code == 200 and "UP0002" in report.content.decode("utf-8-sig")
    xlsx = client.get(f"/api/imports/{batch['id']}/errors.xlsx", headers=CITY)
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    empty = {"file": ("empty.csv", b"", "text/csv")}
    body = client.post("/api/imports", files=empty, headers=CITY).json()
    assert body["error"].startswith("file.") and body["message_zh"]


def test_openapi_documents_the_routes(client) -> None:  # type: ignore[no-untyped-def]
    spec = client.get("/api/openapi.json").json()
    for path in (
        "/api/cards",
        "/api/cards/{card_id}",
        "/api/cards/{card_id}/correct",
        "/api/cards/overdue",
        "/api/duplicates",
        "/api/imports",
    ):
        assert path in spec["paths"]
    assert "CardView" in spec["components"]["schemas"]
    assert "ErrorBody" in spec["components"]["schemas"]
