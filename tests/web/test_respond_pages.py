"""The response pages: each role reaches the pages its permissions allow (and no other),
in Chinese and English, with the navigation to match; their forms post to the response API
with the CSRF token; other departments see only their own, de-identified work."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.respond.conftest import make_card, make_signal
from yifang.respond import service
from yifang.web.i18n import messages
from yifang.web.respond_pages import script_messages

PAGES = ("/verify", "/events", "/events/1", "/tasks", "/consultations", "/contacts")

#: Which response pages each demo role may open.
ALLOWED = {
    "zn_cdc_epi": set(PAGES),
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
