"""The one ``yifang`` command: each capability contributes its sub-commands."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from yifang.cases.commands import app as cases_app
from yifang.catalog.commands import app as catalog_app
from yifang.core.db import get_engine
from yifang.core.migrate import upgrade
from yifang.detect.commands import app as detect_app
from yifang.hospital.commands import app as hospital_app
from yifang.respond.commands import app as respond_app
from yifang.simulate.commands import app as simulate_app

console = Console()
app = typer.Typer(no_args_is_help=True, help="Yifang 医防: surveillance, early warning, response.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")
app.add_typer(catalog_app, name="catalog", help="Reference data: diseases, regions, organisations.")
app.add_typer(cases_app, name="cards", help="Report cards: list, show, review, export.")
app.add_typer(detect_app, name="detect", help="Early-warning detection.")
app.add_typer(simulate_app, name="simulate", help="The simulated city.")
app.add_typer(respond_app, name="respond", help="Verification, events, tasks, notifications.")
app.add_typer(hospital_app, name="hospital", help="Hospital intake, case rules, drafts, syndromes.")


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Create or migrate the database schema to the newest revision."""
    engine = get_engine()
    upgrade(engine, revision)
    console.print(f"[green]database at {revision}[/green]: {engine.url.render_as_string()}")


@db_app.command("revision")
def db_revision(
    message: str = typer.Argument(..., help="What the migration changes."),
    rev_id: str | None = typer.Option(None, help="Revision id (default: random)."),
) -> None:
    """Write a new migration by comparing the tables with a database at the newest revision."""
    import tempfile

    from yifang.core.db import make_engine
    from yifang.core.migrate import revision

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/compare.db"
        upgrade(make_engine(url))
        revision(message, url, rev_id)


@app.command("import")
def import_cards(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="CSV (UTF-8 or GB18030), XLSX or JSON Lines."
    ),
    actor: str = typer.Option("system", help="Who imports (recorded on the batch and cards)."),
    force: bool = typer.Option(False, help="Read the file even if it was imported before."),
    errors: Path | None = typer.Option(
        None, "--errors", help="Write the quarantined rows and their errors (.csv or .xlsx)."
    ),
) -> None:
    """Import report cards from a file; invalid rows are quarantined with every error."""
    from yifang.cases.importing import run_cli_import

    code = run_cli_import(
        get_engine(), file, console=console, actor=actor, force=force, errors_path=errors
    )
    raise typer.Exit(code)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
) -> None:
    """Serve the web UI and API."""
    import uvicorn

    from yifang.web.app import create_app

    uvicorn.run(create_app(), host=host, port=port)


evaluate_app = typer.Typer(no_args_is_help=True, help="Score detection on simulated data.")
app.add_typer(evaluate_app, name="evaluate")


@evaluate_app.command("noufaily")
def evaluate_noufaily_cmd(
    methods: str = typer.Option("farrington,noufaily,ears_c3", help="Comma-separated methods."),
    scenarios: str = typer.Option("", help="Scenario numbers, e.g. 1-14,20 (default: all 42)."),
    series: int = typer.Option(100, min=5, max=10000, help="Simulated series per scenario."),
    seed: int = typer.Option(1, help="Seed of the simulation."),
    out: Path = typer.Option(Path("evaluation"), help="Folder for the table and the plot."),
) -> None:
    """Score the detection methods on the Noufaily et al. (2013) scenarios."""
    import csv
    from dataclasses import asdict

    from rich.progress import Progress
    from rich.table import Table

    from yifang.evaluate import evaluate_noufaily, plot_curves, summarise

    try:
        numbers = _parse_numbers(scenarios) if scenarios else None
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("evaluating", total=None)
            rows = evaluate_noufaily(
                [m.strip() for m in methods.split(",") if m.strip()],
                numbers,
                series,
                seed,
                progress=lambda msg: progress.update(task, description=msg),
            )
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    summary = summarise(rows)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "scores.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(asdict(rows[0])))
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    table = Table(title="mean over scenarios")
    for col in ("method", "alpha", "FPR", "POD", "sensitivity", "delay (weeks)"):
        table.add_column(col, justify="right")
    for r in summary:
        table.add_row(
            r.method,
            f"{r.alpha:g}",
            f"{r.fpr:.4f}",
            f"{r.pod:.3f}",
            f"{r.sensitivity:.3f}",
            f"{r.mean_delay_weeks:.2f}",
        )
    console.print(table)
    plot = plot_curves(summary, out / "pod_vs_fpr.png")
    console.print(f"scores: {out / 'scores.csv'}  plot: {plot}")


