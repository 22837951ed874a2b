"""The response plans page in a real Chromium: the city CDC adds a template of its own
(first without an action, refused under the field), then deactivates a template of the
data file and puts it back as the file has it. Screenshots go to artifacts/screenshots/
(``plans-*.png``).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.web.test_browser import browser, log_in, server, shot  # noqa: F401
from yifang.respond.models import PlanTemplate

pytestmark = pytest.mark.browser


def test_city_cdc_adds_a_template_and_resets_one(server, browser, demo, session):  # noqa: F811
    page = log_in(browser, server, "city_cdc", demo["city_cdc"])
    page.goto(f"{server}/plans")
    page.wait_for_selector("[data-plan=school_cluster]")
    page.click("[data-new]")
    new = '[data-plan=""]'
    page.fill(f"{new} input[name=code]", "campus_norovirus")
    page.fill(f"{new} input[name=name_zh]", "高校诺如病毒聚集")
    page.check(f"{new} input[name=levels][value=IV]")
    page.click(f"{new} [data-remove]")  # no action left: refused under the field
    page.click(f"{new} button[type=submit]")
    page.wait_for_function(
        f"document.querySelector('{new} [data-field-error=tasks]').textContent.length > 0"
    )
    page.click(f"{new} [data-add]")
    page.select_option(f"{new} [data-action-row] select[name=owner]", "education")
    page.fill(f"{new} [data-action-row] input[name=zh]", "停课并全面消毒")
    page.fill(f"{new} [data-action-row] input[name=deadline_hours]", "24")
    shot(page, "plans-new")
    page.click(f"{new} button[type=submit]")
    page.wait_for_selector("[data-plan=campus_norovirus] >> text=停课并全面消毒")
    session.expire_all()
    made = session.get(PlanTemplate, "campus_norovirus")
    assert made is not None and made.levels == ["IV"] and made.edited_by == "city_cdc"

    # deactivate a template of the file, then put it back as the file has it
    school = "[data-plan=school_cluster]"
    page.click(f"{school} [data-edit]")
    page.uncheck(f"{school} input[name=active]")
    page.click(f"{school} button[type=submit]")
    page.wait_for_selector(f"{school}.inactive [data-reset]")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"{school} [data-reset]")
    page.wait_for_selector(f"{school}:not(.inactive) >> text=来自数据文件")
    shot(page, "plans-reset")
    session.expire_all()
    row = session.scalars(select(PlanTemplate).where(PlanTemplate.code == "school_cluster")).one()
    assert row.active and row.edited_by is None
    page.context.close()
