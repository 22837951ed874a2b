"""The response pages: each role reaches the pages its permissions allow (and no other),
in Chinese and English, with the navigation to match; their forms post to the response API
with the CSRF token; other departments see only their own, de-identified work."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from tests.respond.conftest import make_card, make_signal
from yifang.respond import service
from yifang.web.i18n import messages
from yifang.web.respond_pages import script_messages

PAGES = ("/verify", "/events", "/events/1", "/tasks", "/consultations", "/contacts", "/plans")

#: Which response pages each demo role may open.
ALLOWED = {
    "zn_cdc_epi": set(PAGES),  # plans to read only: it has event.manage for its county
    "city_cdc": set(PAGES),
    "commission": {"/verify", "/events", "/events/1", "/tasks", "/consultations", "/contacts"},
    "zn_cdc_review": {"/verify"},
    "edu_liaison": {"/tasks"},
    "zn_prevention": {"/tasks"},
    "zn_hospital": set(),
    "admin": set(),
}


@pytest.mark.parametrize("username", sorted(ALLOWED))
def test_each_role_reaches_only_its_pages(login, username):
    client = login(username)
    for path in PAGES:
        r = client.get(path, follow_redirects=False)
        if path in ALLOWED[username]:
            assert r.status_code == 200, (username, path, r.text[:300])
            assert "{{" not in r.text and 'name="csrf-token"' in r.text
        else:
            assert r.status_code == 403, (username, path, r.status_code)


def test_pages_render_in_english_too(login):
    client = login("city_cdc")
    for path in PAGES:
        assert '<html lang="en">' in client.get(f"{path}?lang=en").text, path
    assert "Final report (PDF)" in client.get("/events/1?lang=en").text
    assert "Signal verification" in client.get("/verify?lang=en").text
    assert "Task board" in client.get("/tasks?lang=en").text


def test_anonymous_visitors_go_to_the_login_page(client):
    for path in PAGES:
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


def test_navigation_shows_the_response_pages_a_role_may_use(login):
    nav = re.compile(r'<nav class="mainnav"[^>]*>(.*?)</nav>', re.S)

    def links(username: str) -> set[str]:
        html = login(username).get("/account").text
        return set(re.findall(r'href="(/[a-z/]*)"', nav.search(html).group(1)))

    epi = links("zn_cdc_epi")
    assert {"/verify", "/events", "/tasks", "/consultations", "/contacts"} <= epi
    liaison = links("edu_liaison")
    assert "/tasks" in liaison and not {"/verify", "/events", "/contacts"} & liaison
    assert not {"/verify", "/events", "/tasks"} & links("zn_hospital")
    reviewer = links("zn_cdc_review")
    assert "/verify" not in reviewer and "/events" not in reviewer  # reads signals only
    # plan templates: only those who may edit them (event.manage over the whole city)
    assert "/plans" in links("city_cdc")
    assert "/plans" not in epi and "/plans" not in links("commission")


def test_event_page_has_both_report_downloads_and_the_thresholds(login):
    html = login("zn_cdc_epi").get("/events/7").text
    assert "/api/events/7/report.docx" in html and "/api/events/7/report.pdf" in html
    assert "现行分级标准" in html and "霍乱" in html  # the thresholds of grading.yaml
    assert 'data-action="investigate"' in html  # event managers get the forms
    assert 'data-action="investigate"' not in login("commission").get("/events/7").text


def test_verification_form_posts_with_csrf_and_opens_an_event(login, session):
    signal = make_signal(session, "VARICELLA", "640521100")
    (v,) = service.open_verifications(session)
    session.commit()
    epi = login("zn_cdc_epi")
    html = epi.get("/verify").text
    assert "排查重卡" in html and "数据错误" in html  # checks and dismissal reasons listed
    body = {
        "version": v.version,
        "outcome": "suspected",
        "checks": ["cards", "phone_hospital"],
        "findings": "同一小学",
        "event_type": "school_cluster",
        "event_tags": ["school"],
    }
    forged = epi.post(
        f"/api/verifications/{v.id}/outcome", json=body, headers={"X-CSRF-Token": "forged"}
    )
    assert forged.status_code == 403
    r = epi.post(f"/api/verifications/{v.id}/outcome", json=body)
    assert r.status_code == 200, r.text
    event_id = r.json()["event_id"]
    assert epi.get(f"/api/events/{event_id}").json()["signal_id"] == signal.id
    assert epi.get(f"/events/{event_id}").status_code == 200
    # another county's epidemiologist has the page shell but the API refuses the event
    other = login("sps_cdc_review")
    assert other.get(f"/api/events/{event_id}").status_code == 403  # no event.view at all


def test_liaison_board_holds_only_its_departments_deidentified_tasks(login, session):
    make_signal(session, "VARICELLA", "640521100")
    (v,) = service.open_verifications(session)
    session.commit()
    epi = login("zn_cdc_epi")
    r = epi.post(
        f"/api/verifications/{v.id}/outcome",
        json={"version": 1, "outcome": "suspected", "event_type": "school_cluster"},
    )
    event_id = r.json()["event_id"]
    card = make_card(session)
    session.commit()
    assert epi.post(f"/api/events/{event_id}/cases", json={"card_id": card.id}).status_code == 201
    made = epi.post(f"/api/events/{event_id}/plan", json={}).json()
    assert {t["owner"] for t in made} >= {"education", "cdc"}
    edu = login("edu_liaison")
    page = edu.get("/tasks").text
    assert "只显示派给本部门的任务和通报" in page and card.patient_name not in page
    board = edu.get("/api/command/board").json()
    assert set(board) == {"education"}
    task = board["education"]["open"][0]
    detail = edu.get(f"/api/tasks/{task['id']}").text
    assert card.patient_name not in detail and card.id_number not in detail
    assert edu.post(f"/api/tasks/{task['id']}/accept", json={"version": 1}).status_code == 200
    warning = epi.post(
        f"/api/events/{event_id}/warnings", json={"to": ["education"], "advice": "晨午检"}
    )
    assert warning.status_code == 201
    wid = warning.json()["id"]
    assert edu.post(f"/api/warnings/{wid}/acknowledge").status_code == 200


def test_every_script_message_exists_in_both_languages():
    web = Path(__file__).parents[2] / "yifang" / "web"
    catalog = messages()
    scripts = [
        *(web / "static" / "js").glob("respond*.js"),
        web / "static" / "js" / "event_detail.js",
    ]
    used: set[str] = set()
    for script in scripts:
        used |= set(re.findall(r'YR\.t\("([a-z_.]+)"', script.read_text(encoding="utf-8")))
    missing = sorted(
        k
        for k in used
        if not k.endswith(("_", ".")) and k not in catalog and f"respond.{k}" not in catalog
    )
    assert not missing, missing
    sent = script_messages("en")  # what the pages hand their scripts
    unsent = sorted(
        k
        for k in used
        if not k.endswith(("_", ".")) and k not in sent and f"respond.{k}" not in sent
    )
    assert not unsent, unsent
    dynamic = {
        "task.do_": ("accept", "start", "complete", "cancel"),
        "contact.condition_": ("well", "symptomatic", "unreachable"),
        "consult.status_": ("planned", "in_session", "closed", "cancelled"),
        "kind.": ("signal", "verification", "event", "case", "grade", "task", "warning"),
    }
    for prefix, names in dynamic.items():
        for name in names:
            assert prefix + name in catalog, prefix + name


# --------------------------------------------------------------------------- helpers


@pytest.fixture()
def files_dir(tmp_path, monkeypatch):
    """Attachments go to a temporary data directory."""
    from yifang.core.settings import get_settings

    monkeypatch.setattr(get_settings(), "data_dir", tmp_path)
    return tmp_path


def _school_event(session, epi):
    """A suspected school cluster of 中宁县 with the plan's tasks; returns (event id, tasks)."""
    make_signal(session, "VARICELLA", "640521100")
    (v,) = service.open_verifications(session)
    session.commit()
    r = epi.post(
        f"/api/verifications/{v.id}/outcome",
        json={"version": 1, "outcome": "suspected", "event_type": "school_cluster"},
    )
    event_id = r.json()["event_id"]
    made = epi.post(f"/api/events/{event_id}/plan", json={}).json()
    return event_id, made


