"""`yifang cards …` commands (assembled into the one CLI by ``yifang.cli``).

List, show, review and return cards, list the overdue ones and the suspected duplicates, and
export any number of cards to CSV or XLSX. Personal data are masked unless ``--reveal``
(audited). ``--user``, ``--scope-region`` and ``--scope-org`` say who acts and what part of
the data they may see (the whole city by default, as for the CDC's operators).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from yifang.cases import duplicates, queries, service
from yifang.core.audit import record
from yifang.core.db import session_scope
from yifang.core.jurisdiction import Scope

app = typer.Typer(no_args_is_help=True, help="Report cards: list, show, review, export.")
console = Console()
errors = Console(stderr=True)

User = Annotated[
    str,
    typer.Option("--user", envvar="YIFANG_USER", help="Who acts (written in the audit trail)."),
]
ScopeRegion = Annotated[
    str | None,
    typer.Option("--scope-region", help="Only cards of this region-code prefix (jurisdiction)."),
]
ScopeOrg = Annotated[
    str | None,
    typer.Option("--scope-org", help="Only cards reported by this organisation."),
]
Reveal = Annotated[bool, typer.Option("--reveal", help="Show personal data unmasked (audited).")]


def _scope(user: str, region: str | None, org: str | None) -> Scope:
    return Scope(region_prefix=region or None, organisation_code=org or None, actor=user)


def _default_user() -> str:
    return os.environ.get("USER") or "cli"


@contextmanager
def _session() -> Iterator[Session]:
    """A committed session; the capability's errors end the command with their message."""
    try:
        with session_scope() as session:
            yield session
    except service.CardError as exc:
        errors.print(f"[red]{exc.message_zh}[/red] ({exc.code})\n{exc.message_en}", markup=True)
        for f in exc.fields:
            errors.print(f"  {f.field}: {f.message_zh} / {f.message_en}")
        raise typer.Exit(1) from None


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


_LIST_COLUMNS = (
    ("id", "ID"),
    ("card_number", "卡片编号"),
    ("patient_name", "姓名"),
    ("sex", "性别"),
    ("disease_code", "疾病"),
    ("classification", "分类"),
    ("address_code", "现住址"),
    ("org_code", "报告单位"),
    ("diagnosis_time", "诊断时间"),
    ("status", "状态"),
    ("review_due_at", "审核期限"),
)


def _table(items: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, header_style="bold")
    for _, label in _LIST_COLUMNS:
        table.add_column(label)
    for c in items:
        row = []
        for key, _ in _LIST_COLUMNS:
            value = c.get(key)
            if key == "status":
                value = service.STATUS_LABELS.get(str(value), value)
            row.append(_fmt(value))
        table.add_row(*row)
    return table


def _page_footer(page: queries.CardPage) -> None:
    if page.next_cursor:
        console.print(f"[dim]more: --cursor {page.next_cursor}[/dim]")


def _parse_day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=name) from None


def _filter(
    disease: list[str] | None,
    region: str | None,
    org: str | None,
    status: list[str] | None,
    classification: list[str] | None,
    date_from: str | None,
    date_to: str | None,
    onset_from: str | None,
    onset_to: str | None,
    number: str | None,
) -> queries.CardFilter:
    for s in status or ():
        if s not in service.STATUSES:
            raise typer.BadParameter(
                f"{s!r}: use one of {', '.join(service.STATUSES)}", param_hint="--status"
            )
    return queries.CardFilter(
        disease_codes=disease or (),
        region_prefix=region,
        org_code=org,
        statuses=status or (),
        classifications=classification or (),
        diagnosis_from=_parse_day(date_from, "--from"),
        diagnosis_to=_parse_day(date_to, "--to"),
        onset_from=_parse_day(onset_from, "--onset-from"),
        onset_to=_parse_day(onset_to, "--onset-to"),
        card_number=number,
    )


