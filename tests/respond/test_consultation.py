"""Consultation: agenda from signals, events and indicators; risk matrix; decisions → tasks."""

from __future__ import annotations

import pytest

from tests.respond.conftest import EDU, NOW, SPS, ZN, make_card, make_signal
from yifang.respond import consultation as c
from yifang.respond import service, tasks
from yifang.respond.config import response_config


def test_agenda_risk_matrix_decisions_and_close(session):
    make_signal(session, "VARICELLA", "640521100")
    make_signal(session, "FLU", "640502100")  # another county: not on 中宁's agenda
    service.open_verifications(session, NOW)
    make_card(session, "VARICELLA", onset=NOW.date())
    meeting = c.create_consultation(session, viewer=ZN, title="周会商", now=NOW)
    assert meeting.region_code == "640521"
    items = c.items(session, meeting.id)
    kinds = [(i.item_type, i.summary.get("disease_code")) for i in items]
    assert ("signal", "VARICELLA") in kinds and ("signal", "FLU") not in kinds
    assert any(i.item_type == "indicator" and "overdue_tasks" in i.summary for i in items)
    signal_item = next(i for i in items if i.item_type == "signal")
    assessed = c.assess_item(session, signal_item.id, viewer=ZN, likelihood=4, impact=3)
    assert (assessed.risk_score, assessed.risk_level) == (12, "high")
    with pytest.raises(service.BadRequestError):
        c.assess_item(session, signal_item.id, viewer=ZN, likelihood=6, impact=1)
    c.consultation_step(session, meeting.id, "start", viewer=ZN, version=1)
    decision = c.add_decision(
        session,
        meeting.id,
        viewer=ZN,
        text="教育局督促学校落实晨检",
        item_id=signal_item.id,
        task={"owner": "education", "title": "督促晨检"},
    )
    (task,) = tasks.list_tasks(session, EDU)
    assert decision.task_id == task.id and task.consultation_id == meeting.id
    with pytest.raises(service.BadRequestError):
        c.consultation_step(session, meeting.id, "close", viewer=ZN, version=2, minutes="")
    c.consultation_step(session, meeting.id, "close", viewer=ZN, version=2, minutes="纪要")
    assert meeting.status == "closed"
    with pytest.raises(service.IllegalTransitionError):
        c.add_decision(session, meeting.id, viewer=ZN, text="太晚了")
    with pytest.raises(service.NotFoundError):
        c.get_consultation(session, SPS, meeting.id)


@pytest.mark.parametrize(
    ("score", "level"), [(1, "low"), (5, "medium"), (16, "high"), (25, "very_high")]
)
def test_risk_bands(score, level):
    assert response_config().risk_level(score) == level
