"""``yifang hospital …`` commands (assembled into the one CLI by ``yifang.cli``)."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from yifang.core.db import session_scope

app = typer.Typer(no_args_is_help=True, help="Hospital front end: intake, drafts, syndromes.")
rules_app = typer.Typer(no_args_is_help=True, help="Case-identification and syndrome rules.")
app.add_typer(rules_app, name="rules")
console = Console()


@rules_app.command("load")
def rules_load() -> None:
    """Load the rules' data files (rules the CDC edited are kept)."""
    from yifang.hospital.rules import RuleError, load_rules

    try:
        with session_scope() as session:
            report = load_rules(session)
    except RuleError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(
        f"rules: {report.added} added, {report.refreshed} refreshed, "
        f"{report.kept_edited} edited ones kept"
    )


@rules_app.command("list")
def rules_list(kind: str = typer.Option("", help="icd10, lab, sign, syndrome, negation.")) -> None:
    """List the rules."""
    from yifang.hospital.rules import list_rules, ruleset

    with session_scope() as session:
        ruleset(session)
        rows = list_rules(session, kind or None)
        table = Table()
        for col in ("kind", "code", "active", "edited by", "definition"):
            table.add_column(col)
        for r in rows:
            text = json.dumps(r.definition, ensure_ascii=False)
            table.add_row(r.kind, r.code, "yes" if r.active else "no", r.edited_by or "", text[:90])
    console.print(table)


@app.command("mllp")
def mllp(
    host: str = typer.Option("0.0.0.0", help="Address to listen on."),
    port: int = typer.Option(2575, min=0, max=65535, help="TCP port (2575 is MLLP's)."),
) -> None:
    """Receive HL7 v2 messages over MLLP and answer each with its ACK."""
    from yifang.hospital.intake_hl7 import MLLPServer

    server = MLLPServer(host, port)

    async def run() -> None:
        bound = await server.start()
        console.print(f"[green]MLLP listening on {host}:{bound}[/green]")
        await server.serve_forever()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        console.print("stopped")


@app.command("ingest")
def ingest(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="HL7, FHIR JSON or CSV."),
    kind: str = typer.Option("auto", help="auto, hl7, fhir or csv."),
    org: str = typer.Option("", help="Hospital code the file speaks for (FHIR; CSV check)."),
) -> None:
    """Receive a file: HL7 v2 messages (one after another), a FHIR Bundle, or a CSV extract."""
    from yifang.hospital import intake_csv, intake_fhir, intake_hl7, service

    suffix = path.suffix.lower()
    if kind == "auto":
        kind = {".hl7": "hl7", ".txt": "hl7", ".json": "fhir", ".csv": "csv"}.get(suffix, "")
        if not kind:
            console.print("[red]cannot tell the format from the name: give --kind[/red]")
            raise typer.Exit(2)
    if kind == "csv":
        with session_scope() as session:
            report = intake_csv.ingest_csv(session, path, actor="cli", org_code=org or None)
        console.print(
            f"{report.kind}: {report.rows:,} rows, {report.stored:,} stored, "
            f"{report.rejected:,} left out; {report.figures}"
        )
        for error in report.errors[:20]:
            console.print(f"[yellow]{error.message_en}[/yellow]")
        return
    text = path.read_bytes()
    if kind == "hl7":
        counts: dict[str, int] = {}
        for _ack, received in intake_hl7.ingest_file(intake_hl7._decode(text), actor="cli"):
            counts[received.status] = counts.get(received.status, 0) + 1
            for problem in received.message.errors:
                mid = received.message.id
                console.print(f"[yellow]message {mid}: {problem['message_en']}[/yellow]")
        console.print(f"HL7 messages: {counts}")
        return
    if kind == "fhir":
        raw = text.decode("utf-8", errors="replace")
        with session_scope() as session:
            received = service.receive(
                session,
                source="fhir-file",
                raw=raw,
                parse=lambda: intake_fhir.parse_bundle(raw, org or None),
                actor="cli",
                org_code=org or None,
            )
            console.print(f"bundle: {received.status}")
            for problem in received.message.errors:
                console.print(f"[yellow]{problem['location']}: {problem['message_en']}[/yellow]")
        return
    console.print(f"[red]unknown --kind {kind!r}[/red]")
    raise typer.Exit(2)


