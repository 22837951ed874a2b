"""Notifications: in the application, by email over SMTP and by SMS through a pluggable sender.

:func:`notify` writes a :class:`~yifang.respond.models.Notification` row inside the caller's
transaction, so a message exists exactly when the change it reports was committed. The row
is the in-app message; when its kind's channels (data/response.yaml) include email or SMS,
the row is also an outbox entry (``email_status``/``sms_status`` = ``pending``) that
:func:`deliver_pending` sends later, from a job, after the commit — a slow or failed mail
server never holds a transaction open or undoes a workflow step.

Email goes through :mod:`smtplib` to ``YIFANG_SMTP_HOST:YIFANG_SMTP_PORT`` (optional
STARTTLS and login). SMS goes through any object with the :class:`SmsSender` protocol; the
default, :class:`LoggingSmsSender`, writes the message to the log, and a city plugs its
gateway in with ``YIFANG_SMS_BACKEND=package.module:factory``.
"""

from __future__ import annotations

import importlib
import logging
import smtplib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol, runtime_checkable

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.orm import Session

from yifang.core.accounts import User
from yifang.core.db import utcnow
from yifang.respond.config import RespondSettings, get_respond_settings, response_config
from yifang.respond.models import Notification, NotificationAddress

log = logging.getLogger("yifang.respond.notifications")

RECIPIENT_KINDS = ("user", "organisation", "owner")


@runtime_checkable
class SmsSender(Protocol):
    """Anything that can send one text message to one phone number."""

    def send(self, phone: str, text: str) -> None:
        """Send ``text`` to ``phone``; raise on failure."""


class LoggingSmsSender:
    """The default SMS sender: writes each message to the log (and keeps it, for tests)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, phone: str, text: str) -> None:
        """Log the message instead of sending it."""
        self.sent.append((phone, text))
        log.info("SMS to %s: %s", phone, text)


def sms_sender(settings: RespondSettings | None = None) -> SmsSender:
    """The configured SMS sender: ``log`` or the factory ``module:function`` names."""
    settings = settings or get_respond_settings()
    spec = settings.sms_backend.strip()
    if spec in ("", "log"):
        return LoggingSmsSender()
    module_name, _, attr = spec.partition(":")
    factory = getattr(importlib.import_module(module_name), attr or "sender")
    sender = factory()
    if not isinstance(sender, SmsSender):
        raise TypeError(f"YIFANG_SMS_BACKEND={spec}: {sender!r} has no send(phone, text)")
    return sender


class Mailer:
    """Sends plain-text UTF-8 mail through the configured SMTP server."""

    def __init__(self, settings: RespondSettings | None = None) -> None:
        self.settings = settings or get_respond_settings()

    @property
    def configured(self) -> bool:
        """Whether an SMTP host is set (no host: email is skipped, not failed)."""
        return bool(self.settings.smtp_host)

    def send(self, messages: Sequence[tuple[Sequence[str], str, str]]) -> None:
        """Send ``(recipients, subject, body)`` messages over one SMTP connection."""
        s = self.settings
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout) as smtp:
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password)
            for to, subject, body in messages:
                msg = EmailMessage()
                msg["From"] = s.smtp_from
                msg["To"] = ", ".join(to)
                msg["Subject"] = subject
                msg["Date"] = formatdate(localtime=False)
                msg["Message-ID"] = make_msgid(domain="yifang")
                msg.set_content(body)
                smtp.send_message(msg)


def notify(
    session: Session,
    *,
    kind: str,
    title: str,
    body: str = "",
    recipient_kind: str,
    recipient_code: str,
    region_code: str | None = None,
    entity_type: str | None = None,
    entity_id: int | None = None,
) -> Notification:
    """Queue one notification in the caller's transaction; channels come from the kind."""
    if recipient_kind not in RECIPIENT_KINDS:
        raise ValueError(f"recipient_kind {recipient_kind!r} not one of {RECIPIENT_KINDS}")
    channels = response_config().channels.get(kind, ["app"])
    row = Notification(
        recipient_kind=recipient_kind,
        recipient_code=recipient_code,
        region_code=region_code,
        kind=kind,
        title=title[:200],
        body=body,
        entity_type=entity_type,
        entity_id=entity_id,
        email_status="pending" if "email" in channels else None,
        sms_status="pending" if "sms" in channels else None,
        attempts=0,
    )
    session.add(row)
    return row


def addressed_to(
    username: str,
    organisation_code: str | None,
    department: str | None,
    region_code: str | None,
) -> ColumnElement[bool]:
    """The SQL condition selecting the notifications a user receives: their own, their
    organisation's and their department's within their region."""
    conditions: list[ColumnElement[bool]] = [
        and_(Notification.recipient_kind == "user", Notification.recipient_code == username)
    ]
    if organisation_code:
        conditions.append(
            and_(
                Notification.recipient_kind == "organisation",
                Notification.recipient_code == organisation_code,
            )
        )
    if department:
        owner = and_(
            Notification.recipient_kind == "owner", Notification.recipient_code == department
        )
        if region_code:
            owner = and_(owner, Notification.region_code.startswith(region_code, autoescape=True))
        conditions.append(owner)
    return or_(false(), *conditions)