# Filter options, shared by list and export.
Disease = Annotated[list[str] | None, typer.Option("--disease", "-d", help="Disease code.")]
Region = Annotated[str | None, typer.Option("--region", "-r", help="Address code prefix.")]
Org = Annotated[str | None, typer.Option("--org", help="Reporting organisation code.")]
Status = Annotated[list[str] | None, typer.Option("--status", "-s", help="Card status.")]
Classification = Annotated[list[str] | None, typer.Option("--classification", help="病例分类.")]
DateFrom = Annotated[str | None, typer.Option("--from", help="Diagnosed on or after (date).")]
DateTo = Annotated[str | None, typer.Option("--to", help="Diagnosed on or before (date).")]
OnsetFrom = Annotated[str | None, typer.Option("--onset-from", help="Onset on or after.")]
OnsetTo = Annotated[str | None, typer.Option("--onset-to", help="Onset on or before.")]
Number = Annotated[str | None, typer.Option("--number", help="Card number prefix.")]


@app.command("list")
def list_cmd(
    disease: Disease = None,
    region: Region = None,
    org: Org = None,
    status: Status = None,
    classification: Classification = None,
    date_from: DateFrom = None,
    date_to: DateTo = None,
    onset_from: OnsetFrom = None,
    onset_to: OnsetTo = None,
    number: Number = None,
    limit: Annotated[int, typer.Option(min=1, max=queries.MAX_PAGE_SIZE)] = 50,
    cursor: Annotated[str | None, typer.Option(help="Continue after a previous page.")] = None,
    reveal: Reveal = False,
    user: User = _default_user(),
    scope_region: ScopeRegion = None,
    scope_org: ScopeOrg = None,
) -> None:
    """List cards, newest diagnosis first (masked; one page, then a cursor for the next)."""
    flt = _filter(disease, region, org, status, classification, date_from, date_to,
                  onset_from, onset_to, number)  # fmt: skip
    with _session() as session:
        page = queries.list_cards(
            session, _scope(user, scope_region, scope_org), flt, cursor=cursor, limit=limit,
            reveal=reveal,
        )  # fmt: skip
        console.print(_table(page.items, f"{len(page.items)} cards"))
        _page_footer(page)


@app.command("show")
def show_cmd(
    card_id: Annotated[int, typer.Argument(help="Card id.")],
    reveal: Reveal = False,
    user: User = _default_user(),
    scope_region: ScopeRegion = None,
    scope_org: ScopeOrg = None,
) -> None:
    """One card, field by field, with its history."""
    with _session() as session:
        scope = _scope(user, scope_region, scope_org)
        values = queries.view_card(session, scope, card_id, reveal=reveal)
        table = Table(show_header=False, title=f"card {card_id}")
        table.add_column("field", style="bold")
        table.add_column("value")
        for key, value in values.items():
            table.add_row(key, _fmt(value))
        console.print(table)
        hist = Table(title="history", header_style="bold")
        for col in ("version", "action", "actor", "at", "reason"):
            hist.add_column(col)
        for r in service.history(session, card_id):
            hist.add_row(str(r.version), r.action, r.actor, _fmt(r.at), r.reason or "")
        console.print(hist)


@app.command("overdue")
def overdue_cmd(
    limit: Annotated[int, typer.Option(min=1, max=queries.MAX_PAGE_SIZE)] = 50,
    cursor: Annotated[str | None, typer.Option()] = None,
    user: User = _default_user(),
    scope_region: ScopeRegion = None,
    scope_org: ScopeOrg = None,
) -> None:
    """Submitted cards past their review time limit."""
    with _session() as session:
        page = queries.overdue(
            session, _scope(user, scope_region, scope_org), cursor=cursor, limit=limit
        )
        console.print(_table(page.items, f"{len(page.items)} overdue cards"))
        _page_footer(page)


def _current_version(session: Session, scope: Scope, card_id: int, given: int | None) -> int:
    return given if given is not None else queries.get_card(session, scope, card_id).version


Version = Annotated[
    int | None,
    typer.Option(help="The version you saw (refused if the card changed since); default: now."),
]


@app.command("review")
def review_cmd(
    card_id: Annotated[int, typer.Argument(help="Card id.")],
    version: Version = None,
    user: User = _default_user(),
    scope_region: ScopeRegion = None,
    scope_org: ScopeOrg = None,
) -> None:
    """Review (审核) a submitted card: it becomes final (已终审)."""
    with _session() as session:
        scope = _scope(user, scope_region, scope_org)
        v = _current_version(session, scope, card_id, version)
        card = service.review_card(session, card_id, version=v, scope=scope)
        console.print(f"[green]card {card.id} reviewed[/green] (version {card.version})")


