"""Notifications: in-app rows, email through a real SMTP server on loopback, pluggable SMS."""

from __future__ import annotations

import email
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from yifang.respond import notifications as n
from yifang.respond.config import RespondSettings
from yifang.respond.models import Notification


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        msg = email.message_from_bytes(envelope.content, policy=default_policy)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 OK"


@pytest.fixture()
def smtp_server():
    import socket

    with socket.socket() as probe:  # a free port on loopback
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _settings(port: int) -> RespondSettings:
    return RespondSettings(smtp_host="127.0.0.1", smtp_port=port, smtp_from="cdc@example.org")


def test_email_over_smtp_and_sms_through_the_sender(session, smtp_server):
    inbox, port = smtp_server
    n.set_address(
        session,
        recipient_kind="organisation",
        recipient_code="640521CD01",
        email="zn-cdc@example.org",
        phone="13900000001",
    )
    row = n.notify(
        session,
        kind="verification_escalated",  # channels: app, email, sms
        title="预警信号逾期未核实:霍乱",
        body="请立即核实。",
        recipient_kind="organisation",
        recipient_code="640521CD01",
    )
    session.flush()
    sms = n.LoggingSmsSender()
    report = n.deliver_pending(session, mailer=n.Mailer(_settings(port)), sms=sms)
    assert (report.email_sent, report.sms_sent) == (1, 1)
    assert (row.email_status, row.sms_status) == ("sent", "sent")
    ((to, msg),) = inbox.messages
    assert to == ["zn-cdc@example.org"]
    assert msg["Subject"] == "预警信号逾期未核实:霍乱" and "请立即核实" in msg.get_content()
    assert sms.sent == [("13900000001", "预警信号逾期未核实:霍乱 请立即核实。")]
    # nothing left to send
    assert n.deliver_pending(session, mailer=n.Mailer(_settings(port)), sms=sms).email_sent == 0


def test_unreachable_smtp_marks_failed_without_raising(session):
    n.set_address(session, recipient_kind="user", recipient_code="u1", email="u1@example.org")
    row = n.notify(
        session, kind="task_assigned", title="任务", recipient_kind="user", recipient_code="u1"
    )
    session.flush()
    closed_port = RespondSettings(smtp_host="127.0.0.1", smtp_port=1, smtp_timeout=2)
    report = n.deliver_pending(session, mailer=n.Mailer(closed_port))
    assert report.email_failed == 1 and row.email_status == "failed" and row.last_error


def test_no_smtp_host_leaves_email_pending_and_no_address_is_recorded(session):
    row = n.notify(
        session,
        kind="task_overdue",
        title="逾期",
        recipient_kind="owner",
        recipient_code="education",
        region_code="640521",
    )
    session.flush()
    n.deliver_pending(session, mailer=n.Mailer(RespondSettings(smtp_host="")))
    assert row.email_status == "pending" and row.sms_status == "no_address"


def test_in_app_only_kinds_and_addressing(session):
    row = n.notify(
        session,
        kind="task_status",
        title="x",
        recipient_kind="owner",
        recipient_code="education",
        region_code="640521100",
    )
    assert (row.email_status, row.sms_status) == (None, None)
    session.flush()
    mine = select(Notification.id).where(n.addressed_to("edu", None, "education", "6405"))
    assert session.scalars(mine).all() == [row.id]
    other = select(Notification.id).where(n.addressed_to("edu", None, "education", "640502"))
    assert session.scalars(other).all() == []


def test_pluggable_sms_backend(monkeypatch):
    import types

    module = types.ModuleType("city_sms")

    class Gateway:
        def send(self, phone: str, text: str) -> None:
            pass

    module.factory = Gateway  # type: ignore[attr-defined]
    monkeypatch.setitem(__import__("sys").modules, "city_sms", module)
    sender = n.sms_sender(RespondSettings(sms_backend="city_sms:factory"))
    assert isinstance(sender, Gateway)
    assert isinstance(n.sms_sender(RespondSettings()), n.LoggingSmsSender)
    with pytest.raises(ValueError):
        n.notify(None, kind="x", title="t", recipient_kind="nobody", recipient_code="c")  # type: ignore[arg-type]