@app.command("missed")
def missed(
    start: str = typer.Option("", help="Summary from this diagnosis date (YYYY-MM-DD)."),
    end: str = typer.Option("", help="Summary up to this date."),
) -> None:
    """Flag missed reports (漏报) and print each hospital's figures."""
    from yifang.hospital.drafts import missed_summary, scan_missed
    from yifang.hospital.rules import ruleset

    try:
        first = date.fromisoformat(start) if start else None
        last = date.fromisoformat(end) if end else None
    except ValueError:
        console.print("[red]dates must be YYYY-MM-DD[/red]")
        raise typer.Exit(2) from None
    with session_scope() as session:
        result = scan_missed(session, ruleset(session))
        rows = missed_summary(session, first, last)
    console.print(
        f"flagged {result.flagged}; drafts found reported {result.synced_reported}, "
        f"rejected {result.synced_rejected}, reported by hand {result.found_reported}"
    )
    table = Table(title="case finding per hospital")
    for col in ("hospital", "identified", "in time", "missed", "open", "missed %"):
        table.add_column(col, justify="right")
    for r in rows:
        rate = f"{100 * r['missed_rate']:.1f}" if r["missed_rate"] is not None else "-"
        table.add_row(
            r["org_code"],
            str(r["identified"]),
            str(r["reported_in_time"]),
            str(r["missed"]),
            str(r["missed_open"]),
            rate,
        )
    console.print(table)


@app.command("streams")
def streams(path: Path = typer.Argument(..., exists=True, dir_okay=False)) -> None:
    """Load observations of other streams from a CSV (stream, region_code, place, day,
    value, denominator, source; the simulator's streams.csv with place_id and date too)."""
    import polars as pl
    from pydantic import ValidationError

    from yifang.hospital.schemas import StreamIn
    from yifang.hospital.service import STREAM_ALIASES, put_observations, stream_definitions

    frame = pl.read_csv(path, infer_schema=False)
    frame = frame.rename(lambda c: STREAM_ALIASES.get(c.lstrip("\ufeff"), c.lstrip("\ufeff")))
    rows = []
    for line, raw in enumerate(frame.iter_rows(named=True), start=2):
        data = {k: v for k, v in raw.items() if v not in (None, "")}
        try:
            rows.append(StreamIn.model_validate(data))
        except ValidationError as exc:
            err = exc.errors()[0]
            console.print(f"[red]line {line}, {'.'.join(map(str, err['loc']))}: {err['msg']}[/red]")
            raise typer.Exit(2) from None
    try:
        with session_scope() as session:
            stored = put_observations(session, rows, stream_definitions())
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"{stored:,} observations stored")


@app.command("reprocess")
def reprocess(message_id: int = typer.Argument(..., help="Id of a kept message.")) -> None:
    """Run a kept HL7 or FHIR message again (after a failure or a rule fix)."""
    from yifang.hospital import intake_fhir, intake_hl7, service
    from yifang.hospital.models import IntakeMessage

    with session_scope() as session:
        message = session.get(IntakeMessage, message_id)
        if message is None:
            console.print(f"[red]no message {message_id}[/red]")
            raise typer.Exit(2)
        org = message.org_code
        if message.source.startswith("fhir"):
            received = service.reprocess(
                session, message_id, lambda raw: intake_fhir.parse_bundle(raw, org)
            )
        elif message.source.startswith("hl7"):
            received = service.reprocess(session, message_id, intake_hl7.parse_hl7)
        else:
            console.print("[red]only HL7 and FHIR messages can be re-run; re-import a CSV[/red]")
            raise typer.Exit(2)
        console.print(f"message {message_id}: {received.status}")
