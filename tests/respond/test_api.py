"""The response API end to end, as the demo accounts: from signal to closed event."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from argon2 import PasswordHasher, profiles
from fastapi.testclient import TestClient

from tests.respond.conftest import make_card, make_signal
from tests.web.conftest import log_in
from yifang.core import accounts
from yifang.core.db import utcnow
from yifang.respond import service


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture()
def as_user(engine, session):
    """A factory: ``as_user("zn_cdc_epi")`` gives a client logged in as that demo user."""
    from yifang.web.app import create_app

    passwords = {u: p for u, p, _ in accounts.create_demo_users(session)}
    session.commit()
    app = create_app()
    clients: list[TestClient] = []

    def make(username: str) -> TestClient:
        client = TestClient(app)
        clients.append(client)
        return log_in(client, username, passwords[username])

    yield make
    for c in clients:
        c.close()


def _signal_and_verification(session, disease="VARICELLA", region="640521100"):
    sig = make_signal(session, disease, region, created_at=utcnow())
    service.open_verifications(session, utcnow())
    cards = [make_card(session, disease, region) for _ in range(10)]
    session.commit()
    return sig, cards


def test_signal_to_closed_event(session, as_user, tmp_path, monkeypatch):
    from yifang.core import settings as core_settings

    monkeypatch.setattr(core_settings.get_settings(), "data_dir", tmp_path)
    _sig, cards = _signal_and_verification(session)
    epi, city, edu, sps = (
        as_user("zn_cdc_epi"),
        as_user("city_cdc"),
        as_user("edu_liaison"),
        as_user("sps_cdc_review"),
    )
    # the county CDC sees its verification; another county does not
    (v,) = epi.get("/api/verifications").json()
    assert v["organisation_code"] == "640521CD01" and v["status"] == "pending"
    assert sps.get("/api/verifications").json() == []
    assert edu.get("/api/verifications").status_code == 403
    assert (
        sps.post(
            f"/api/verifications/{v['id']}/outcome", json={"version": 1, "outcome": "watching"}
        ).status_code
        == 403
    )
    # outcome: suspected event
    r = epi.post(
        f"/api/verifications/{v['id']}/outcome",
        json={
            "version": 1,
            "outcome": "suspected",
            "checks": ["cards", "phone_hospital"],
            "findings": "同一小学多例",
            "event_type": "school_cluster",
            "event_tags": ["school"],
        },
    )
    assert r.status_code == 200, r.text
    event_id = r.json()["event_id"]
    stale = epi.post(
        f"/api/verifications/{v['id']}/outcome", json={"version": 1, "outcome": "watching"}
    )
    assert stale.status_code == 409 and stale.json()["error"] == "stale_version"
    assert "刷新" in stale.json()["message_zh"]

    ev = epi.get(f"/api/events/{event_id}").json()
    assert ev["status"] == "suspected" and ev["organisation_code"] == "640521CD01"
    r = epi.post(
        f"/api/events/{event_id}/investigate", json={"version": ev["version"], "team": ["赵流调"]}
    )
    assert r.status_code == 200, r.text
    for card in cards:
        assert (
            epi.post(f"/api/events/{event_id}/cases", json={"card_id": card.id}).status_code == 201
        )
    r = epi.post(
        f"/api/events/{event_id}/samples", json={"sample_type": "疱液", "card_id": cards[0].id}
    )
    assert r.status_code == 201
    version = epi.get(f"/api/events/{event_id}").json()["version"]
    r = epi.post(
        f"/api/events/{event_id}/confirm", json={"version": version, "findings": "水痘暴发"}
    )
    assert r.status_code == 200 and r.json()["status"] == "confirmed"
    version = r.json()["version"]
    sugg = epi.get(f"/api/events/{event_id}/grade-suggestion").json()
    assert sugg["related_info"] is True and sugg["basis"][0]["rule"] == "ri_respiratory_school"
    r = epi.post(f"/api/events/{event_id}/grade", json={"version": version, "accept": True})
    assert r.status_code == 200 and r.json()["accepted"] is True
    version = epi.get(f"/api/events/{event_id}").json()["version"]
    # an illegal jump is refused with the state named
    r = epi.post(f"/api/events/{event_id}/close", json={"version": version, "conclusion": "x"})
    assert r.status_code == 409 and r.json()["error"] == "illegal_transition"
    r = epi.post(f"/api/events/{event_id}/respond", json={"version": version})
    assert r.status_code == 200
    made = epi.post(f"/api/events/{event_id}/plan", json={}).json()
    assert {t["owner"] for t in made} >= {"education", "cdc"}

    # the education bureau sees only its task, with a de-identified event summary
    (task,) = edu.get("/api/tasks").json()
    assert task["owner"] == "education"
    detail = edu.get(f"/api/tasks/{task['id']}").json()
    assert detail["event"]["cases"] == 10 and "title" not in detail["event"]
    assert edu.get(f"/api/events/{event_id}").status_code == 403
    cdc_task = next(t for t in made if t["owner"] == "cdc")
    assert edu.get(f"/api/tasks/{cdc_task['id']}").status_code == 404
    r = edu.post(f"/api/tasks/{task['id']}/accept", json={"version": 1})
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    assert (
        edu.post(f"/api/tasks/{task['id']}/comments", json={"text": "已通知学校"}).status_code
        == 201
    )
    up = edu.post(
        f"/api/tasks/{task['id']}/attachments",
        files={"file": ("停课通知.pdf", io.BytesIO(b"%PDF-1.4 test"), "application/pdf")},
    )
    assert up.status_code == 201, up.text
    got = epi.get(f"/api/attachments/{up.json()['id']}")
    assert got.status_code == 200 and got.content == b"%PDF-1.4 test"
    bad = edu.post(
        f"/api/tasks/{task['id']}/attachments",
        files={"file": ("x.exe", io.BytesIO(b"MZ"), "application/octet-stream")},
    )
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "file"
    r = edu.post(f"/api/tasks/{task['id']}/complete", json={"version": 2, "result": "停课一周"})
    assert r.status_code == 200 and r.json()["status"] == "done"

    # warning to departments, de-identified, acknowledged
    r = epi.post(
        f"/api/events/{event_id}/warnings",
        json={"to": ["education", "market_regulation"], "advice": "加强晨午检"},
    )
    assert r.status_code == 201
    text = r.text
    for card in cards:
        assert card.patient_name not in text and card.id_number not in text
    (w,) = edu.get("/api/warnings?unacknowledged=true").json()
    assert edu.post(f"/api/warnings/{w['id']}/acknowledge").status_code == 200
    assert edu.get("/api/warnings?unacknowledged=true").json() == []
    notes = edu.get("/api/notifications").json()
    assert {n["kind"] for n in notes} >= {"task_assigned", "warning"}
    assert edu.post("/api/notifications/read-all").json()["read"] == len(notes)
    assert edu.get("/api/notifications/unread-count").json() == {"unread": 0}

    # command view
    (pin,) = city.get("/api/command/map").json()
    assert pin["id"] == event_id and pin["cases"] == 10
    assert pin["longitude"] == pytest.approx(105.68) and pin["latitude"] == pytest.approx(37.49)
    board = city.get("/api/command/board").json()
    assert [t["id"] for t in board["education"]["done"]] == [task["id"]]
    assert set(board["education"]) == {
        "open",
        "accepted",
        "in_progress",
        "done",
        "overdue",
        "cancelled",
    }

    # close: refused while tasks are open, then done after cancelling them
    version = epi.get(f"/api/events/{event_id}").json()["version"]
    r = epi.post(f"/api/events/{event_id}/close", json={"version": version, "conclusion": "平息"})
    assert r.status_code == 409 and r.json()["error"] == "tasks_unfinished"
    for t in epi.get(f"/api/tasks?event_id={event_id}&status=open").json():
        r = epi.post(
            f"/api/tasks/{t['id']}/cancel", json={"version": t["version"], "reason": "已由他人完成"}
        )
        assert r.status_code == 200, r.text
    r = epi.post(
        f"/api/events/{event_id}/close", json={"version": version, "conclusion": "疫情平息"}
    )
    assert r.status_code == 200 and r.json()["status"] == "closed"

    tl = city.get(f"/api/events/{event_id}/timeline").json()
    kinds = [(e["kind"], e["action"]) for e in tl["entries"]]
    assert kinds[0] == ("signal", "raised") and kinds[-1] == ("event", "close")
    assert ("verification", "suspect") in kinds and ("warning", "acknowledged") in kinds
    assert tl["hours_to"]["event.closed"] >= 0
    report = city.get(f"/api/events/{event_id}/report.docx")
    assert report.status_code == 200 and report.content[:2] == b"PK"
    assert city.get("/api/command/map").json() == []


def test_errors_are_json_with_both_languages(session, as_user):
    _signal_and_verification(session)
    epi = as_user("zn_cdc_epi")
    r = epi.post("/api/verifications/999/outcome", json={"version": 1, "outcome": "watching"})
    assert r.status_code == 404 and r.json()["message_en"].startswith("verification 999")
    r = epi.post("/api/verifications/1/outcome", json={"outcome": "watching"})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "version"
    r = epi.post("/api/events", json={"title": "越界", "region_code": "640502100"})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert TestClient(epi.app).get("/api/verifications").status_code == 401


def test_overdue_filter_consultation_and_contacts(session, as_user):
    sig = make_signal(session, "CHOLERA", "640521100", created_at=utcnow() - timedelta(hours=5))
    service.open_verifications(session, utcnow())
    case = make_card(session, "CHOLERA")
    session.commit()
    epi, city = as_user("zn_cdc_epi"), as_user("city_cdc")
    (v,) = city.get("/api/verifications?overdue=true").json()
    assert v["signal_id"] == sig.id and v["overdue"] is True
    meeting = epi.post("/api/consultations", json={"title": "专题会商", "kind": "ad_hoc"}).json()
    item = next(i for i in meeting["items"] if i["item_type"] == "signal")
    r = epi.post(
        f"/api/consultation-items/{item['id']}/assess", json={"likelihood": 5, "impact": 5}
    )
    assert r.json()["risk_level"] == "very_high"
    r = epi.post(
        f"/api/consultations/{meeting['id']}/decisions",
        json={"text": "市场监管部门排查水产品", "task": {"owner": "market_regulation"}},
    )
    assert r.status_code == 200 and r.json()["task_id"]
    assert (
        epi.post(f"/api/consultations/{meeting['id']}/start", json={"version": 1}).status_code
        == 200
    )
    r = epi.post(
        f"/api/consultations/{meeting['id']}/close", json={"version": 2, "minutes": "纪要"}
    )
    assert r.status_code == 200 and r.json()["status"] == "closed"
    r = epi.post(
        "/api/contacts",
        json={
            "case_card_id": case.id,
            "name": "王小五",
            "phone": "13900001111",
            "last_exposure": (utcnow().date() - timedelta(days=1)).isoformat(),
        },
    )
    assert r.status_code == 201 and r.json()["name"] == "王小五"
    leader = as_user("commission")  # sees the city, but masked
    (c,) = (
        leader.get("/api/contacts").json()
        if leader.get("/api/contacts").status_code == 200
        else [None]
    )
    assert c["name"] == "王**" and c["phone"] == "139****1111"
    r = epi.post(
        f"/api/contacts/{c['id']}/follow-ups",
        json={"day": utcnow().date().isoformat(), "condition": "well", "temperature": 36.5},
    )
    assert r.status_code == 201
