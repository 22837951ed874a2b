"""Fixtures of the web tests: demo accounts and logged-in clients."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, profiles
from fastapi.testclient import TestClient

from yifang.core import accounts
from yifang.core.auth import CSRF_COOKIE


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    """Argon2 at its cheapest parameters: the tests check behaviour, not hashing cost."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture(autouse=True)
def fresh_caches():
    """Each test starts with empty page caches (they are keyed by database anyway)."""
    from yifang.web import cache

    cache.clear_all()
    yield
    cache.clear_all()


@pytest.fixture()
def demo(session) -> dict[str, str]:
    """Every demo account: username → password."""
    rows = accounts.create_demo_users(session)
    session.commit()
    return {username: password for username, password, _ in rows}


def csrf_of(client: TestClient) -> str:
    """The client's CSRF token (fetching one first if it has none)."""
    token = client.cookies.get(CSRF_COOKIE)
    if not token:
        token = client.get("/api/auth/csrf").json()["csrf_token"]
    return token


def log_in(client: TestClient, username: str, password: str) -> TestClient:
    """Log ``client`` in through the JSON route and send the CSRF header from then on."""
    r = client.post(
        "/api/auth/login",
        json={"username": username, "password": password},
        headers={"X-CSRF-Token": csrf_of(client)},
    )
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


@pytest.fixture()
def login(engine, demo):
    """A factory: ``login("zn_cdc_review")`` gives a new client logged in as that demo user."""
    from yifang.web.app import create_app

    app = create_app()
    clients: list[TestClient] = []

    def make(username: str) -> TestClient:
        client = TestClient(app)
        clients.append(client)
        return log_in(client, username, demo[username])

    yield make
    for c in clients:
        c.close()
