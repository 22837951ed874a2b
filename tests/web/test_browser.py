"""End to end in a real Chromium (Debian's, never a downloaded one): a hospital reporter
enters a card, the county CDC reviewer reviews it; screenshots go to artifacts/screenshots/.

The app runs under uvicorn on 127.0.0.1 at a free port, in a thread, on the test's fresh
database.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("YIFANG_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(__file__).parents[2] / "artifacts" / "screenshots"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def server(engine, demo) -> Iterator[str]:
    """The whole app under uvicorn on a free loopback port; yields its base URL."""
    import uvicorn

    from yifang.web.app import create_app

    port = _free_port()
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture()
def browser():
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


# What the browser saw go wrong during the current test: console errors, uncaught
# exceptions and API answers of 400 or more. Printed by ``pytest_runtest_makereport`` in
# tests/web/conftest.py when a browser test fails, with a screenshot of each open page.
BROWSER_LOG: list[str] = []
OPEN_PAGES: list = []


def _watch(page, username: str) -> None:
    """Record ``page``'s errors in BROWSER_LOG, tagged with who is logged in."""
    OPEN_PAGES.append(page)

    def console(msg) -> None:
        if msg.type in ("error", "warning"):
            BROWSER_LOG.append(f"{username} console {msg.type}: {msg.text}")

    def response(r) -> None:
        if r.status >= 400:
            BROWSER_LOG.append(f"{username} {r.request.method} {r.url} -> {r.status}")

    page.on("console", console)
    page.on("pageerror", lambda err: BROWSER_LOG.append(f"{username} page error: {err}"))
    page.on("response", response)