@app.command("return")
def return_cmd(
    card_id: Annotated[int, typer.Argument(help="Card id.")],
    reason: Annotated[str, typer.Option("--reason", help="退卡原因.")],
    version: Version = None,
    user: User = _default_user(),
    scope_region: ScopeRegion = None,
    scope_org: ScopeOrg = None,
) -> None:
    """Return (退卡) a submitted card to its reporter with a reason."""
    with _session() as session:
        scope = _scope(user, scope_region, scope_org)
        v = _current_version(session, scope, card_id, version)
        card = service.return_card(session, card_id, version=v, scope=scope, reason=reason)
        console.print(f"[yellow]card {card.id} returned[/yellow]: {reason}")


@app.command("export")
def export_cmd(
    out: Annotated[Path, typer.Argument(help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv or xlsx.")] = "csv",
    disease: Disease = None,
    region: Region = None,
    org: Org = None,
    status: Status = None,
    classification: Classification = None,
    date_from: DateFrom = None,
    date_to: DateTo = None,
    onset_from: OnsetFrom = None,
    onset_to: OnsetTo = None,
    number: Number = None,
    reveal: Reveal = False,
    user: User = _default_user(),
    scope_region: ScopeRegion = None,
    scope_org: ScopeOrg = None,
) -> None:
    """Export the filtered cards, streamed by keyset (any number; CSV in UTF-8 with BOM)."""
    if fmt not in ("csv", "xlsx"):
        raise typer.BadParameter("use csv or xlsx", param_hint="--format")
    flt = _filter(disease, region, org, status, classification, date_from, date_to,
                  onset_from, onset_to, number)  # fmt: skip
    scope = _scope(user, scope_region, scope_org)
    with _session() as session:
        show = queries.may_reveal(session, scope, reveal, [])
        record(
            session,
            actor=scope.actor,
            action="card.export",
            entity_type="card",
            entity_id="export",
            after={"format": fmt, "reveal": show, "file": str(out)},
        )
        session.commit()
        if fmt == "csv":
            with out.open("w", encoding="utf-8-sig", newline="") as handle:
                n = queries.write_csv(session, scope, flt, handle, reveal=show)
        else:
            n = queries.write_xlsx(session, scope, flt, out, reveal=show)
    console.print(f"[green]{n} cards[/green] → {out}")


@app.command("duplicates")
def duplicates_cmd(
    all_flags: Annotated[bool, typer.Option("--all", help="Include decided flags.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    after: Annotated[int | None, typer.Option(help="Flags after this id.")] = None,
    user: User = _default_user(),
    scope_region: ScopeRegion = None,
    scope_org: ScopeOrg = None,
) -> None:
    """Suspected duplicate cards (重卡) awaiting merge or keep."""
    with _session() as session:
        rows = duplicates.list_flags(
            session, _scope(user, scope_region, scope_org), open_only=not all_flags,
            after_id=after, limit=limit,
        )  # fmt: skip
        table = Table(title=f"{len(rows)} duplicate flags", header_style="bold")
        for col in ("flag", "rule", "score", "later card", "earlier card", "patient", "disease",
                    "decision"):  # fmt: skip
            table.add_column(col)
        for r in rows:
            a, b = r["card"], r["other_card"]
            table.add_row(
                str(r["id"]), r["rule"], f"{r['score']:.2f}",
                f"{a['id']} {a['card_number']}", f"{b['id']} {b['card_number']}",
                f"{a['patient_name']} / {b['patient_name']}",
                f"{a['disease_code']} / {b['disease_code']}", r["decision"] or "",
            )  # fmt: skip
        console.print(table)


@app.command("resolve")
def resolve_cmd(
    flag_id: Annotated[int, typer.Argument(help="Duplicate flag id.")],
    decision: Annotated[str, typer.Argument(help="merge or keep.")],
    note: Annotated[str | None, typer.Option(help="Why.")] = None,
    user: User = _default_user(),
    scope_region: ScopeRegion = None,
    scope_org: ScopeOrg = None,
) -> None:
    """Decide a duplicate flag: merge (delete the later card as 重复报告) or keep both."""
    with _session() as session:
        flag = duplicates.resolve(
            session, flag_id, decision, scope=_scope(user, scope_region, scope_org), note=note
        )
        console.print(f"flag {flag.id}: {flag.decision}")