# --------------------------------------------------------------------------- attachments


def test_liaison_attaches_a_file_to_its_task_and_lists_it(login, session, files_dir):
    epi = login("zn_cdc_epi")
    event_id, made = _school_event(session, epi)
    edu = login("edu_liaison")
    task = next(t for t in made if t["owner"] == "education")
    up = edu.post(
        f"/api/tasks/{task['id']}/attachments",
        files={"file": ("停课通知.txt", io.BytesIO("三年级停课一周".encode()), "text/plain")},
    )
    assert up.status_code == 201, up.text
    listed = edu.get(f"/api/tasks/{task['id']}/attachments").json()
    assert [a["filename"] for a in listed] == ["停课通知.txt"]
    got = epi.get(f"/api/attachments/{listed[0]['id']}")
    assert got.status_code == 200 and got.content.decode() == "三年级停课一周"
    # the board and the event's task list count the files
    board = edu.get("/api/command/board").json()
    card = next(c for c in board["education"]["open"] if c["id"] == task["id"])
    assert card["attachment_count"] == 1
    rows = epi.get(f"/api/tasks?event_id={event_id}").json()
    assert {t["id"]: t["attachment_count"] for t in rows}[task["id"]] == 1
    assert edu.get(f"/api/tasks/{task['id']}").json()["attachment_count"] == 1
    # another department's task is neither listed nor open to uploads
    cdc_task = next(t for t in made if t["owner"] == "cdc")
    assert edu.get(f"/api/tasks/{cdc_task['id']}/attachments").status_code == 404
    refused = edu.post(
        f"/api/tasks/{cdc_task['id']}/attachments",
        files={"file": ("a.txt", io.BytesIO(b"x"), "text/plain")},
    )
    assert refused.status_code == 404
    # a leader who may read the task reads its files but attaches none (not its work)
    leader = login("commission")
    assert leader.get(f"/api/tasks/{task['id']}/attachments").status_code == 200
    not_theirs = leader.post(
        f"/api/tasks/{task['id']}/attachments",
        files={"file": ("b.txt", io.BytesIO(b"y"), "text/plain")},
    )
    assert not_theirs.status_code == 403, not_theirs.text
    # the pages carry the limit and the accepted types for the check before sending
    html = edu.get("/tasks").text
    assert '"attachment_max_bytes": 10485760' in html and '"pdf"' in html


