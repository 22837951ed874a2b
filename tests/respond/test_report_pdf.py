"""The final report as PDF: same content as the Word report, Chinese text readable back,
the epidemic curve and the timeline drawn, no personal data; the download route."""

from __future__ import annotations

import io
from datetime import date, timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader

from tests.respond.conftest import CITY, NOW, SPS, ZN, make_card, make_signal
from yifang.respond import grading, service, tasks
from yifang.respond.models import Event
from yifang.respond.report import case_places, daily_counts, report_data
from yifang.respond.report_pdf import cjk_font, curve_drawing, event_report_pdf

ARTIFACTS = Path(__file__).parents[2] / "artifacts" / "reports"


def _closed_event(session) -> tuple[Event, list]:
    """A varicella cluster in a school: verified, investigated, confirmed, graded, tasks
    done, closed."""
    make_signal(session, "VARICELLA", "640521100")
    (v,) = service.open_verifications(session, NOW)
    service.record_outcome(
        session,
        v.id,
        viewer=ZN,
        version=1,
        outcome="suspected",
        checks=["cards"],
        findings="同一小学三年级聚集",
        event_type="school_cluster",
        event_tags=["school"],
    )
    event = session.get(Event, v.event_id)
    cards = [make_card(session, onset=date(2026, 5, 20) + timedelta(days=i % 6)) for i in range(11)]
    for card in cards:
        service.link_case(session, event.id, card.id, viewer=ZN, unit="宁安镇第一小学")
    service.start_investigation(session, event.id, viewer=ZN, version=event.version, team=["张三"])
    service.add_sample(
        session,
        event.id,
        viewer=ZN,
        data={
            "sample_type": "疱疹液",
            "laboratory": "市疾控实验室",
            "result": "positive",
            "pathogen": "VZV",
        },
    )
    service.confirm_event(session, event.id, viewer=ZN, version=event.version, findings="确认")
    grading.grade_event(session, event.id, viewer=ZN, version=event.version, accept=True)
    service.start_response(session, event.id, viewer=ZN, version=event.version)
    for task in tasks.apply_plan(session, event.id, viewer=ZN):
        tasks.task_step(session, task.id, "accept", viewer=CITY, version=task.version)
        tasks.task_step(
            session, task.id, "complete", viewer=CITY, version=task.version, result="已落实"
        )
    service.close_event(session, event.id, viewer=CITY, version=event.version, conclusion="平息")
    session.commit()
    return event, cards


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages)


def test_pdf_holds_the_report_in_chinese_without_personal_data(session):
    event, cards = _closed_event(session)
    pdf = event_report_pdf(session, CITY, event.id)
    assert pdf.startswith(b"%PDF-")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "event-report.pdf").write_bytes(pdf)  # for people to look at
    text = _text(pdf)
    for words in (
        event.number,
        "结案报告",
        "流行曲线",
        "处置经过",
        "处置任务",
        "定级记录",
        "宁安镇",
        "平息",
        "疱疹液",
        "阳性",
        "按疾控建议停课",
    ):
        assert words in text, words
    for card in cards:
        assert card.patient_name not in text and card.id_number not in text


def test_report_data_is_what_both_formats_show(session):
    event, _ = _closed_event(session)
    data = report_data(session, CITY, event.id)
    assert dict(data.particulars)["病例数"] == "11"
    assert [p.cases for p in data.places] == [11] and data.places[0].name == "宁安镇"
    assert data.timeline[0].kind == "预警信号" and data.timeline[-1].action == "结案"
    assert {row[2] for row in data.tasks} == {"已完成"}
    assert data.grades and data.grades[0][3] == "采纳建议"
    assert sum(n for _, n in daily_counts(data.onsets)) == 11
    assert case_places(session, event.id) == data.places


def test_curve_has_a_bar_per_day_from_first_to_last_onset():
    onsets = [date(2026, 5, 1), date(2026, 5, 1), date(2026, 5, 4)]
    assert daily_counts(onsets) == [
        (date(2026, 5, 1), 2),
        (date(2026, 5, 2), 0),
        (date(2026, 5, 3), 0),
        (date(2026, 5, 4), 1),
    ]
    chart = curve_drawing(onsets, 400, 150, cjk_font()).contents[0]
    assert chart.data == [[2, 0, 0, 1]]


def test_without_a_truetype_cjk_font_the_cid_font_is_used(session, monkeypatch):
    from yifang.respond import report_pdf

    event, _ = _closed_event(session)
    monkeypatch.setattr(report_pdf, "FONT_CANDIDATES", ())
    monkeypatch.setenv("YIFANG_PDF_FONT", "/nonexistent/font.ttf")
    report_pdf.cjk_font.cache_clear()
    try:
        assert report_pdf.cjk_font() == "STSong-Light"
        pdf = event_report_pdf(session, CITY, event.id)
    finally:
        report_pdf.cjk_font.cache_clear()
    assert b"STSong-Light" in pdf
    assert "结案报告" in _text(pdf)


def test_a_county_cannot_read_another_countys_report(session):
    event, _ = _closed_event(session)
    with pytest.raises(service.NotFoundError):
        event_report_pdf(session, SPS, event.id)


def test_download_route(client, session):
    from tests.web.conftest import log_in
    from yifang.core import accounts

    event, _ = _closed_event(session)
    rows = {u: p for u, p, _ in accounts.create_demo_users(session)}
    session.commit()
    log_in(client, "city_cdc", rows["city_cdc"])
    r = client.get(f"/api/events/{event.id}/report.pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF-") and "attachment" in r.headers["content-disposition"]
    places = client.get(f"/api/events/{event.id}/places").json()
    assert places[0]["cases"] == 11 and places[0]["longitude"] is not None
    assert client.get("/api/events/999/report.pdf").status_code == 404
