"""Plans and tasks: templates, owners, statuses, reminders, escalation, attachments, sharing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.respond.conftest import CITY, EDU, HOSPITAL, NOW, SPS, ZN, make_card, make_signal
from yifang.respond import service, sharing, tasks
from yifang.respond.models import Event, Notification, PlanTemplate


def _responding(session, **kw) -> Event:
    make_signal(session)
    (v,) = service.open_verifications(session, NOW)
    service.record_outcome(session, v.id, viewer=ZN, version=1, outcome="suspected", **kw)
    event = session.get(Event, v.event_id)
    service.start_investigation(session, event.id, viewer=ZN, version=event.version)
    service.confirm_event(session, event.id, viewer=ZN, version=event.version)
    service.start_response(session, event.id, viewer=ZN, version=event.version)
    return event


def test_school_cluster_plan_creates_owner_tasks_once(session):
    event = _responding(session, event_type="school_cluster", event_tags=["school"])
    made = tasks.apply_plan(session, event.id, viewer=ZN, now=NOW)
    owners = sorted({t.owner for t in made})
    assert owners == ["cdc", "education", "health_commission"]
    cdc = [t for t in made if t.owner == "cdc"]
    assert {t.organisation_code for t in cdc} == {"640521CD01"}
    assert {t.template_code for t in made} == {"investigation", "school_cluster"}
    edu = next(t for t in made if t.owner == "education")
    assert edu.deadline == NOW + timedelta(hours=24) and edu.region_code == "640521100"
    assert tasks.apply_plan(session, event.id, viewer=ZN, now=NOW) == []
    notes = session.scalars(
        select(Notification).where(
            Notification.kind == "task_assigned", Notification.recipient_code == "education"
        )
    ).all()
    assert len(notes) == 1 and notes[0].region_code == "640521100"


def test_brucellosis_and_tourist_templates_match(session):
    make_signal(session, "BRUC", "640521100")
    (v,) = service.open_verifications(session, NOW)
    service.record_outcome(
        session, v.id, viewer=ZN, version=1, outcome="suspected", event_tags=["tourist"]
    )
    event = session.get(Event, v.event_id)
    codes = {t.code for t in tasks.matching_templates(session, event)}
    assert codes == {"investigation", "brucellosis", "tourist"}


def test_major_template_only_for_levels_i_ii(session):
    event = _responding(session)
    assert "major_event" not in {t.code for t in tasks.matching_templates(session, event)}
    event.level = "II"
    assert "major_event" in {t.code for t in tasks.matching_templates(session, event)}


def test_edited_template_survives_reload(session):
    tasks.list_templates(session)
    tasks.update_template(
        session,
        "tourist",
        {"tasks": [{"owner": "culture_tourism", "zh": "改过的任务", "deadline_hours": 12}]},
        actor="city_cdc",
    )
    tasks.load_templates(session)
    assert session.get(PlanTemplate, "tourist").tasks[0]["zh"] == "改过的任务"
    with pytest.raises(service.BadRequestError):
        tasks.update_template(
            session, "tourist", {"tasks": [{"owner": "nobody", "zh": "x"}]}, actor="a"
        )


def test_owner_works_the_task_others_cannot(session):
    event = _responding(session, event_type="school_cluster", event_tags=["school"])
    tasks.apply_plan(session, event.id, viewer=ZN, now=NOW)
    mine = tasks.list_tasks(session, EDU)
    assert [t.owner for t in mine] == ["education"]  # only what is addressed to them
    task = mine[0]
    assert tasks.list_tasks(session, HOSPITAL) == []
    with pytest.raises(service.NotFoundError):
        tasks.task_step(session, task.id, "accept", viewer=SPS, version=1)
    tasks.task_step(session, task.id, "accept", viewer=EDU, version=1, now=NOW)
    tasks.task_step(session, task.id, "start", viewer=EDU, version=2, now=NOW)
    with pytest.raises(service.IllegalTransitionError):
        tasks.task_step(session, task.id, "accept", viewer=EDU, version=3)
    with pytest.raises(service.ForbiddenError):
        tasks.task_step(session, task.id, "cancel", viewer=EDU, version=3, reason="x")
    tasks.task_step(session, task.id, "complete", viewer=EDU, version=3, result="三年级停课 7 天")
    assert task.status == "done" and task.accepted_by == "edu_liaison"
    with pytest.raises(service.StaleVersionError):
        tasks.task_step(session, task.id, "complete", viewer=CITY, version=1)


def test_reminder_overdue_and_escalation(session):
    event = _responding(session)
    task = tasks.create_task(
        session,
        viewer=ZN,
        title="采样",
        owner="cdc",
        region_code="",
        event_id=event.id,
        deadline=NOW + timedelta(hours=6),
        now=NOW,
    )
    rep = tasks.remind_and_escalate(session, NOW + timedelta(hours=3))
    assert (rep.reminded, rep.overdue, rep.escalated) == (1, 0, 0)
    assert tasks.remind_and_escalate(session, NOW + timedelta(hours=4)).reminded == 0
    rep = tasks.remind_and_escalate(session, NOW + timedelta(hours=7))
    assert rep.overdue == 1 and task.status == "overdue"
    rep = tasks.remind_and_escalate(session, NOW + timedelta(hours=31))
    assert rep.escalated == 1 and task.escalated_at is not None
    # an overdue task can still be done
    tasks.task_step(session, task.id, "complete", viewer=ZN, version=task.version)
    assert task.status == "done"


def test_comments_and_attachments(session, tmp_path, monkeypatch):
    from yifang.core import settings as core_settings

    monkeypatch.setattr(core_settings.get_settings(), "data_dir", tmp_path)
    event = _responding(session)
    task = tasks.create_task(
        session, viewer=ZN, title="消毒", owner="cdc", region_code="", event_id=event.id, now=NOW
    )
    tasks.add_comment(session, task.id, viewer=ZN, text="已安排")
    assert [c.text for c in tasks.comments(session, task.id)] == ["已安排"]
    pdf = b"%PDF-1.4\n" + b"x" * 100
    att = tasks.add_attachment(
        session,
        task.id,
        viewer=ZN,
        filename="../../报告.pdf",
        content_type="application/pdf",
        data=pdf,
    )
    row, path = tasks.get_attachment(session, ZN, att.id)
    assert row.filename == "报告.pdf" and path.read_bytes() == pdf
    assert path.is_relative_to(tmp_path)
    for name, ctype, data in [
        ("a.exe", "application/octet-stream", b"MZ"),
        ("a.pdf", "application/pdf", b"not a pdf"),
        ("a.png", "application/pdf", b"\x89PNG\r\n\x1a\n"),
        ("a.txt", "text/plain", b""),
        ("a.txt", "text/plain", b"\xff\xfe\x00bad"),
    ]:
        with pytest.raises(service.BadRequestError):
            tasks.add_attachment(
                session, task.id, viewer=ZN, filename=name, content_type=ctype, data=data
            )
    big = b"%PDF-" + b"0" * (10 * 1024 * 1024)
    with pytest.raises(service.BadRequestError):
        tasks.add_attachment(
            session,
            task.id,
            viewer=ZN,
            filename="big.pdf",
            content_type="application/pdf",
            data=big,
        )
    with pytest.raises(service.NotFoundError):
        tasks.get_attachment(session, SPS, att.id)


def test_warning_is_deidentified_and_acknowledged(session):
    event = _responding(session)
    card = make_card(session)
    service.link_case(session, event.id, card.id, viewer=ZN)
    warning = sharing.send_warning(
        session, event.id, viewer=ZN, to=["education", "market_regulation"], advice="加强晨检"
    )
    assert set(warning.content) <= sharing.CONTENT_KEYS
    flat = repr(warning.content) + warning.advice + warning.title
    for personal in (card.patient_name, card.id_number, card.phone, card.address_detail):
        assert personal not in flat
    assert warning.content["townships"] == [{"code": "640521100", "name": "宁安镇", "cases": 1}]
    body = session.scalars(select(Notification.body).where(Notification.kind == "warning")).first()
    assert card.patient_name not in body and "宁安镇" in body
    assert [w.id for w in sharing.list_warnings(session, EDU, unacknowledged=True)] == [warning.id]
    sharing.acknowledge(session, warning.id, viewer=EDU)
    assert sharing.list_warnings(session, EDU, unacknowledged=True) == []
    acks = {r.owner: r.acknowledged_by for r in sharing.recipients(session, warning.id)}
    assert acks == {"education": "edu_liaison", "market_regulation": None}
    with pytest.raises(service.NotFoundError):
        sharing.acknowledge(session, warning.id, viewer=HOSPITAL)
    with pytest.raises(service.BadRequestError):
        sharing.send_warning(session, event.id, viewer=ZN, to=["nobody"], advice="x")
