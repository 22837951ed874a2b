"""The response's periodic job: what must happen without anyone pressing a button.

:func:`run_jobs` opens verifications for new signals, escalates overdue verifications,
reminds, marks and escalates tasks, and ends completed follow-ups — in one transaction, so
a crash leaves all of it to the next run. Email and SMS are sent afterwards by
:func:`yifang.respond.notifications.deliver_pending`, outside that transaction. The command
``yifang respond tick`` runs both (every few minutes, from cron or a systemd timer).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from yifang.core.db import utcnow
from yifang.respond.contacts import end_follow_up
from yifang.respond.service import escalate_overdue, open_verifications
from yifang.respond.tasks import remind_and_escalate


@dataclass(frozen=True)
class JobReport:
    """What one run of the job did (counts)."""

    verifications_opened: int
    verifications_escalated: int
    tasks_reminded: int
    tasks_overdue: int
    tasks_escalated: int
    follow_ups_ended: int


def run_jobs(session: Session, now: datetime | None = None) -> JobReport:
    """Run every periodic step once, at ``now`` (naive UTC)."""
    now = now or utcnow()
    opened = open_verifications(session, now)
    escalated = escalate_overdue(session, now)
    tasks = remind_and_escalate(session, now)
    ended = end_follow_up(session, now)
    return JobReport(
        verifications_opened=len(opened),
        verifications_escalated=len(escalated),
        tasks_reminded=tasks.reminded,
        tasks_overdue=tasks.overdue,
        tasks_escalated=tasks.escalated,
        follow_ups_ended=ended,
    )
