"""Logging in and out through the pages and the JSON API; CSRF on forms; tokens; i18n."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.web.conftest import csrf_of, log_in
from yifang.core import accounts
from yifang.core.audit import AuditEntry
from yifang.core.auth import SESSION_COOKIE


def form_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.mark.parametrize(
    ("username", "landing"),
    [
        ("zn_hospital", "/"),
        ("zn_prevention", "/"),
        ("zn_cdc_review", "/"),
        ("zn_cdc_epi", "/"),
        ("city_cdc", "/"),
        ("commission", "/"),
        ("edu_liaison", "/"),
        ("admin", "/"),
    ],
)
def test_each_role_logs_in_through_the_form(client, demo, username, landing):
    page = client.get("/login?next=/")
    assert page.status_code == 200 and "登录" in page.text
    r = client.post(
        "/login",
        data={
            "username": username,
            "password": demo[username],
            "next": landing,
            "csrf_token": form_token(page.text),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == landing
    me = client.get("/api/auth/me").json()
    assert me["username"] == username
    home = client.get("/")
    assert home.status_code == 200 and ("退出" in home.text)


def test_form_login_without_csrf_token_is_refused(client, demo):
    client.get("/login")
    r = client.post("/login", data={"username": "admin", "password": demo["admin"]})
    assert r.status_code == 403
    assert SESSION_COOKIE not in client.cookies


def test_wrong_password_shows_the_form_again(client, demo):
    page = client.get("/login")
    r = client.post(
        "/login",
        data={"username": "admin", "password": "nope", "csrf_token": form_token(page.text)},
    )
    assert r.status_code == 401 and "用户名或密码错误" in r.text


def test_json_login_lockout_and_audit(client, session, demo):
    token = csrf_of(client)
    limit = accounts.get_account_settings().lockout_failures
    for _ in range(limit):
        r = client.post(
            "/api/auth/login",
            json={"username": "zn_cdc_review", "password": "Wrong-pass-1"},
            headers={"X-CSRF-Token": token},
        )
        assert r.status_code == 401
    r = client.post(
        "/api/auth/login",
        json={"username": "zn_cdc_review", "password": demo["zn_cdc_review"]},
        headers={"X-CSRF-Token": token},
    )
    assert r.status_code == 423 and r.json()["detail"]["code"] == "locked"
    actions = session.scalars(select(AuditEntry.action)).all()
    assert actions.count("login.failed") == limit + 1 and "user.locked" in actions


def test_pages_send_anonymous_visitors_to_login(client):
    for path in ("/", "/cards", "/cards/new", "/cards/mine", "/review", "/cards/1", "/account"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/login?next=")
    assert client.get("/api/auth/me").status_code == 401


def test_open_redirects_are_refused(client, demo):
    page = client.get("/login")
    r = client.post(
        "/login",
        data={
            "username": "admin",
            "password": demo["admin"],
            "next": "//evil.example/",
            "csrf_token": form_token(page.text),
        },
        follow_redirects=False,
    )
    assert r.headers["location"] == "/"


def test_logout_ends_the_session(login):
    client = login("city_cdc")
    assert client.get("/api/auth/me").status_code == 200
    old = client.cookies.get(SESSION_COOKIE)
    assert client.post("/api/auth/logout").status_code == 200
    client.cookies.set(SESSION_COOKIE, old)  # even a kept copy of the cookie is dead
    assert client.get("/api/auth/me").status_code == 401


def test_page_forbidden_for_roles_without_permission(login):
    client = login("edu_liaison")
    r = client.get("/review")
    assert r.status_code == 403 and "card.review" in r.text


def test_password_change_applies_policy(login, demo):
    client = login("zn_cdc_epi")
    weak = client.post(
        "/api/auth/password",
        json={"old_password": demo["zn_cdc_epi"], "new_password": "short"},
    )
    assert weak.status_code == 422 and "too_short:8" in weak.json()["detail"]["problems"]
    wrong = client.post(
        "/api/auth/password", json={"old_password": "x", "new_password": "Quiet-River-77"}
    )
    assert wrong.status_code == 400
    ok = client.post(
        "/api/auth/password",
        json={"old_password": demo["zn_cdc_epi"], "new_password": "Quiet-River-77"},
    )
    assert ok.status_code == 200
    client.headers["X-CSRF-Token"] = ok.json()["csrf_token"]
    assert client.get("/api/auth/me").status_code == 200  # this session goes on


def test_api_tokens_for_machine_clients(login, client):
    owner = login("zn_prevention")
    made = owner.post("/api/tokens", json={"name": "HIS"})
    assert made.status_code == 201
    secret = made.json()["token"]
    listed = owner.get("/api/tokens").json()
    assert listed[0]["prefix"] == secret[:10] and "token" not in listed[0]
    r = client.get("/api/auth/me", headers={"Authorization": f"Bearer {secret}"})
    assert r.json()["username"] == "zn_prevention"
    owner.delete(f"/api/tokens/{made.json()['id']}")
    assert (
        client.get("/api/auth/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    )
    # a reporter may not make tokens
    assert login("zn_hospital").post("/api/tokens", json={"name": "x"}).status_code == 403


def test_admin_manages_users_and_roles(login, client):
    admin = login("admin")
    made = admin.post(
        "/api/users",
        json={
            "username": "new_reviewer",
            "password": "Bright-Moon-58",
            "role_code": "county_cdc_reviewer",
            "region_code": "640522",
        },
    )
    assert made.status_code == 201 and made.json()["must_change_password"] is True
    assert made.json()["scope"]["region_prefix"] == "640522"
    weak = admin.post(
        "/api/users",
        json={"username": "w", "password": "weak", "role_code": "city_cdc"},
    )
    assert weak.status_code == 422
    r = admin.patch("/api/roles/department_liaison", json={"permissions": ["aggregate.view"]})
    assert r.status_code == 200
    assert login("edu_liaison").get("/api/auth/me").json()["permissions"] == ["aggregate.view"]
    # not for other roles
    assert login("city_cdc").get("/api/users").status_code == 403
    log_in(client, "new_reviewer", "Bright-Moon-58")
    assert client.get("/api/auth/me").json()["role"]["code"] == "county_cdc_reviewer"


def test_language_switch_by_query_and_cookie(client):
    r = client.get("/login?lang=en")
    assert "Log in" in r.text and client.cookies.get("yifang_lang") == "en"
    assert "User name" in client.get("/login").text
    assert "用户名" in client.get("/login?lang=zh").text
