"""The catalog's administration pages in a real Chromium: the system administrator changes
hand, foot and mouth disease's reporting limit (first with a value the rules refuse, shown
under the field) and adds a clinic to the registry. Screenshots go to
artifacts/screenshots/ (``admin-*.png``).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.web.test_browser import browser, log_in, server, shot  # noqa: F401
from yifang.catalog.models import Disease, Organisation
from yifang.core.audit import AuditEntry

pytestmark = pytest.mark.browser


def _wait_rows(page, selector: str) -> None:
    page.wait_for_selector(f"{selector} tr[data-code]", timeout=10_000)


def test_admin_edits_a_disease_and_adds_an_organisation(server, browser, demo, session):  # noqa: F811
    page = log_in(browser, server, "admin", demo["admin"])
    page.click("nav.mainnav >> text=病种设置")
    _wait_rows(page, "[data-diseases]")
    assert page.locator("[data-diseases] tr[data-code]").count() == 87
    page.select_option("#disease-filters select[name=class]", "B")
    page.wait_for_function("document.querySelector('[data-count]').textContent.includes('/')")
    classes = page.eval_on_selector_all(
        "[data-diseases] tr[data-code] td:nth-child(3)", "cells => cells.map(c => c.innerText)"
    )
    assert classes and all(c.startswith("乙类") for c in classes)
    page.select_option("#disease-filters select[name=class]", "")
    page.fill("#disease-filters input[name=q]", "手足口")
    page.wait_for_selector("[data-diseases] tr[data-code=HFMD]")
    assert page.locator("[data-diseases] tr[data-code]").count() == 1
    shot(page, "admin-01-diseases-filtered")

    page.click("[data-diseases] tr[data-code=HFMD] [data-edit]")
    page.wait_for_selector("#disease-dialog[open]")
    assert page.input_value("input[name=report_limit_hours]") == "24"
    page.fill("input[name=report_limit_hours]", "0")
    page.click("#disease-form button[type=submit]")
    error = page.wait_for_selector('[data-error-for="report_limit_hours"]:not(:empty)')
    assert "不能小于 1" in error.inner_text()
    shot(page, "admin-02-disease-refused")

    page.fill("input[name=report_limit_hours]", "12")
    page.fill("#disease-form textarea[name=reason]", "市级试点：手足口病 12 小时内报告")
    page.click("#disease-form button[type=submit]")
    page.wait_for_selector("#disease-dialog", state="hidden")
    page.wait_for_selector("[data-diseases] tr[data-code=HFMD] .badge.edited")
    cells = page.inner_text("[data-diseases] tr[data-code=HFMD]")
    assert "12" in cells
    page.click("[data-diseases] tr[data-code=HFMD] [data-edit]")
    page.click("#disease-dialog details.history summary")
    page.wait_for_selector("[data-history] .change")
    assert "24" in page.inner_text("[data-history]") and "12" in page.inner_text("[data-history]")
    shot(page, "admin-03-disease-history")
    page.click("#disease-form [data-close]")

    session.expire_all()
    assert session.get(Disease, "HFMD").report_limit_hours == 12
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "disease.update")).one()
    assert (entry.actor, entry.after) == ("admin", {"report_limit_hours": 12})

    page.click("nav.mainnav >> text=机构管理")
    _wait_rows(page, "[data-orgs]")
    page.click("[data-new-org]")
    page.wait_for_selector("#org-dialog[open]")
    page.select_option("#org-form select[name=kind]", "clinic")
    page.select_option("#org-form select[name=region_code]", "640521100")  # 宁安镇
    assert page.input_value("#org-form input[name=code]") == "640521100CL01"  # suggested
    page.fill("#org-form input[name=name]", "宁安镇康宁诊所")
    page.select_option("#org-form select[name=parent_code]", "640521CD01")
    page.fill("#org-form input[name=phone]", "0955-1234567")
    shot(page, "admin-04-new-organisation")
    page.click("#org-form button[type=submit]")
    page.wait_for_selector("#org-dialog", state="hidden")
    page.select_option("#org-filters select[name=kind]", "clinic")
    page.wait_for_function(
        "Array.from(document.querySelectorAll('[data-orgs] tr[data-code] td:nth-child(3)'))"
        ".every(td => td.textContent === '诊所')"
    )
    page.wait_for_selector("[data-orgs] tr[data-code='640521100CL01']")
    assert page.locator("[data-orgs] tr[data-code]").count() == 5  # 4 clinics + the new one
    shot(page, "admin-05-organisation-added")

    session.expire_all()
    clinic = session.get(Organisation, "640521100CL01")
    assert (clinic.name, clinic.region_code, clinic.edited_by) == (
        "宁安镇康宁诊所",
        "640521100",
        "admin",
    )
    page.goto(f"{server}/admin/organisations?lang=en")
    _wait_rows(page, "[data-orgs]")
    shot(page, "admin-06-organisations-en")
    page.set_viewport_size({"width": 820, "height": 1180})  # a tablet
    page.goto(f"{server}/admin/diseases?lang=en")
    page.select_option("#disease-filters select[name=class]", "A")
    page.wait_for_selector("[data-diseases] tr[data-code=PLAGUE]")
    shot(page, "admin-07-diseases-class-a-tablet-en")
    page.context.close()