def test_a_wrong_file_is_withdrawn_by_who_attached_it(login, session, files_dir):
    from sqlalchemy import select

    from yifang.core.audit import AuditEntry
    from yifang.respond.models import Attachment

    epi = login("zn_cdc_epi")
    event_id, made = _school_event(session, epi)
    edu = login("edu_liaison")
    task = next(t for t in made if t["owner"] == "education")

    def attach(client, name):
        r = client.post(
            f"/api/tasks/{task['id']}/attachments",
            files={"file": (name, io.BytesIO(name.encode()), "text/plain")},
        )
        assert r.status_code == 201, r.text
        return r.json()["id"]

    wrong, right = attach(edu, "错发.txt"), attach(edu, "通知.txt")
    by_manager = attach(epi, "消杀记录.txt")
    # a leader who reads the task may not withdraw; the liaison may not withdraw the CDC's
    assert login("commission").delete(f"/api/attachments/{wrong}").status_code == 403
    assert edu.delete(f"/api/attachments/{by_manager}").status_code == 403
    assert edu.delete(f"/api/attachments/{wrong}").status_code == 204
    assert edu.delete(f"/api/attachments/{wrong}").status_code == 404  # already withdrawn
    listed = [a["id"] for a in edu.get(f"/api/tasks/{task['id']}/attachments").json()]
    assert listed == [right, by_manager]
    assert edu.get(f"/api/attachments/{wrong}").status_code == 404
    assert edu.get(f"/api/tasks/{task['id']}").json()["attachment_count"] == 2
    rows = epi.get(f"/api/tasks?event_id={event_id}").json()
    assert {t["id"]: t["attachment_count"] for t in rows}[task["id"]] == 2
    # the event's manager may withdraw anyone's file; nothing is erased
    assert epi.delete(f"/api/attachments/{right}").status_code == 204
    session.expire_all()
    kept = session.get(Attachment, wrong)
    assert kept is not None and kept.deleted_by == "edu_liaison" and kept.deleted_at
    actions = session.scalars(
        select(AuditEntry.actor).where(AuditEntry.action == "task.attachment_withdraw")
    ).all()
    assert sorted(actions) == ["edu_liaison", "zn_cdc_epi"]


