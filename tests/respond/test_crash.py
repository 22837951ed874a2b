"""Nothing partial is stored when the process dies in the middle of an operation.

A child process runs "verification → suspected event", which writes the new event first
and the verification after it, in one transaction; it kills itself (``os._exit``, no
clean-up, no rollback) right after the event row reached the database. The parent then
finds neither the event nor any change to the verification.
"""

from __future__ import annotations

import multiprocessing
import os

from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.respond.conftest import NOW, ZN, make_signal
from yifang.core.audit import AuditEntry
from yifang.core.db import make_engine
from yifang.respond import service
from yifang.respond.models import Event, Notification, RespondHistory, Verification


def _die_after_event_insert(db_url: str, verification_id: int) -> None:
    engine = make_engine(db_url)
    with Session(engine) as session:

        @sa_event.listens_for(session, "after_flush")
        def crash(sess, _ctx):  # type: ignore[no-untyped-def]
            if any(isinstance(obj, Event) for obj in sess.new):
                os._exit(17)

        service.record_outcome(
            session, verification_id, viewer=ZN, version=1, outcome="suspected", findings="x"
        )
        session.commit()  # never reached
    os._exit(0)


def test_kill_between_steps_leaves_nothing(engine, db_url):
    with Session(engine) as session:
        make_signal(session)
        (v,) = service.open_verifications(session, NOW)
        session.commit()
        vid = v.id
        before = {
            "audit": session.scalar(select(func.count()).select_from(AuditEntry)),
            "history": session.scalar(select(func.count()).select_from(RespondHistory)),
            "notes": session.scalar(select(func.count()).select_from(Notification)),
        }
    engine.dispose()
    proc = multiprocessing.get_context("fork").Process(
        target=_die_after_event_insert, args=(db_url, vid)
    )
    proc.start()
    proc.join(60)
    assert proc.exitcode == 17  # it died where we wanted, mid-transaction
    with Session(engine) as session:
        v = session.get(Verification, vid)
        assert (v.status, v.version, v.event_id) == ("pending", 1, None)
        assert session.scalar(select(func.count()).select_from(Event)) == 0
        after = {
            "audit": session.scalar(select(func.count()).select_from(AuditEntry)),
            "history": session.scalar(select(func.count()).select_from(RespondHistory)),
            "notes": session.scalar(select(func.count()).select_from(Notification)),
        }
        assert after == before
        # and the operation succeeds when retried
        service.record_outcome(session, vid, viewer=ZN, version=1, outcome="suspected")
        session.commit()
        assert session.scalar(select(func.count()).select_from(Event)) == 1
