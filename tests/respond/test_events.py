"""Events: the state machine, investigation record, linked cases, samples and grading."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from tests.respond.conftest import CITY, NOW, SPS, ZN, make_card, make_signal
from yifang.respond import grading, service
from yifang.respond.models import Event, EventGrade


def _suspected(session, disease="VARICELLA", region="640521100", **kw) -> Event:
    make_signal(session, disease, region)
    (v,) = service.open_verifications(session, NOW)
    service.record_outcome(session, v.id, viewer=ZN, version=1, outcome="suspected", **kw)
    return session.get(Event, v.event_id)


def _confirmed(session, event: Event) -> Event:
    service.start_investigation(
        session, event.id, viewer=ZN, version=event.version, team=["张三", "李四"]
    )
    service.confirm_event(session, event.id, viewer=ZN, version=event.version, findings="确认")
    return event


def test_full_path_to_closed(session):
    event = _suspected(session)
    service.start_investigation(
        session,
        event.id,
        viewer=ZN,
        version=1,
        team=["张三", " "],
        start=date(2026, 6, 1),
        now=NOW + timedelta(hours=2),
    )
    assert event.status == "investigating" and event.team == ["张三"]
    service.edit_event(
        session, event.id, {"findings": "6 例均为三年级", "affected": 6}, viewer=ZN, version=2
    )
    service.confirm_event(session, event.id, viewer=ZN, version=3, now=NOW + timedelta(hours=5))
    service.start_response(session, event.id, viewer=ZN, version=4, now=NOW + timedelta(hours=6))
    service.close_event(
        session, event.id, viewer=ZN, version=5, conclusion="疫情平息", now=NOW + timedelta(days=20)
    )
    assert event.status == "closed" and event.closed_at == NOW + timedelta(days=20)
    steps = [(h.action, h.to_status) for h in service.history(session, "event", event.id)]
    assert steps == [
        ("create", "suspected"),
        ("investigate", "investigating"),
        ("edit", "investigating"),
        ("confirm", "confirmed"),
        ("respond", "responding"),
        ("close", "closed"),
    ]


@pytest.mark.parametrize(
    ("action", "kwargs"),
    [
        ("confirm_event", {}),
        ("start_response", {}),
        ("close_event", {"conclusion": "x"}),
    ],
)
def test_transitions_not_allowed_from_suspected(session, action, kwargs):
    event = _suspected(session)
    with pytest.raises(service.IllegalTransitionError) as err:
        getattr(service, action)(session, event.id, viewer=ZN, version=1, **kwargs)
    assert err.value.status == 409 and "疑似" in err.value.message_zh
    assert event.status == "suspected" and event.version == 1


def test_rule_out_needs_reason_and_then_close(session):
    event = _suspected(session)
    with pytest.raises(service.BadRequestError):
        service.rule_out_event(session, event.id, viewer=ZN, version=1, reason=" ")
    service.rule_out_event(session, event.id, viewer=ZN, version=1, reason="重卡所致")
    assert event.status == "ruled_out" and event.conclusion == "重卡所致"
    with pytest.raises(service.IllegalTransitionError):
        service.start_investigation(session, event.id, viewer=ZN, version=2)
    service.close_event(session, event.id, viewer=ZN, version=2, conclusion="排除")


def test_edit_refuses_unknown_fields_and_bad_dates(session):
    event = _suspected(session)
    with pytest.raises(service.BadRequestError) as err:
        service.edit_event(session, event.id, {"status": "closed"}, viewer=ZN, version=1)
    assert err.value.field == "status"
    with pytest.raises(service.BadRequestError):
        service.edit_event(
            session,
            event.id,
            {"investigation_start": date(2026, 6, 2), "investigation_end": date(2026, 6, 1)},
            viewer=ZN,
            version=1,
        )
    with pytest.raises(service.BadRequestError):
        service.edit_event(session, event.id, {"event_type": "nonsense"}, viewer=ZN, version=1)


def test_jurisdiction_of_events(session):
    event = _suspected(session)
    assert service.list_events(session, SPS) == []
    assert [e.id for e in service.list_events(session, CITY)] == [event.id]
    with pytest.raises(service.NotFoundError):
        service.get_event(session, SPS, event.id)
    with pytest.raises(service.ForbiddenError):
        service.open_event(session, viewer=SPS, title="越界", region_code="640521100")


def test_link_cases_samples_and_results(session):
    event = _suspected(session)
    own = make_card(session)
    other = make_card(session, address="640502100")
    link = service.link_case(session, event.id, own.id, viewer=ZN, unit="一小三年级")
    assert service.link_case(session, event.id, own.id, viewer=ZN).id == link.id  # idempotent
    with pytest.raises(service.NotFoundError):
        service.link_case(session, event.id, other.id, viewer=ZN)  # outside the county
    assert [c.id for _, c in service.event_cases(session, event.id)] == [own.id]
    sample = service.add_sample(
        session, event.id, viewer=ZN, data={"sample_type": "咽拭子", "card_id": own.id}
    )
    assert sample.result == "pending"
    service.record_sample_result(
        session, sample.id, viewer=ZN, version=1, result="positive", pathogen="VZV"
    )
    with pytest.raises(service.StaleVersionError):
        service.record_sample_result(session, sample.id, viewer=ZN, version=1, result="negative")
    service.unlink_case(session, event.id, own.id, viewer=ZN, reason="误关联")
    assert service.event_cases(session, event.id) == []


def test_close_refused_while_tasks_open(session):
    from yifang.respond import tasks

    event = _confirmed(session, _suspected(session))
    service.start_response(session, event.id, viewer=ZN, version=event.version)
    task = tasks.create_task(
        session, viewer=ZN, title="消毒", owner="cdc", region_code="", event_id=event.id, now=NOW
    )
    with pytest.raises(service.IllegalTransitionError) as err:
        service.close_event(session, event.id, viewer=ZN, version=event.version, conclusion="x")
    assert err.value.code == "tasks_unfinished"
    tasks.task_step(session, task.id, "cancel", viewer=ZN, version=1, reason="不需要")
    service.close_event(session, event.id, viewer=ZN, version=event.version, conclusion="x")


# --------------------------------------------------------------------------- grading


def test_suggestion_reaches_related_info_threshold_per_unit(session):
    event = _confirmed(session, _suspected(session))
    for i in range(9):
        card = make_card(session, onset=date(2026, 5, 20) + timedelta(days=i % 5))
        service.link_case(session, event.id, card.id, viewer=ZN)
    s = grading.suggest_grade(session, event)
    assert s.related_info is False and s.level is None  # 9 < 10 in a week
    card = make_card(session, onset=date(2026, 5, 22))
    service.link_case(session, event.id, card.id, viewer=ZN)
    s = grading.suggest_grade(session, event)
    assert s.related_info is True and s.level is None
    (hit,) = s.basis
    assert hit.rule == "ri_respiratory_school" and hit.cases == 10 and hit.group == "宁安镇第一小学"


def test_window_counts_only_cases_within_days(session):
    event = _confirmed(session, _suspected(session))
    for i in range(10):  # 10 cases spread over 20 days: never 10 in one week
        card = make_card(session, onset=date(2026, 5, 1) + timedelta(days=2 * i))
        service.link_case(session, event.id, card.id, viewer=ZN)
    assert grading.suggest_grade(session, event).related_info is False


def test_cholera_levels_and_spread(session):
    event = _confirmed(session, _suspected(session, "CHOLERA"))
    card = make_card(session, "CHOLERA", work_unit=None)
    service.link_case(session, event.id, card.id, viewer=CITY)
    s = grading.suggest_grade(session, event)
    assert s.related_info is True and s.level == "IV"
    # a case in a second county within the week: III (spread to ≥2 counties)
    other = make_card(session, "CHOLERA", "640502100", onset=date(2026, 5, 30), work_unit=None)
    service.link_case(session, event.id, other.id, viewer=CITY)
    assert grading.suggest_grade(session, event).level == "III"


def test_food_poisoning_counts_affected_people(session):
    event = _confirmed(session, _suspected(session, event_type="foodborne", event_tags=["school"]))
    service.edit_event(session, event.id, {"affected": 6}, viewer=ZN, version=event.version)
    s = grading.suggest_grade(session, event)
    assert s.related_info is True and [h.rule for h in s.basis] == ["ri_food_poisoning_school"]


def test_grade_accept_override_and_history(session):
    event = _confirmed(session, _suspected(session, "CHOLERA"))
    service.link_case(session, event.id, make_card(session, "CHOLERA").id, viewer=ZN)
    g1 = grading.grade_event(session, event.id, viewer=ZN, version=event.version, accept=True)
    assert (g1.level, g1.related_info, g1.accepted) == ("IV", True, True)
    with pytest.raises(service.BadRequestError) as err:
        grading.grade_event(
            session, event.id, viewer=ZN, version=event.version, related_info=True, level="III"
        )
    assert err.value.field == "reason"
    g2 = grading.grade_event(
        session,
        event.id,
        viewer=CITY,
        version=event.version,
        related_info=True,
        level="III",
        reason="病例集中于学校,扩散风险高",
    )
    assert g2.accepted is False and g2.suggested_level == "IV"
    assert event.level == "III"
    assert [g.level for g in grading.grades(session, event.id)] == ["IV", "III"]
    assert session.scalar(select(EventGrade.reason).where(EventGrade.id == g2.id)).startswith(
        "病例"
    )


def test_grading_refused_before_confirmation(session):
    event = _suspected(session)
    with pytest.raises(service.IllegalTransitionError):
        grading.grade_event(session, event.id, viewer=ZN, version=1, accept=True)