@evaluate_app.command("city")
def evaluate_city_cmd(
    days: int = typer.Option(365, min=7, max=3660, help="Days ending on --as-of to score."),
    as_of: str = typer.Option("", help="Last day (default: the simulation's last day)."),
    detect_first: bool = typer.Option(True, "--detect/--no-detect", help="Run detection first."),
) -> None:
    """Score the engine's signals against the simulated city's injected outbreaks."""
    from datetime import date, timedelta

    from rich.table import Table
    from sqlalchemy import func, select

    from yifang.core.db import session_scope
    from yifang.detect.engine import run_detection
    from yifang.evaluate import evaluate_city
    from yifang.simulate.models import SimRun

    with session_scope() as session:
        last = session.scalar(select(func.max(SimRun.end_date)))
        if last is None and not as_of:
            console.print("[red]no simulated city in this database: run `yifang simulate`[/red]")
            raise typer.Exit(2)
        try:
            end = date.fromisoformat(as_of) if as_of else last
        except ValueError:
            console.print(f"[red]--as-of must be a date YYYY-MM-DD, got {as_of!r}[/red]")
            raise typer.Exit(2) from None
        assert end is not None
        start = end - timedelta(days=days - 1)
        if detect_first:
            with console.status(f"running detection over {days} days …"):
                run_detection(session, as_of=end, days=days)
        scores = evaluate_city(session, start=start, end=end)
    table = Table(title=f"signals against injected outbreaks, {start} .. {end}")
    for col in ("rule", "POD", "found", "signals", "false", "false /100 region-weeks", "days"):
        table.add_column(col, justify="right")
    for r in scores:
        table.add_row(
            r.rule,
            f"{r.pod:.2f}",
            f"{r.detected}/{r.outbreaks}",
            str(r.signals),
            str(r.false_signals),
            f"{r.false_per_100_region_weeks:.2f}",
            f"{r.median_days_to_signal:.0f}",
        )
    console.print(table)


def _parse_numbers(spec: str) -> list[int]:
    """'1-3,7' → [1, 2, 3, 7]; raises ValueError on anything else."""
    numbers: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.strip().partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise ValueError(f"bad scenario list {spec!r}: use numbers and ranges like 1-14,20")
        numbers.extend(range(int(lo), int(hi or lo) + 1))
    return numbers


@app.command()
def demo(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
    years: float = typer.Option(3.0, min=0.5, max=10, help="Years of the simulated city."),
    seed: int = typer.Option(20260101, help="Seed of the simulation."),
    days: int = typer.Option(90, min=1, max=730, help="Days of detection to back-fill."),
    fresh: bool = typer.Option(False, help="Rebuild the simulated city even if it exists."),
    streams: bool = typer.Option(
        True,
        help="Also simulate hospital encounters (syndromes, draft cards) and the other streams "
        "(school absence, pharmacy, ILI%, multiplex, livestock), so signals of every source "
        "and their corroboration show; about a minute and a half more.",
    ),
    serve_ui: bool = typer.Option(True, "--serve/--no-serve", help="Serve the UI at the end."),
) -> None:
    """Build the simulated Zhongwei into the database, run detection and serve the UI."""
    from datetime import date, timedelta

    from rich.table import Table
    from sqlalchemy import func, select

    from yifang.cases.models import Card
    from yifang.catalog.service import load_all
    from yifang.core.accounts import create_demo_users
    from yifang.core.db import session_scope
    from yifang.detect.engine import run_detection
    from yifang.respond.jobs import run_jobs
    from yifang.simulate.service import build_city

    engine = get_engine()
    console.print(f"database: {engine.url.render_as_string()}")
    upgrade(engine)
    with session_scope() as session:
        report = load_all(session)
        console.print(f"catalog loaded ({report.changed} rows changed)")
        logins = create_demo_users(session)
    end = date.today() - timedelta(days=1)
    with session_scope() as session:
        cards = session.scalar(select(func.count()).select_from(Card)) or 0
        if (fresh or cards == 0) and streams:
            import tempfile

            from yifang.evaluate import build_multisource_city

            with (
                console.status(f"simulating {years:g} years of the city …") as status,
                tempfile.TemporaryDirectory(prefix="yifang-extracts-") as extracts,
            ):
                city = build_multisource_city(
                    session,
                    Path(extracts),
                    years=years,
                    seed=seed,
                    end_date=end,
                    progress=lambda text: status.update(text + " …"),
                )
            console.print(
                f"simulated {city.cards:,} cards, {city.outbreaks} outbreaks, "
                f"{city.encounters:,} hospital encounters ({city.drafts:,} draft cards), "
                f"{city.stream_rows:,} observations of other streams"
            )
        elif fresh or cards == 0:
            with console.status(f"simulating {years:g} years of the city …"):
                sim = build_city(session, years=years, seed=seed, end_date=end)
            console.print(
                f"simulated {sim.cards:,} cards, {sim.outbreaks} outbreaks ({sim.seconds:.1f} s)"
            )
        else:
            console.print(f"{cards:,} cards already in the database (--fresh rebuilds them)")
    with session_scope() as session:
        with console.status(f"running detection over the last {days} days …"):
            det = run_detection(session, as_of=end, days=days)
        console.print(
            f"detection: {det.series:,} series, {det.signals_new} new signals, "
            f"{det.signals_updated} updated"
        )
        jobs = run_jobs(session)
        console.print(f"verifications opened for {jobs.verifications_opened} signals")
    table = Table(title="demo logins (one per role)")
    for col in ("user", "password", "role"):
        table.add_column(col)
    for username, password, role in logins:
        table.add_row(username, password, role)
    console.print(table)
    url = f"http://{host}:{port}/"
    console.print(f"[bold green]Yifang is at {url}[/bold green]  (API docs: {url}api/docs)")
    if serve_ui:
        serve(host=host, port=port)


if __name__ == "__main__":
    app()
