"""From a simulated outbreak to a closed event, in a real Chromium.

A varicella outbreak in a primary school of 宁安镇 (中宁县) is drawn with the simulator's
point-source model over a quiet year of sporadic cases; detection raises a signal and the
response job assigns its verification to the county CDC. Then, in the browser: the county
epidemiologist verifies the signal as a suspected event, investigates, links the cards,
records a sample, confirms, grades, starts the response, creates the plan's tasks and warns
the education bureau; the education liaison acknowledges the warning, completes the
school's task and attaches the notice of closure; the city CDC completes the remaining
tasks, closes the event and downloads the final report as PDF. Each step's time is printed
(``-s``) and written beside the screenshots in artifacts/screenshots/.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import insert, select

from tests.web.test_browser import SHOTS, browser, log_in, server, shot  # noqa: F401
from yifang.cases.models import Card

pytestmark = pytest.mark.browser

TOWN = "640521100"  # 宁安镇, 中宁县
OTHER_TOWNS = ("640521101", "640521102", "640502100")
SCHOOL = "宁安镇第一小学"
HOSPITAL = "640521HP01"


class Clock:
    """Times named steps and keeps them for the summary."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, float]] = []
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.steps.append((name, now - self._t))
        print(f"  {name:<58} {now - self._t:6.2f} s", flush=True)
        self._t = now

    def report(self) -> str:
        total = sum(s for _, s in self.steps)
        lines = [f"{name:<58} {s:6.2f} s" for name, s in self.steps]
        return "\n".join([*lines, f"{'total':<58} {total:6.2f} s"])


def _card(n: int, town: str, onset: date, unit: str | None, seed: str) -> dict:
    diagnosed = datetime.combine(onset + timedelta(days=1), datetime.min.time()) + timedelta(
        hours=10
    )
    return {
        "card_number": f"V{seed}{n:07d}",
        "status": "reviewed",
        "patient_name": f"学生{n}" if unit else f"居民{n}",
        "id_number": f"6405212016{n:08d}",
        "sex": "12"[n % 2],
        "age_value": 8 if unit else 30,
        "age_unit": "01",
        "residence_category": "1",
        "address_code": town,
        "occupation": "05" if unit else "18",
        "classification": "2",
        "onset_date": onset,
        "diagnosis_time": diagnosed,
        "disease_code": "VARICELLA",
        "org_code": HOSPITAL if town.startswith("640521") else "640502HP01",
        "doctor_name": "李医生",
        "fill_date": diagnosed.date(),
        "work_unit": unit,
        "submitted_at": diagnosed,
        "review_due_at": diagnosed + timedelta(hours=24),
    }


def simulate_outbreak(session, today: date) -> int:
    """A quiet year of sporadic varicella plus a school outbreak in the last ten days;
    returns the outbreak's size. Onsets of the outbreak follow the simulator's point-source
    model (log-normal incubation, median 3 days, from an exposure 10 days ago)."""
    from yifang.simulate.epidemics import point_source_outbreak

    rng = np.random.default_rng(20260601)
    rows = []
    n = 0
    day = today - timedelta(days=400)
    while day < today - timedelta(days=2):
        for town in (TOWN, *OTHER_TOWNS):
            if rng.random() < 0.08:  # about one case a fortnight per township
                n += 1
                rows.append(_card(n, town, day, None, "B"))
        day += timedelta(days=1)
    exposure = today - timedelta(days=10)
    curve = point_source_outbreak(rng, size=16, incubation_median_days=3.0)
    size = 0
    for offset, count in enumerate(curve.onsets):
        onset = exposure + timedelta(days=int(offset))
        if onset >= today:  # not yet diagnosed
            break
        for _ in range(int(count)):
            n += 1
            size += 1
            rows.append(_card(n, TOWN, onset, SCHOOL, "O"))
    session.execute(insert(Card), rows)
    session.commit()
    return size