def test_too_large_or_refused_files_are_named_by_field(login, session, files_dir):
    from yifang.respond.config import response_config

    epi = login("zn_cdc_epi")
    _event_id, made = _school_event(session, epi)
    task_id = made[0]["id"]
    limit = response_config().attachment_max_bytes
    big = b"%PDF-" + b"0" * limit
    r = epi.post(
        f"/api/tasks/{task_id}/attachments",
        files={"file": ("report.pdf", io.BytesIO(big), "application/pdf")},
    )
    assert r.status_code == 422
    (field,) = r.json()["fields"]
    assert field["field"] == "file" and "MB" in field["message_zh"]
    for name, data, kind in (
        ("tool.exe", b"MZ", "application/octet-stream"),
        ("fake.pdf", b"not a pdf", "application/pdf"),
        ("empty.txt", b"", "text/plain"),
    ):
        r = epi.post(
            f"/api/tasks/{task_id}/attachments", files={"file": (name, io.BytesIO(data), kind)}
        )
        assert r.status_code == 422 and r.json()["fields"][0]["field"] == "file", name
    assert epi.get(f"/api/tasks/{task_id}/attachments").json() == []


# --------------------------------------------------------------------------- plans


def test_plans_page_edits_for_the_city_and_reads_for_a_county(login):
    city = login("city_cdc").get("/plans").text
    assert 'data-editable="true"' in city and "js/respond_plans.js" in city
    assert "data-readonly" not in city
    county = login("zn_cdc_epi").get("/plans?lang=en").text
    assert 'data-editable="false"' in county and "Only the city CDC may edit" in county


def test_city_cdc_adds_a_template_and_resets_an_edited_one(login, session):
    from sqlalchemy import select

    from yifang.core.audit import AuditEntry

    city = login("city_cdc")
    new = {
        "code": "campus_norovirus",
        "name_zh": "高校诺如病毒聚集",
        "event_types": ["school_cluster"],
        "diseases": ["INFECTIOUS_DIARRHEA"],
        "levels": ["IV"],
        "tasks": [{"owner": "education", "zh": "停课消毒", "deadline_hours": 24}],
    }
    # errors by field: a bad code, a taken code, no action, an unknown level
    r = city.post("/api/plans", json={**new, "code": "Bad Code"})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "code", r.text
    r = city.post("/api/plans", json={**new, "code": "school_cluster"})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "code", r.text
    r = city.post("/api/plans", json={**new, "tasks": [], "levels": ["V"]})
    assert {f["field"] for f in r.json()["fields"]} == {"tasks", "levels"}, r.text
    made = city.post("/api/plans", json=new)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["edited_by"] == "city_cdc" and body["name_en"] == "高校诺如病毒聚集"
    assert body["from_file"] is False and body["active"] is True
    listed = {p["code"]: p for p in city.get("/api/plans").json()}
    assert "campus_norovirus" in listed and listed["school_cluster"]["from_file"] is True
    # a county may read the templates but neither add nor reset them
    county = login("zn_cdc_epi")
    assert county.post("/api/plans", json={**new, "code": "county_own"}).status_code == 403
    assert county.post("/api/plans/school_cluster/reset").status_code == 403
    # an edited file template goes back to the file's version; the city's own cannot
    original = listed["school_cluster"]
    edited = city.patch(
        "/api/plans/school_cluster", json={"levels": ["IV"], "active": False}
    ).json()
    assert edited["edited_by"] == "city_cdc"
    back = city.post("/api/plans/school_cluster/reset")
    assert back.status_code == 200, back.text
    back_body = back.json()
    assert back_body["levels"] == original["levels"] and back_body["active"] is True
    assert back_body["edited_by"] is None and back_body["tasks"] == original["tasks"]
    own = city.post("/api/plans/campus_norovirus/reset")
    assert own.status_code == 422 and own.json()["fields"][0]["field"] == "code"
    actions = set(
        session.scalars(
            select(AuditEntry.action).where(AuditEntry.entity_type == "plan_template")
        ).all()
    )
    assert {"plan_template.create", "plan_template.edit", "plan_template.reset"} <= actions