def log_in(browser, base: str, username: str, password: str, lang: str = "zh"):
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    _watch(page, username)
    page.goto(f"{base}/login?lang={lang}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    return page


def fill_card(page) -> None:
    """Fill the card form as a reporter would, field by field."""
    page.fill("input[name=patient_name]", "王小明")
    page.select_option("select[name=sex]", "1")
    page.select_option("select[name=id_type]", "1")
    page.fill("input[name=id_number]", "00000000000000000X")
    page.fill("input[name=age_value]", "35")
    page.select_option("select[name=age_unit]", "01")
    page.select_option("select[name=occupation]", "18")
    page.fill("input[name=phone]", "13912345678")
    page.select_option("select[name=residence_category]", "1")
    town = page.eval_on_selector(
        "select[name=address_code]",
        "s => Array.from(s.options).map(o => o.value).find(v => v.startsWith('640521'))",
    )
    page.select_option("select[name=address_code]", town)
    page.fill("input[name=address_detail]", "某村 3 组 12 号")
    page.select_option("select[name=disease_code]", "HFMD")
    page.select_option("select[name=classification]", "2")
    today = page.eval_on_selector("input[name=fill_date]", "e => e.value")
    from datetime import date

    onset = (date.fromisoformat(today) - timedelta(days=3)).isoformat()
    diagnosed = (date.fromisoformat(today) - timedelta(days=1)).isoformat()
    page.fill("input[name=onset_date]", onset)
    page.fill("input[name=diagnosis_time]", f"{diagnosed}T08:00")


def test_reporter_enters_a_card_and_the_county_reviews_it(server, browser, demo):
    page = log_in(browser, server, "zn_hospital", demo["zn_hospital"])
    assert "/login" not in page.url
    shot(page, "01-dashboard-hospital")

    page.goto(f"{server}/cards/new")
    # a wrong ID number is flagged as it is typed
    page.fill("input[name=id_number]", "640521199001011230")
    page.fill("input[name=patient_name]", "王")
    page.wait_for_selector('[data-error-for="patient_name"]:not(:empty)', timeout=10_000)
    shot(page, "02-card-form-errors")
    fill_card(page)
    try:
        page.wait_for_function(
            "document.querySelector('[data-check-state]').textContent.includes('校验通过')",
            timeout=10_000,
        )
    except Exception:
        shot(page, "03-card-form-still-invalid")
        errors = page.eval_on_selector_all(
            "[data-error-for]", "els => els.map(e => e.dataset.errorFor + ': ' + e.textContent)"
        )
        raise AssertionError([e for e in errors if not e.endswith(": ")]) from None
    shot(page, "03-card-form-valid")
    page.click("form#card-form button[type=submit]")
    page.wait_for_selector("[data-summary].ok", timeout=10_000)
    number = page.inner_text("[data-summary] a")
    shot(page, "04-card-submitted")

    page.goto(f"{server}/cards/mine")
    page.wait_for_selector(f"text={number}")
    shot(page, "05-my-cards")
    page.context.close()

    reviewer = log_in(browser, server, "zn_cdc_review", demo["zn_cdc_review"])
    reviewer.goto(f"{server}/review")
    row = reviewer.wait_for_selector(f"tr:has-text('{number}')")
    assert "剩余" in row.inner_text()  # the due time counts down
    shot(reviewer, "06-review-queue")
    reviewer.on("dialog", lambda d: d.accept())
    row.query_selector("[data-accept]").click()
    reviewer.wait_for_selector(f"tr:has-text('{number}')", state="detached", timeout=10_000)
    reviewer.goto(f"{server}/cards")
    reviewer.wait_for_selector(f"tr:has-text('{number}') .badge.reviewed")
    shot(reviewer, "07-card-list")
    with reviewer.expect_download() as download:
        reviewer.click("[data-export=csv]")
    exported = Path(download.value.path()).read_bytes().decode("utf-8-sig")
    assert number in exported and "王小明" not in exported  # masked by default
    reviewer.click(f"a:text('{number}')")
    reviewer.wait_for_selector("[data-history] li strong")
    shot(reviewer, "08-card-detail")
    reviewer.context.close()

    # another county's reviewer does not see it
    other = log_in(browser, server, "sps_cdc_review", demo["sps_cdc_review"])
    other.goto(f"{server}/cards")
    other.wait_for_selector("[data-cards] tbody tr")
    assert number not in other.inner_text("[data-cards] tbody")
    other.context.close()


def test_login_page_in_english_on_a_tablet(server, browser):
    context = browser.new_context(viewport={"width": 820, "height": 1180})
    page = context.new_page()
    page.goto(f"{server}/login?lang=en")
    assert page.inner_text("button[type=submit]") == "Log in"
    shot(page, "00-login-tablet-en")
    context.close()


def test_dashboard_and_administration_pages(server, browser, demo, session):
    from tests.web.seed import seed_cards
    from yifang.web.dashboard_api import local_today, same_week_back

    today = local_today()
    rates = {"HFMD": 1.6, "FLU": 2.5, "MUMPS": 0.4, "BRUC": 0.3, "OID": 1.0, "VARICELLA": 0.6}
    seed_cards(session, rates, today - timedelta(weeks=26), today, seed=3)
    for years in (1, 2, 3):
        end = same_week_back(today, years)
        half = {k: v / 2 for k, v in rates.items()}
        seed_cards(session, half, end - timedelta(days=6), end, seed=20 + years)
    seed_cards(
        session, {"HFMD": 1.0}, today - timedelta(days=2), today, seed=40, status="submitted"
    )

    page = log_in(browser, server, "city_cdc", demo["city_cdc"])
    page.wait_for_selector("#chart-curve canvas")
    page.wait_for_function("document.querySelector('[data-kpi=this_week]').textContent !== '–'")
    assert int(page.inner_text("[data-kpi=this_week]")) > 0
    shot(page, "10-dashboard-city")
    page.goto(f"{server}/review")
    page.wait_for_selector("tr.overdue")
    shot(page, "11-review-overdue")
    page.context.close()

    # an outbreak of HFMD in 中宁县 this week, then detection
    outbreak = {"HFMD": 6.0}
    seed_cards(session, outbreak, today - timedelta(days=4), today, seed=50)
    from yifang.detect.engine import run_detection

    run_detection(session, as_of=today, days=7)
    session.commit()
    page = log_in(browser, server, "zn_cdc_epi", demo["zn_cdc_epi"])
    page.goto(f"{server}/signals?status=")
    page.wait_for_selector("[data-signals] tr td")
    shot(page, "14-signals")
    link = page.query_selector("[data-signals] a")
    if link is not None:
        link.click()
        page.wait_for_selector("#signal-chart canvas")
        shot(page, "15-signal-detail")
    page.context.close()

    page = log_in(browser, server, "commission", demo["commission"], lang="en")
    page.wait_for_selector("#chart-curve canvas")
    shot(page, "12-dashboard-commission-en")
    page.context.close()

    page = log_in(browser, server, "admin", demo["admin"])
    page.goto(f"{server}/admin/users")
    page.wait_for_selector("text=zn_cdc_review")
    shot(page, "13-admin-users")
    page.context.close()


def test_a_returned_card_is_fixed_and_resubmitted(server, browser, demo, session):
    from sqlalchemy import select

    from yifang.cases import service
    from yifang.cases.models import Card
    from yifang.core.jurisdiction import Scope

    page = log_in(browser, server, "zn_hospital", demo["zn_hospital"])
    page.goto(f"{server}/cards/new")
    fill_card(page)
    page.wait_for_function(
        "document.querySelector('[data-check-state]').textContent.includes('校验通过')"
    )
    page.click("form#card-form button[type=submit]")
    page.wait_for_selector("[data-summary].ok")
    number = page.inner_text("[data-summary] a")
    card = session.scalars(select(Card).where(Card.card_number == number)).one()
    service.return_card(
        session,
        card.id,
        version=card.version,
        scope=Scope.everything("zn_cdc_review"),
        reason="发病日期与诊断不符，请核实",
    )
    session.commit()

    page.goto(f"{server}/cards/mine")
    row = page.wait_for_selector(f"[data-cards=returned] tr:has-text('{number}')")
    assert "发病日期与诊断不符" in row.inner_text()
    shot(page, "16-returned-card")
    row.query_selector("a.button").click()
    page.wait_for_selector("[data-returned-reason]:not(.hidden)")
    page.fill("input[name=remarks]", "已核实发病日期")
    page.wait_for_function(
        "document.querySelector('[data-check-state]').textContent.includes('校验通过')"
    )
    shot(page, "17-fix-returned-card")
    page.click("form#card-form button[type=submit]")
    page.wait_for_url(f"**/cards/{card.id}")
    page.wait_for_selector(".badge.submitted")
    page.context.close()


def test_every_role_gets_its_home_page_and_no_other_countys_card(server, browser, demo, session):
    from sqlalchemy import select

    from tests.web.seed import SPS_HOSPITAL, SPS_TOWN, card_values, seed_cards
    from yifang.cases import service
    from yifang.catalog.models import Region
    from yifang.core.jurisdiction import Scope
    from yifang.web.dashboard_api import local_today

    today = local_today()
    towns: dict[str, list[str]] = {}
    for code in session.scalars(
        select(Region.code).where(Region.level == 4, Region.code.like("6405%"))
    ):
        towns.setdefault(code[:6], []).append(code)
    seed_cards(session, {"HFMD": 4.0, "FLU": 3.0}, today - timedelta(days=27), today, towns=towns)
    sps_card = service.create_card(
        session, card_values("沙丙丁", SPS_TOWN, SPS_HOSPITAL), scope=Scope.everything("seed")
    )
    session.commit()

    for username in demo:
        page = log_in(browser, server, username, demo[username])
        assert "/login" not in page.url, username
        page.wait_for_selector("header.topbar .who-name")
        assert page.locator(".alert.error").count() == 0, username
        if page.url.rstrip("/") == server:  # the dashboard: its figures arrive
            page.wait_for_function(
                "document.querySelector('[data-kpi=this_week]').textContent !== '–'"
            )
            if page.locator("#chart-map").count():
                page.wait_for_selector("#chart-map canvas")
                page.wait_for_timeout(300)
        shot(page, f"20-home-{username}")
        page.context.close()

    # a county reviewer asks for another county's card by its address: nothing of it shows
    page = log_in(browser, server, "zn_cdc_review", demo["zn_cdc_review"])
    page.goto(f"{server}/cards/{sps_card.id}")
    page.wait_for_selector(".alert.error")
    body = page.inner_text("main")
    assert sps_card.card_number not in body and "沙丙丁" not in body
    shot(page, "21-other-countys-card-refused")
    api = page.request.get(f"{server}/api/cards/{sps_card.id}")
    assert api.status == 404 and sps_card.card_number not in api.text()
    page.context.close()
