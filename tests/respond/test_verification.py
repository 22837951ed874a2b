"""Signal verification: assignment, deadlines by class, outcomes, escalation, jurisdiction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.respond.conftest import CITY, NOW, SPS, ZN, make_signal
from yifang.core.audit import AuditEntry
from yifang.detect.models import Signal
from yifang.respond import service
from yifang.respond.models import Event, Notification, RespondHistory, Verification


def test_open_verifications_assigns_county_cdc_with_class_deadline(session):
    b = make_signal(session, "VARICELLA", "640521100")
    a = make_signal(session, "CHOLERA", "640502101")
    made = service.open_verifications(session, NOW)
    assert [v.signal_id for v in made] == [b.id, a.id]
    by_signal = {v.signal_id: v for v in made}
    assert by_signal[b.id].organisation_code == "640521CD01"
    assert by_signal[b.id].due_at == NOW + timedelta(hours=24)
    assert by_signal[a.id].organisation_code == "640502CD01"
    assert by_signal[a.id].due_at == NOW + timedelta(hours=2)  # 甲类
    # idempotent: a second run finds nothing to do
    assert service.open_verifications(session, NOW) == []
    notes = session.scalars(select(Notification).where(Notification.kind.like("verification%")))
    assert {(n.recipient_code, n.kind) for n in notes} == {
        ("640521CD01", "verification_assigned"),
        ("640502CD01", "verification_assigned_urgent"),
    }


def test_syndrome_and_stream_signals_are_verified_by_their_source_deadline(session):
    syndrome = make_signal(session, "VARICELLA", "640521100")
    stream = make_signal(session, "VARICELLA", "640502101")
    for sig, source, name in (
        (syndrome, "syndrome", "发热伴呼吸道症状"),
        (stream, "stream", "学校因病缺课率"),
    ):
        sig.disease_code = None
        sig.source = source
        sig.series_code = source
        sig.series_name_zh = name
    session.flush()
    made = {v.signal_id: v for v in service.open_verifications(session, NOW)}
    assert made[syndrome.id].disease_code is None
    assert made[syndrome.id].series_name_zh == "发热伴呼吸道症状"
    assert made[syndrome.id].due_at == NOW + timedelta(hours=24)
    assert made[stream.id].source == "stream"
    assert made[stream.id].due_at == NOW + timedelta(hours=48)
    titles = session.scalars(select(Notification.title).where(Notification.kind.like("verif%")))
    assert any("学校因病缺课率" in t for t in titles)


def test_managed_as_class_a_gets_two_hours(session):
    sig = make_signal(session, "SARS", "640521100")
    (v,) = service.open_verifications(session, NOW)
    assert v.signal_id == sig.id and v.due_at == NOW + timedelta(hours=2)


def test_city_level_signal_goes_to_city_cdc(session):
    make_signal(session, "FLU", "6405")
    (v,) = service.open_verifications(session, NOW)
    assert v.organisation_code == "640500CD01"


def test_quiet_signals_get_no_verification(session):
    make_signal(session, status="quiet")
    assert service.open_verifications(session, NOW) == []


def test_dismiss_needs_reason_code_and_text_and_closes_signal(session):
    sig = make_signal(session)
    (v,) = service.open_verifications(session, NOW)
    with pytest.raises(service.BadRequestError) as err:
        service.record_outcome(session, v.id, viewer=ZN, version=v.version, outcome="dismissed")
    assert err.value.field == "reason_code"
    with pytest.raises(service.BadRequestError) as err:
        service.record_outcome(
            session, v.id, viewer=ZN, version=v.version, outcome="dismissed", reason_code="sporadic"
        )
    assert err.value.field == "reason"
    service.record_outcome(
        session,
        v.id,
        viewer=ZN,
        version=v.version,
        outcome="dismissed",
        checks=["cards", "phone_hospital"],
        reason_code="sporadic",
        reason="散发,无关联",
        now=NOW + timedelta(hours=1),
    )
    assert v.status == "dismissed" and v.verified_by == "zn_epi"
    assert session.get(Signal, sig.id).status == "closed"
    hist = service.history(session, "verification", v.id)
    assert [(h.action, h.from_status, h.to_status) for h in hist] == [
        ("create", None, "pending"),
        ("dismiss", "pending", "dismissed"),
    ]
    audit = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "verification.dismiss")
    ).one()
    assert audit.actor == "zn_epi" and "散发" in audit.reason


def test_unknown_outcome_and_check_codes_are_refused(session):
    make_signal(session)
    (v,) = service.open_verifications(session, NOW)
    with pytest.raises(service.BadRequestError):
        service.record_outcome(session, v.id, viewer=ZN, version=1, outcome="maybe")
    with pytest.raises(service.BadRequestError) as err:
        service.record_outcome(
            session, v.id, viewer=ZN, version=1, outcome="watching", checks=["x"]
        )
    assert err.value.field == "checks"


def test_watch_then_suspect_opens_event(session):
    make_signal(session)
    (v,) = service.open_verifications(session, NOW)
    service.record_outcome(session, v.id, viewer=ZN, version=1, outcome="watching")
    assert v.status == "watching" and v.version == 2
    service.record_outcome(
        session,
        v.id,
        viewer=ZN,
        version=2,
        outcome="suspected",
        findings="同一小学 6 例",
        event_type="school_cluster",
        event_tags=["school"],
    )
    event = session.get(Event, v.event_id)
    assert event.status == "suspected" and event.signal_id == v.signal_id
    assert event.organisation_code == "640521CD01" and event.event_type == "school_cluster"
    # no way back from an outcome to pending, nor a second suspicion
    with pytest.raises(service.IllegalTransitionError):
        service.record_outcome(session, v.id, viewer=ZN, version=v.version, outcome="watching")


def test_stale_version_is_refused_and_nothing_changes(session):
    make_signal(session)
    (v,) = service.open_verifications(session, NOW)
    with pytest.raises(service.StaleVersionError) as err:
        service.record_outcome(session, v.id, viewer=ZN, version=7, outcome="watching")
    assert err.value.status == 409 and "刷新" in err.value.message_zh
    assert v.status == "pending" and v.version == 1


def test_other_county_cannot_see_or_verify(session):
    make_signal(session, region="640521100")
    (v,) = service.open_verifications(session, NOW)
    assert service.list_verifications(session, SPS) == []
    with pytest.raises(service.NotFoundError):
        service.record_outcome(session, v.id, viewer=SPS, version=1, outcome="watching")
    assert [x.id for x in service.list_verifications(session, CITY)] == [v.id]


def test_overdue_escalates_to_city_cdc_once(session):
    make_signal(session, "CHOLERA", "640521100")
    make_signal(session, "VARICELLA", "640521101")
    service.open_verifications(session, NOW)
    later = NOW + timedelta(hours=3)
    assert [
        v.disease_code for v in service.list_verifications(session, ZN, overdue=True, now=later)
    ] == ["CHOLERA"]
    (esc,) = service.escalate_overdue(session, later)
    assert esc.escalated_to == "640500CD01" and esc.status == "pending"
    assert service.escalate_overdue(session, later + timedelta(hours=1)) == []
    kinds = session.scalars(
        select(Notification.recipient_code).where(Notification.kind == "verification_escalated")
    ).all()
    assert sorted(kinds) == ["640500CD01", "640521CD01"]
    # still verifiable by the county after escalation
    service.record_outcome(session, esc.id, viewer=ZN, version=esc.version, outcome="watching")
    rows = session.scalars(
        select(RespondHistory.action).where(RespondHistory.entity_id == esc.id)
    ).all()
    assert rows == ["create", "escalate", "watch"]


def test_concurrent_open_verifications_do_not_duplicate(engine):
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        make_signal(s)
        s.commit()
    with Session(engine) as s1:
        service.open_verifications(s1, NOW)
        s1.commit()
    with Session(engine) as s2:
        assert service.open_verifications(s2, NOW) == []
        assert s2.scalar(select(Verification.id).limit(1)) is not None


def test_parallel_run_inserting_first_is_skipped(engine, monkeypatch):
    """Another run commits a verification between our read and our insert: ours skips it."""
    from sqlalchemy.orm import Session

    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers: the interleaving cannot happen there")
    with Session(engine) as s:
        first, second = make_signal(s), make_signal(s, region="640521101")
        s.commit()
        first_id, second_id = first.id, second.id
    real = service.verification_deadline
    done = []

    def racing(session, signal):
        if not done:
            done.append(1)
            with Session(engine) as other:
                service.open_verifications(other, NOW)  # the parallel run wins both
                other.commit()
        return real(session, signal)

    monkeypatch.setattr(service, "verification_deadline", racing)
    with Session(engine) as s:
        assert service.open_verifications(s, NOW) == []
        s.commit()
        ids = s.scalars(select(Verification.signal_id).order_by(Verification.signal_id)).all()
        assert ids == [first_id, second_id]
