"""`yifang simulate …` commands (assembled into the one CLI by ``yifang.cli``).

``yifang simulate`` builds the simulated city into the database (``--db``, the default)
and/or into files (``--out DIR``); ``--plots DIR`` draws one chart per disease.
``yifang simulate noufaily`` and ``yifang simulate national`` write the benchmark count
arrays.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from yifang.simulate.service import DEFAULT_SEED

console = Console()
app = typer.Typer(
    invoke_without_command=True,
    help="The simulated city: cards, outbreaks with ground truth, benchmark series.",
)


def _parse_date(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{name} must be a date YYYY-MM-DD, got {value!r}") from exc


@app.callback()
def simulate(
    ctx: typer.Context,
    city: Path | None = typer.Option(None, help="City config YAML (default: Zhongwei)."),
    years: float = typer.Option(3.0, min=0.01, help="Years to simulate."),
    start: str | None = typer.Option(
        None, help="First day YYYY-MM-DD (default: years before --end)."
    ),
    end: str | None = typer.Option(None, help="Last day YYYY-MM-DD (default: yesterday)."),
    seed: int = typer.Option(DEFAULT_SEED, min=0, help="Random seed: same seed, same city."),
    scale: float = typer.Option(1.0, min=0.001, help="Multiply every expected count."),
    out: Path | None = typer.Option(None, help="Write cards and ground truth into this folder."),
    formats: str = typer.Option(
        "csv,jsonl,fhir,hl7",
        help="File formats for --out: csv, jsonl, xlsx (cards); csv, jsonl, fhir, hl7 "
        "(encounters, with --streams).",
    ),
    streams: bool = typer.Option(
        False,
        "--streams/--no-streams",
        help="Also the other data streams (school absence, pharmacy sales, ILI%, multiplex "
        "lab, livestock) and hospital encounters.",
    ),
    db: bool = typer.Option(True, "--db/--no-db", help="Write into the database."),
    errors_share: float | None = typer.Option(
        None, min=0.0, max=1.0, help="Share of cards with a deliberate error (default: config)."
    ),
    plots: Path | None = typer.Option(None, help="Write one SVG chart per disease here."),
) -> None:
    """Build the simulated city (into the database unless --no-db; files with --out)."""
    if ctx.invoked_subcommand is not None:
        return
    from yifang.core.db import session_scope
    from yifang.simulate import service
    from yifang.simulate.config import ConfigError

    end_d = _parse_date(end, "--end")
    start_d = _parse_date(start, "--start")
    fmts = tuple(f.strip() for f in formats.split(",") if f.strip())
    try:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            result = None
            if db:
                task = bar.add_task("simulating", total=None)
                with session_scope() as session:

                    def step(n: int) -> None:
                        bar.update(task, description="writing cards", advance=n)

                    report = service.build_city(
                        session,
                        years,
                        seed,
                        end_d,
                        start=start_d,
                        city=city,
                        errors_share=errors_share,
                        scale=scale,
                        progress=step,
                        streams=streams,
                    )
                bar.update(task, total=report.cards, completed=report.cards, description="done")
                console.print(
                    f"[green]database[/green]: {report.cards} cards {report.start}…{report.end}, "
                    f"{report.outbreaks} outbreaks, {report.errors} erroneous cards, "
                    f"run {report.run_id} "
                    f"({report.seconds:.1f} s)"
                )
                if streams:
                    console.print(
                        f"[green]streams[/green]: {report.streams} series, "
                        f"{report.encounters} hospital encounters"
                    )
            if out is not None or plots is not None:
                task = bar.add_task("simulating for files", total=None)
                facts = None
                if db:
                    from yifang.simulate.config import catalog_from_session, load_city

                    with session_scope() as session:
                        facts = catalog_from_session(session, load_city(city).reference_year)
                target = out or Path(".")
                if out is not None:
                    report, result = service.build_files(
                        target,
                        years,
                        seed,
                        end_d,
                        start=start_d,
                        city=city,
                        errors_share=errors_share,
                        scale=scale,
                        formats=fmts,
                        facts=facts,
                        streams=streams,
                    )
                    console.print(
                        f"[green]files[/green]: {len(report.files)} in {out} "
                        f"({report.seconds:.1f} s)"
                    )
                else:
                    from yifang.simulate.config import catalog_from_files

                    result = service.simulate(
                        facts or catalog_from_files(),
                        years,
                        seed,
                        end_d,
                        start_d,
                        city,
                        None,
                        errors_share,
                        scale,
                        streams=streams,
                    )
                bar.update(task, total=1, completed=1, description="done")
            if plots is not None and result is not None:
                from yifang.simulate.plots import write_plots

                paths = write_plots(result, plots)
                console.print(f"[green]plots[/green]: {len(paths)} charts in {plots}")
    except (ConfigError, ValueError) as exc:
        console.print(f"[red]error[/red]: {exc}")
        raise typer.Exit(2) from exc


@app.command("noufaily")
def noufaily_cmd(
    out: Path = typer.Argument(..., help="CSV file to write (scenario, replicate, week, counts)."),
    replicates: int = typer.Option(100, min=1, help="Series per scenario."),
    seed: int = typer.Option(DEFAULT_SEED, min=0),
    scenarios: str = typer.Option("all", help="Scenario numbers, e.g. 1,14,28 (default all 42)."),
) -> None:
    """Write the Noufaily et al. (2013) benchmark series with their outbreak weeks."""
    import csv

    from yifang.simulate.noufaily import scenarios as all_scenarios
    from yifang.simulate.noufaily import simulate as sim_one

    rows = all_scenarios()
    if scenarios != "all":
        try:
            wanted = {int(s) for s in scenarios.split(",")}
        except ValueError as exc:
            raise typer.BadParameter("--scenarios takes numbers like 1,14,28") from exc
        rows = [r for r in rows if r.number in wanted]
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["scenario", "replicate", "week", "baseline", "outbreak", "observed"])
        for sc in rows:
            for rep in range(replicates):
                s = sim_one(sc, seed, rep)
                for t in range(s.baseline.size):
                    w.writerow(
                        [
                            sc.number,
                            rep,
                            t + 1,
                            int(s.baseline[t]),
                            int(s.outbreak_cases[t]),
                            int(s.observed[t]),
                        ]
                    )
    console.print(f"[green]{len(rows)} scenarios × {replicates} series[/green] → {out}")


@app.command("national")
def national_cmd(
    out: Path = typer.Argument(..., help=".npy file to write (int32, counties × diseases × days)."),
    counties: int = typer.Option(2900, min=1),
    diseases: int = typer.Option(40, min=1),
    days: int = typer.Option(3653, min=1),
    seed: int = typer.Option(DEFAULT_SEED, min=0),
) -> None:
    """Write national-scale daily count arrays (bounded memory, chunked)."""
    import time

    from yifang.simulate.counts import write_national_npy

    t0 = time.perf_counter()
    shape = write_national_npy(
        out, n_counties=counties, n_diseases=diseases, n_days=days, seed=seed
    )
    console.print(f"[green]{shape}[/green] → {out} ({time.perf_counter() - t0:.1f} s)")