def test_city_cdc_edits_a_template_with_errors_by_field(login):
    city = login("city_cdc")
    plans = {p["code"]: p for p in city.get("/api/plans").json()}
    school = plans["school_cluster"]
    assert school["updated_at"] and school["tasks"][0]["owner"] == "education"
    bad = [
        {"owner": "nobody", "zh": "x", "deadline_hours": 24},
        {"owner": "cdc", "zh": " ", "deadline_hours": 0},
        {"owner": "cdc", "zh": "消毒", "deadline_hours": "soon"},
    ]
    r = city.patch(
        "/api/plans/school_cluster",
        json={"tasks": bad, "levels": ["V"], "event_types": ["parade"], "name_zh": ""},
    )
    assert r.status_code == 422, r.text
    fields = {f["field"] for f in r.json()["fields"]}
    assert fields == {
        "tasks.0.owner",
        "tasks.1.zh",
        "tasks.1.deadline_hours",
        "tasks.2.deadline_hours",
        "levels",
        "event_types",
        "name_zh",
    }
    assert (
        city.patch("/api/plans/school_cluster", json={"tasks": []}).json()["fields"][0]["field"]
        == "tasks"
    )
    # nothing was stored; a good edit (one removed, one changed, one added) is
    actions = school["tasks"][1:]
    actions[0] = {**actions[0], "deadline_hours": 6}
    actions.append({"owner": "market_regulation", "zh": "检查学校食堂", "deadline_hours": 48})
    r = city.patch(
        "/api/plans/school_cluster",
        json={"updated_at": school["updated_at"], "tasks": actions, "levels": ["III", "IV"]},
    )
    assert r.status_code == 200, r.text
    saved = r.json()
    assert [a["owner"] for a in saved["tasks"]] == [
        *(a["owner"] for a in school["tasks"][1:]),
        "market_regulation",
    ]
    assert saved["tasks"][0]["deadline_hours"] == 6 and saved["edited_by"] == "city_cdc"
    # an edit made on what was read before is refused, not lost
    stale = city.patch(
        "/api/plans/school_cluster", json={"updated_at": school["updated_at"], "tags": []}
    )
    assert stale.status_code == 409 and stale.json()["fields"][0]["field"] == "updated_at"
    # the county CDC and the commission may not edit
    assert login("zn_cdc_epi").patch("/api/plans/school_cluster", json={}).status_code == 403
    assert login("commission").patch("/api/plans/school_cluster", json={}).status_code == 403


# --------------------------------------------------------------------------- small fixes


def test_verification_rows_say_how_their_signal_was_raised(login, session):
    make_signal(session, "VARICELLA", "640521100")
    service.open_verifications(session)
    session.commit()
    epi = login("zn_cdc_epi")
    (v,) = epi.get("/api/verifications").json()
    assert (v["signal_rule"], v["signal_method"]) == ("test_rule", "fixed")
    assert (v["signal_region_level"], v["signal_granularity"]) == ("township", "day")
    assert epi.get(f"/api/verifications/{v['id']}").json()["signal_rule"] == "test_rule"
    assert "预警规则" in script_messages("zh").get("verify.raised_by", "")


def test_board_cards_carry_event_number_and_completion_time(login, session):
    epi = login("zn_cdc_epi")
    event_id, made = _school_event(session, epi)
    number = epi.get(f"/api/events/{event_id}").json()["number"]
    edu = login("edu_liaison")
    task = next(t for t in made if t["owner"] == "education")
    assert edu.post(f"/api/tasks/{task['id']}/accept", json={"version": 1}).status_code == 200
    done = edu.post(f"/api/tasks/{task['id']}/complete", json={"version": 2, "result": "停课"})
    assert done.status_code == 200
    board = edu.get("/api/command/board").json()
    (card,) = board["education"]["done"]
    assert card["event_number"] == number and number.startswith("E")
    assert card["finished_at"] == done.json()["done_at"]
    assert edu.get("/api/events").status_code == 403  # the number comes with the board
    open_card = epi.get("/api/command/board").json()["cdc"]["open"][0]
    assert open_card["finished_at"] is None and open_card["event_number"] == number
