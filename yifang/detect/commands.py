"""``yifang detect …`` commands (assembled into the one CLI by ``yifang.cli``)."""

from __future__ import annotations

from datetime import date

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from yifang.core.db import session_scope
from yifang.detect.engine import run_detection

app = typer.Typer(no_args_is_help=True, help="Early-warning detection.")
console = Console()


@app.command("run")
def run(
    as_of: str = typer.Option(date.today().isoformat(), help="Analysis date (YYYY-MM-DD)."),
    days: int = typer.Option(1, min=1, max=3660, help="Days ending on --as-of to evaluate."),
    incremental: bool = typer.Option(False, help="Only what changed since the last run."),
) -> None:
    """Run every configured detection rule and record signals."""
    try:
        day = date.fromisoformat(as_of)
    except ValueError:
        console.print(f"[red]--as-of must be a date YYYY-MM-DD, got {as_of!r}[/red]")
        raise typer.Exit(2) from None
    with Progress(console=console, transient=True) as progress, session_scope() as session:
        task = progress.add_task("detecting", total=None)

        def tick(name: str, step: int, total: int) -> None:
            progress.update(task, total=total, completed=step, description=f"rule {name}")

        report = run_detection(
            session, as_of=day, days=days, incremental=incremental, progress=tick
        )
    table = Table(title=f"detection as of {day}")
    for col in ("series", "alarms", "new signals", "updated signals"):
        table.add_column(col, justify="right")
    table.add_row(
        str(report.series),
        str(report.alarms),
        str(report.signals_new),
        str(report.signals_updated),
    )
    console.print(table)
    if report.skipped_rules:
        console.print(f"[yellow]rules skipped (method not available): {report.skipped_rules}")
