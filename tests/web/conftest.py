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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failed browser test, add what the browser saw go wrong (console errors, API
    refusals) and where each open page stood, with a screenshot, to the report."""
    report = yield
    if item.get_closest_marker("browser") is None or report.when == "setup":
        return report
    from tests.web import test_browser

    if report.when == "call" and report.failed:
        lines = list(test_browser.BROWSER_LOG) or ["(nothing)"]
        for n, page in enumerate(test_browser.OPEN_PAGES):
            try:
                shot = test_browser.SHOTS / f"failed-{item.name}-{n}.png"
                test_browser.SHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shot), full_page=True)
                lines.append(f"page {n} at {page.url}; screenshot {shot}")
            except Exception as err:  # the page may already be closed
                lines.append(f"page {n}: {err}")
        report.sections.append(("browser log", "\n".join(lines)))
    if report.when == "teardown" or (report.when == "call" and report.failed):
        test_browser.BROWSER_LOG.clear()
        test_browser.OPEN_PAGES.clear()
    return report
