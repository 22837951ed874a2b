"""``yifang detect …`` commands (assembled into the one CLI by ``yifang.cli``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from yifang.core.db import session_scope
from yifang.detect.engine import DEFAULT_BATCH_SIZE, Runner, run_detection

app = typer.Typer(no_args_is_help=True, help="Early-warning detection.")
console = Console()


@contextmanager
def _runner(dask: str) -> Iterator[Runner | None]:
    """No runner (here, in turn), a LocalCluster ("local" or "local:N" workers) or the
    Dask scheduler at an address."""
    if not dask:
        yield None
        return
    from yifang.detect.distributed import dask_runner, local_client

    if dask == "local" or dask.startswith("local:"):
        _, _, n = dask.partition(":")
        if n and not n.isdigit():
            raise typer.BadParameter(f"--dask local:N needs a number of workers, got {dask!r}")
        with local_client(n_workers=int(n or 2)) as local:
            yield dask_runner(local)
        return
    from distributed import Client

    remote: Any = Client(dask)
    try:
        yield dask_runner(remote)
    finally:
        remote.close()


@app.command("run")
def run(
    as_of: str = typer.Option(date.today().isoformat(), help="Analysis date (YYYY-MM-DD)."),
    days: int = typer.Option(1, min=1, max=3660, help="Days ending on --as-of to evaluate."),
    incremental: bool = typer.Option(False, help="Only what changed since the last run."),
    batch_size: int = typer.Option(
        DEFAULT_BATCH_SIZE, min=1, help="Series evaluated at once (bounds the memory)."
    ),
    dask: str = typer.Option(
        "",
        help="Evaluate the batches on Dask: a scheduler address (tcp://host:8786), "
        "or 'local' / 'local:N' for a cluster of N worker processes on this machine.",
    ),
) -> None:
    """Run every configured detection rule and record signals."""
    try:
        day = date.fromisoformat(as_of)
    except ValueError:
        console.print(f"[red]--as-of must be a date YYYY-MM-DD, got {as_of!r}[/red]")
        raise typer.Exit(2) from None
    with (
        _runner(dask) as runner,
        Progress(console=console, transient=True) as progress,
        session_scope() as session,
    ):
        task = progress.add_task("detecting", total=None)

        def tick(name: str, step: int, total: int) -> None:
            progress.update(task, total=total, completed=step, description=f"rule {name}")

        report = run_detection(
            session,
            as_of=day,
            days=days,
            incremental=incremental,
            progress=tick,
            batch_size=batch_size,
            runner=runner,
        )
    table = Table(title=f"detection as of {day}")
    for col in ("series", "fitted", "alarms", "new signals", "updated signals"):
        table.add_column(col, justify="right")
    table.add_row(
        str(report.series),
        str(report.evaluated),
        str(report.alarms),
        str(report.signals_new),
        str(report.signals_updated),
    )
    console.print(table)
    if report.skipped_rules:
        console.print(f"[yellow]rules skipped (method not available): {report.skipped_rules}")
