"""``yifang respond …`` commands (assembled into the one CLI by ``yifang.cli``)."""

from __future__ import annotations

from datetime import datetime

import typer
from rich.console import Console
from rich.table import Table

from yifang.core.db import session_scope, utcnow

app = typer.Typer(no_args_is_help=True, help="Response: verification, events, tasks, notices.")
console = Console()


def _now(at: str | None) -> datetime:
    if not at:
        return utcnow()
    try:
        return datetime.fromisoformat(at)
    except ValueError:
        console.print(f"[red]--at must be an ISO time (UTC), e.g. 2026-06-01T08:00, got {at!r}")
        raise typer.Exit(2) from None


AT = typer.Option(None, "--at", help="Pretend it is this UTC time (YYYY-MM-DDTHH:MM).")


@app.command("open")
def open_cmd(at: str | None = AT) -> None:
    """Create verifications for open signals that have none (run after detection)."""
    from yifang.respond.service import open_verifications

    with session_scope() as session:
        made = open_verifications(session, _now(at))
        console.print(f"{len(made)} verification(s) opened")


@app.command("escalate")
def escalate_cmd(at: str | None = AT) -> None:
    """Escalate overdue verifications to the parent CDC and overdue tasks to their owners'
    superiors."""
    from yifang.respond.service import escalate_overdue
    from yifang.respond.tasks import remind_and_escalate

    now = _now(at)
    with session_scope() as session:
        rows = escalate_overdue(session, now)
        report = remind_and_escalate(session, now)
        console.print(
            f"{len(rows)} verification(s) escalated; tasks: {report.reminded} reminded, "
            f"{report.overdue} overdue, {report.escalated} escalated"
        )


@app.command("deliver")
def deliver_cmd(limit: int = typer.Option(500, min=1, help="Notifications per run.")) -> None:
    """Send pending email and SMS notifications."""
    from yifang.respond.notifications import deliver_pending

    with session_scope() as session:
        r = deliver_pending(session, limit=limit)
    console.print(
        f"email: {r.email_sent} sent, {r.email_failed} failed; sms: {r.sms_sent} sent, "
        f"{r.sms_failed} failed; {r.no_address} without address"
    )


@app.command("tick")
def tick_cmd(at: str | None = AT) -> None:
    """The periodic job: open, escalate, remind, end follow-ups, then deliver notices."""
    from yifang.respond.jobs import run_jobs
    from yifang.respond.notifications import deliver_pending

    with session_scope() as session:
        report = run_jobs(session, _now(at))
    with session_scope() as session:
        delivered = deliver_pending(session)
    table = Table(title="respond tick")
    table.add_column("step")
    table.add_column("count", justify="right")
    for name, value in vars(report).items():
        table.add_row(name.replace("_", " "), str(value))
    table.add_row("email sent", str(delivered.email_sent))
    table.add_row("sms sent", str(delivered.sms_sent))
    console.print(table)


@app.command("verifications")
def verifications_cmd(
    overdue: bool = typer.Option(False, help="Only pending verifications past due."),
    status: str | None = typer.Option(None, help="pending, dismissed, watching, suspected"),
    limit: int = typer.Option(50, min=1, max=1000),
) -> None:
    """List verifications (all jurisdictions)."""
    from yifang.respond.service import Viewer, list_verifications

    with session_scope() as session:
        rows = list_verifications(
            session, Viewer.system(), status=status, overdue=overdue or None, limit=limit
        )
        table = Table(title="verifications")
        for col in ("id", "signal", "disease", "region", "CDC", "status", "due (UTC)", "escalated"):
            table.add_column(col)
        for v in rows:
            table.add_row(
                str(v.id),
                str(v.signal_id),
                v.disease_code or v.series_name_zh,
                v.region_code,
                v.organisation_code or "-",
                v.status,
                f"{v.due_at:%Y-%m-%d %H:%M}",
                v.escalated_to or "",
            )
        console.print(table)


@app.command("events")
def events_cmd(
    status: list[str] = typer.Option([], help="Repeat for several states."),
    limit: int = typer.Option(50, min=1, max=1000),
) -> None:
    """List events (all jurisdictions)."""
    from yifang.respond.service import Viewer, list_events

    with session_scope() as session:
        rows = list_events(session, Viewer.system(), status=status, limit=limit)
        table = Table(title="events")
        for col in ("id", "number", "title", "disease", "region", "status", "level"):
            table.add_column(col)
        for e in rows:
            table.add_row(
                str(e.id),
                e.number,
                e.title,
                e.disease_code or "-",
                e.region_code,
                e.status,
                e.level or "",
            )
        console.print(table)


@app.command("plans")
def plans_cmd(reload: bool = typer.Option(False, help="Reload plans.yaml (keeps edits).")) -> None:
    """List the response plan templates."""
    from yifang.respond.tasks import list_templates, load_templates

    with session_scope() as session:
        if reload:
            console.print(f"{load_templates(session)} template(s) added or refreshed")
        table = Table(title="plan templates")
        for col in ("code", "name", "matches", "levels", "tasks", "edited by"):
            table.add_column(col)
        for t in list_templates(session):
            matches = ", ".join([*t.event_types, *t.diseases, *t.tags]) or "every event"
            table.add_row(
                t.code,
                t.name_zh,
                matches,
                ", ".join(t.levels) or "any",
                str(len(t.tasks)),
                t.edited_by or "",
            )
        console.print(table)


@app.command("address")
def address_cmd(
    kind: str = typer.Argument(..., help="user, organisation or owner"),
    code: str = typer.Argument(..., help="user name, organisation code or owner code"),
    email: str | None = typer.Option(None),
    phone: str | None = typer.Option(None),
) -> None:
    """Set where a recipient receives email and SMS notifications."""
    from yifang.respond.notifications import set_address

    try:
        with session_scope() as session:
            set_address(session, recipient_kind=kind, recipient_code=code, email=email, phone=phone)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"address of {kind} {code} saved")


@app.command("report")
def report_cmd(
    event_id: int = typer.Argument(...),
    out: str = typer.Option("", help="Output file (default event-<id>.docx)."),
) -> None:
    """Write an event's final report as a Word document."""
    from pathlib import Path

    from yifang.respond.report import event_report_docx
    from yifang.respond.service import RespondError, Viewer

    try:
        with session_scope() as session:
            data = event_report_docx(session, Viewer.system(), event_id)
    except RespondError as exc:
        console.print(f"[red]{exc.message_zh} / {exc.message_en}[/red]")
        raise typer.Exit(1) from None
    path = Path(out or f"event-{event_id}.docx")
    path.write_bytes(data)
    console.print(f"report written: {path} ({len(data):,} bytes)")