@dataclass(frozen=True)
class DeliveryReport:
    """What one delivery pass did (counts of notifications)."""

    email_sent: int = 0
    email_failed: int = 0
    sms_sent: int = 0
    sms_failed: int = 0
    no_address: int = 0


def _addresses(session: Session, row: Notification) -> list[NotificationAddress]:
    stmt = select(NotificationAddress).where(
        NotificationAddress.recipient_kind == row.recipient_kind,
        NotificationAddress.recipient_code == row.recipient_code,
        NotificationAddress.active.is_(True),
    )
    return list(session.scalars(stmt))


def _phones(
    session: Session, row: Notification, addresses: Iterable[NotificationAddress]
) -> list[str]:
    phones = [a.phone for a in addresses if a.phone]
    if not phones and row.recipient_kind == "user":
        user = session.scalars(select(User).where(User.username == row.recipient_code)).first()
        if user is not None and user.phone:
            phones.append(user.phone)
    return phones


def deliver_pending(
    session: Session,
    *,
    mailer: Mailer | None = None,
    sms: SmsSender | None = None,
    limit: int = 500,
    now: datetime | None = None,
) -> DeliveryReport:
    """Send the pending email and SMS of up to ``limit`` notifications, oldest first.

    Each notification's outcome is written to its row (``sent``, ``failed`` with the error,
    ``no_address``); failed ones are not retried automatically (an operator resets them).
    Email is skipped, and left pending, while no SMTP host is configured.
    """
    mailer = mailer or Mailer()
    sms = sms or sms_sender()
    now = now or utcnow()
    rows = list(
        session.scalars(
            select(Notification)
            .where(
                or_(Notification.email_status == "pending", Notification.sms_status == "pending")
            )
            .order_by(Notification.id)
            .limit(limit)
        )
    )
    counts = {"email_sent": 0, "email_failed": 0, "sms_sent": 0, "sms_failed": 0, "no_address": 0}
    mail_batch: list[tuple[Notification, list[str]]] = []
    for row in rows:
        addresses = _addresses(session, row)
        if row.sms_status == "pending":
            phones = _phones(session, row, addresses)
            if not phones:
                row.sms_status = "no_address"
                counts["no_address"] += 1
            else:
                try:
                    for phone in phones:
                        sms.send(phone, f"{row.title} {row.body}".strip()[:300])
                    row.sms_status = "sent"
                    counts["sms_sent"] += 1
                except Exception as exc:  # a gateway error must not stop the other messages
                    row.sms_status = "failed"
                    row.last_error = f"sms: {exc}"[:1000]
                    counts["sms_failed"] += 1
        if row.email_status == "pending" and mailer.configured:
            emails = [a.email for a in addresses if a.email]
            if not emails:
                row.email_status = "no_address"
                counts["no_address"] += 1
            else:
                mail_batch.append((row, emails))
        row.attempts = (row.attempts or 0) + 1
    if mail_batch:
        try:
            mailer.send([(to, row.title, row.body or row.title) for row, to in mail_batch])
            for row, _ in mail_batch:
                row.email_status = "sent"
            counts["email_sent"] += len(mail_batch)
        except (OSError, smtplib.SMTPException) as exc:
            for row, _ in mail_batch:
                row.email_status = "failed"
                row.last_error = f"email: {exc}"[:1000]
            counts["email_failed"] += len(mail_batch)
    session.flush()
    return DeliveryReport(**counts)


def set_address(
    session: Session,
    *,
    recipient_kind: str,
    recipient_code: str,
    email: str | None = None,
    phone: str | None = None,
) -> NotificationAddress:
    """Add (or re-activate) an email/phone address of a recipient."""
    if recipient_kind not in RECIPIENT_KINDS:
        raise ValueError(f"recipient_kind {recipient_kind!r} not one of {RECIPIENT_KINDS}")
    if email is not None and ("@" not in email or len(email) > 255):
        raise ValueError(f"email {email!r} is not an address")
    row = session.scalars(
        select(NotificationAddress).where(
            NotificationAddress.recipient_kind == recipient_kind,
            NotificationAddress.recipient_code == recipient_code,
            NotificationAddress.email == email,
        )
    ).first()
    if row is None:
        row = NotificationAddress(
            recipient_kind=recipient_kind, recipient_code=recipient_code, email=email
        )
        session.add(row)
    row.phone = phone
    row.active = True
    session.flush()
    return row
