"""Auth dependencies on a small app: cookie and bearer logins, permissions, scope, CSRF."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, profiles
from fastapi import Depends, FastAPI, Request, Response
from fastapi.testclient import TestClient

from yifang.core import accounts
from yifang.core.accounts import User
from yifang.core.auth import (
    CSRF_COOKIE,
    NOTHING,
    SESSION_COOKIE,
    CSRFMiddleware,
    current_scope,
    issue_session,
    require,
    scope_for,
)
from yifang.core.db import get_session

GOOD = "Tablet-Grass-42"


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    """Argon2 at its cheapest parameters: the tests check behaviour, not hashing cost."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


def build_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(CSRFMiddleware)

    @app.post("/api/auth/login")
    def login(username: str, request: Request, response: Response, session=Depends(get_session)):
        user = accounts.get_user(session, username)
        issue_session(session, request, response, user)
        return {"ok": True}

    @app.get("/scope")
    def scope(s=Depends(current_scope)):
        return {"region": s.region_prefix, "org": s.organisation_code, "identified": s.identified}

    @app.post("/review")
    def review(user: User = Depends(require("card.review"))):
        return {"by": user.username}

    @app.get("/csrf")
    def csrf(request: Request):
        return {"token": request.state.csrf_token}

    return app


@pytest.fixture()
def users(session):
    accounts.load_roles(session)
    made = {}
    for username, role, org, region in [
        ("hosp", "hospital_reporter", "ORG1", "640521"),
        ("county", "county_cdc_reviewer", None, "640521"),
        ("city", "city_cdc", None, "6405"),
        ("edu", "department_liaison", None, "6405"),
        ("orphan", "hospital_reporter", None, None),
    ]:
        made[username] = accounts.create_user(
            session,
            username=username,
            password=GOOD,
            role_code=role,
            organisation_code=org,
            region_code=region,
        )
    session.commit()
    return made


def test_scope_for_each_kind_of_role(users):
    assert scope_for(users["hosp"]).organisation_code == "ORG1"
    assert scope_for(users["hosp"]).region_prefix is None
    assert scope_for(users["county"]).region_prefix == "640521"
    city = scope_for(users["city"])
    assert city.region_prefix is None and city.organisation_code is None and city.identified
    assert scope_for(users["edu"]).identified is False
    assert scope_for(users["orphan"]) == NOTHING
    assert scope_for(users["county"]).actor == "county"


def csrf(client: TestClient) -> str:
    return client.get("/csrf").json()["token"]


def test_session_cookie_is_httponly_lax_and_gives_scope(engine, users):
    client = TestClient(build_app())
    assert client.get("/scope").status_code == 401
    token = csrf(client)
    r = client.post("/api/auth/login?username=county", headers={"X-CSRF-Token": token})
    assert r.status_code == 200
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Secure" not in cookie
    assert client.get("/scope").json()["region"] == "640521"


def test_secure_flag_on_https(engine, users):
    client = TestClient(build_app(), base_url="https://testserver")
    r = client.post("/api/auth/login?username=county", headers={"X-CSRF-Token": csrf(client)})
    cookies = r.headers.get_list("set-cookie")
    assert all("Secure" in c for c in cookies if c.startswith((SESSION_COOKIE, CSRF_COOKIE)))


def test_tampered_or_outdated_cookie_is_refused(engine, session, users):
    client = TestClient(build_app())
    client.post("/api/auth/login?username=county", headers={"X-CSRF-Token": csrf(client)})
    good = client.cookies.get(SESSION_COOKIE)
    client.cookies.set(SESSION_COOKIE, good[:-2] + ("AA" if good[-2:] != "AA" else "BB"))
    assert client.get("/scope").status_code == 401
    client.cookies.set(SESSION_COOKIE, good)
    assert client.get("/scope").status_code == 200
    user = accounts.get_user(session, "county")
    accounts.end_sessions(session, user, actor="county")
    session.commit()
    assert client.get("/scope").status_code == 401


def test_bearer_token_authenticates_without_csrf(engine, session, users):
    user = accounts.get_user(session, "county")
    _, secret = accounts.create_token(session, user, "lab system")
    session.commit()
    client = TestClient(build_app())
    r = client.post("/review", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 200 and r.json() == {"by": "county"}
    assert client.post("/review", headers={"Authorization": "Bearer yf_wrong"}).status_code == 401


def test_require_refuses_roles_without_the_permission(engine, users):
    client = TestClient(build_app())
    token = csrf(client)
    client.post("/api/auth/login?username=hosp", headers={"X-CSRF-Token": token})
    token = client.cookies.get(CSRF_COOKIE)  # rotated at login
    r = client.post("/review", headers={"X-CSRF-Token": token})
    assert r.status_code == 403 and "card.review" in r.json()["detail"]


def test_csrf_is_enforced_on_cookie_requests(engine, users):
    client = TestClient(build_app())
    client.post("/api/auth/login?username=county", headers={"X-CSRF-Token": csrf(client)})
    assert client.post("/review").status_code == 403
    assert client.post("/review", headers={"X-CSRF-Token": "forged"}).status_code == 403
    token = client.cookies.get(CSRF_COOKIE)
    assert client.post("/review", headers={"X-CSRF-Token": token}).status_code == 200
    # as a form field, for plain HTML forms
    r = client.post("/review", data={"csrf_token": token, "x": "1"})
    assert r.status_code == 200


def test_login_itself_needs_the_token(engine, users):
    client = TestClient(build_app())
    assert client.post("/api/auth/login?username=county").status_code == 403