def test_simulated_outbreak_from_signal_to_closed_event(
    server,  # noqa: F811
    browser,  # noqa: F811
    demo,
    session,
    tmp_path,
    monkeypatch,
):
    from yifang.core.settings import get_settings
    from yifang.detect.engine import run_detection

    monkeypatch.setattr(get_settings(), "data_dir", tmp_path)  # where attachments go
    from yifang.respond import service
    from yifang.web.dashboard_api import local_today

    clock = Clock()
    print()
    today = local_today()
    size = simulate_outbreak(session, today)
    clock.lap(f"simulate: {size} outbreak cases over a year of sporadic ones")
    report = run_detection(session, as_of=today, days=3)
    session.commit()
    clock.lap(f"detection: {report.alarms} alarm(s)")
    opened = service.open_verifications(session)
    session.commit()
    ours = [
        v for v in opened if v.disease_code == "VARICELLA" and v.region_code.startswith("640521")
    ]
    assert ours, [(v.disease_code, v.region_code) for v in opened]
    clock.lap(f"verifications opened: {len(opened)} ({len(ours)} for the outbreak)")

    # --- the county epidemiologist verifies the signal as a suspected event
    page = log_in(browser, server, "zn_cdc_epi", demo["zn_cdc_epi"])
    page.goto(f"{server}/verify")
    row = page.wait_for_selector("[data-verifications] tr[data-id]")
    assert "剩余" in row.inner_text() or "超时" in row.inner_text()  # the deadline counts
    shot(page, "30-verify-queue")
    page.click(f"[data-verifications] tr[data-id='{ours[0].id}'] [data-verify]")
    page.wait_for_selector("#outcome-form:not(.hidden)")
    page.wait_for_function("document.querySelector('[data-explanation]').textContent.length > 5")
    page.check("#outcome-form input[name=checks][value=cards]")
    page.check("#outcome-form input[name=checks][value=phone_hospital]")
    page.check("#outcome-form input[name=checks][value=clustering]")
    page.fill("#outcome-form textarea[name=findings]", f"病例集中在{SCHOOL}三年级，发病时间集中")
    page.check("#outcome-form input[name=outcome][value=suspected]")
    page.fill("#outcome-form input[name=event_title]", f"{SCHOOL}水痘聚集性疫情")
    page.select_option("#outcome-form select[name=event_type]", "school_cluster")
    page.fill("#outcome-form input[name=event_tags]", "school")
    shot(page, "31-verify-form")
    page.click("#outcome-form button[type=submit]")
    page.click("[data-done] [data-event-link]")
    page.wait_for_url("**/events/*")
    page.wait_for_selector("form[data-action=investigate]:not(.hidden)")
    event_url = page.url
    clock.lap("county CDC: signal verified as a suspected event")

    # --- investigation: team, linked cards, a sample; then confirmation
    page.fill("form[data-action=investigate] input[name=team]", "赵流调, 钱检验, 孙消杀")
    page.click("form[data-action=investigate] button[type=submit]")
    page.wait_for_selector("form[data-action=confirm]:not(.hidden)")
    page.wait_for_selector("#event[data-loaded^='investigating:']")  # the reload is over
    page.click("[data-link-wrap] summary")
    page.wait_for_selector("[data-candidates] input[name=card]")
    for row in page.query_selector_all(f"[data-candidates] tr:has-text('{SCHOOL}')"):
        row.query_selector("input[name=card]").check()  # the school's cards, not sporadic ones
    page.fill("#link-cards input[name=unit]", SCHOOL)
    page.click("#link-cards button[type=submit]")
    page.wait_for_function(
        f"document.querySelectorAll('[data-cases] tr').length >= {size}", timeout=20_000
    )
    assert page.locator("[data-cases] tr").count() == size
    page.click("text=登记标本")
    page.fill("#add-sample input[name=sample_type]", "疱疹液")
    page.fill("#add-sample input[name=laboratory]", "中卫市疾控中心实验室")
    page.select_option("#add-sample select[name=result]", "positive")
    page.fill("#add-sample input[name=pathogen]", "水痘-带状疱疹病毒")
    page.click("#add-sample button[type=submit]")
    page.wait_for_selector("[data-samples] >> text=疱疹液")
    page.wait_for_selector("#event-curve canvas")
    shot(page, "32-event-investigating")
    clock.lap(f"county CDC: investigation started, {size} cards linked, sample")
    page.fill("form[data-action=confirm] textarea[name=findings]", "水痘聚集性疫情，实验室确认")
    page.click("form[data-action=confirm] button[type=submit]")
    page.wait_for_selector("#grade-form:not(.hidden)")
    page.wait_for_selector("#event[data-loaded^='confirmed:']")  # the suggestion is current
    clock.lap("county CDC: event confirmed")

    # --- grading (suggestion accepted), response, the plan's tasks, a warning
    page.wait_for_selector("[data-suggestion] strong")
    suggestion = page.inner_text("[data-suggestion]")
    page.click("#grade-form button[type=submit]")
    page.wait_for_selector("[data-grades] tr td .badge")
    shot(page, "33-event-graded")
    clock.lap(f"county CDC: graded ({suggestion.splitlines()[0][:40]})")
    page.click("form[data-action=respond] button[type=submit]")
    page.wait_for_selector("form[data-action=close]:not(.hidden)")
    page.wait_for_selector("[data-templates] input")
    page.click("form[data-action=plan] button[type=submit]")
    page.wait_for_function("document.querySelectorAll('[data-tasks] tr .badge').length >= 3")
    n_tasks = page.locator("[data-tasks] tr .badge").count()
    page.click("text=向部门发送预警通报")
    page.check("#send-warning input[name=to][value=education]")
    page.fill("#send-warning textarea[name=advice]", "落实晨午检和因病缺勤追踪，必要时停课")
    page.click("#send-warning button[type=submit]")
    page.wait_for_selector("[data-warnings] .warning-card")
    shot(page, "34-event-responding")
    clock.lap(f"county CDC: response started, {n_tasks} tasks from the plan, warning sent")
    page.context.close()

    # --- the education liaison: acknowledge, accept and complete the school's task
    edu = log_in(browser, server, "edu_liaison", demo["edu_liaison"])
    edu.goto(f"{server}/tasks")
    edu.wait_for_selector("[data-ack]")
    body = edu.inner_text("main")
    assert "学生" not in body and "6405212016" not in body  # de-identified
    shot(edu, "35-liaison-board")
    edu.click("[data-ack]")
    edu.wait_for_selector(".warning-card.acknowledged")
    task = edu.wait_for_selector("[data-lane=education] ~ .cell .task-card [data-step=accept]")
    task.click()
    edu.wait_for_selector(".cell[data-status=accepted] .task-card [data-step=complete]").click()
    edu.fill(".task-card [data-step-form] textarea", "已对三年级两个班停课一周，落实晨午检")
    edu.click(".task-card [data-step-form] button[type=submit]")
    edu.wait_for_selector(".cell[data-owner=education][data-status=done] .task-card")
    assert edu.locator("[data-lane]").count() == 1  # only its own department's lane
    shot(edu, "36-liaison-task-done")
    clock.lap("education liaison: warning acknowledged, task completed")
    done = ".cell[data-owner=education][data-status=done] .task-card"
    edu.click(f"{done} [data-more]")
    for name in ("错发的文件.txt", "停课通知.txt"):
        edu.set_input_files(
            f"{done} [data-attach-form] input[type=file]",
            {"name": name, "mimeType": "text/plain", "buffer": "三年级停课一周".encode()},
        )
        edu.click(f"{done} [data-attach-form] button[type=submit]")
        edu.wait_for_selector(f"{done} [data-files-list] a:has-text('{name}')")
    # the wrong file is withdrawn (after a confirmation) and leaves the list and the count
    edu.once("dialog", lambda dialog: dialog.accept())
    edu.click(f"{done} [data-files-list] li:has-text('错发的文件.txt') [data-withdraw]")
    edu.wait_for_selector(
        f"{done} [data-files-list] a:has-text('错发的文件.txt')", state="detached"
    )
    edu.wait_for_function(f"document.querySelector('{done} .meta').textContent.includes('附件 1')")
    shot(edu, "36b-liaison-attachment")
    clock.lap("education liaison: a file attached to the task and listed")
    edu.context.close()

    # --- the city CDC completes the remaining tasks, closes the event, downloads the PDF
    city = log_in(browser, server, "city_cdc", demo["city_cdc"])
    event_id = event_url.rstrip("/").rsplit("/", 1)[1]
    city.goto(f"{server}/tasks?event_id={event_id}")
    city.wait_for_selector(".task-card")
    for _ in range(20):
        open_task = city.query_selector(".cell[data-status=open] .task-card [data-step=accept]")
        if open_task is None:
            break
        open_task.click()
        city.wait_for_selector(
            ".cell[data-status=accepted] .task-card [data-step=complete]"
        ).click()
        city.fill(".task-card [data-step-form] textarea", "已落实")
        city.click(".task-card [data-step-form] button[type=submit]")
        city.wait_for_function("!document.querySelector('.cell[data-status=accepted] .task-card')")
    assert city.locator(".cell[data-status=open] .task-card").count() == 0
    shot(city, "37-city-board-done")
    clock.lap("city CDC: remaining tasks completed")
    city.goto(event_url)
    city.wait_for_selector("form[data-action=close]:not(.hidden)")
    city.fill(
        "form[data-action=close] textarea[name=conclusion]",
        "疫情平息，末例病例后两个最长潜伏期无新发病例，结案",
    )
    city.click("form[data-action=close] button[type=submit]")
    city.wait_for_selector("[data-when=closed]:not(.hidden)")
    city.wait_for_selector("[data-timeline] li")
    shot(city, "38-event-closed")
    with city.expect_download() as download:
        city.click("[data-report=pdf]")
    pdf = Path(download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF-") and len(pdf) > 5_000
    (SHOTS / "39-final-report.pdf").write_bytes(pdf)
    clock.lap(f"city CDC: event closed, final report downloaded ({len(pdf):,} bytes PDF)")

    # --- the weekly consultation: agenda from signals and events, one item on the matrix;
    # a close contact of the first case with a day of follow-up
    city.goto(f"{server}/consultations")
    city.click("text=发起会商")
    city.fill("#new-consultation input[name=title]", "第 47 周传染病疫情风险研判")
    city.fill("#new-consultation input[name=participants]", "市疾控, 中宁县疾控, 教育局")
    city.click("#new-consultation button[type=submit]")
    item = city.wait_for_selector("[data-items] tr[data-item]")
    item.query_selector("[data-assess=likelihood]").select_option("4")
    item.query_selector("[data-assess=impact]").select_option("3")
    item.query_selector("[data-save-assess]").click()
    city.wait_for_selector("[data-matrix] .dot")
    shot(city, "40-consultation")
    card_id = int(session.scalar(select(Card.id).where(Card.work_unit == SCHOOL).order_by(Card.id)))
    city.goto(f"{server}/contacts")
    city.click("text=登记密切接触者")
    city.fill("#add-contact input[name=case_card_id]", str(card_id))
    city.fill("#add-contact input[name=name]", "同桌甲")
    city.fill("#add-contact input[name=relation]", "同班同学")
    city.fill("#add-contact input[name=last_exposure]", (today - timedelta(days=2)).isoformat())
    city.click("#add-contact button[type=submit]")
    city.wait_for_selector("#follow-up:not(.hidden)")
    city.fill("#follow-up input[name=temperature]", "36.8")
    city.click("#follow-up button[type=submit]")
    city.wait_for_selector("[data-follow-ups] >> text=36.8")
    shot(city, "41-contacts")
    clock.lap("city CDC: consultation with a risk matrix, a contact followed up")
    city.context.close()

    summary = clock.report()
    (SHOTS / "outbreak-timings.txt").write_text(summary + "\n", encoding="utf-8")
    print(summary)
