"""`yifang catalog …` commands (assembled into the one CLI by ``yifang.cli``)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from yifang.catalog import service
from yifang.catalog.datafiles import DataFileError
from yifang.core.db import session_scope

app = typer.Typer(no_args_is_help=True, help="catalog")
console = Console()

CLASS_LABEL = {"A": "甲类", "B": "乙类", "C": "丙类", "other": "其他"}


@app.command("load")
def load(
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Folder with the data files (default: the packaged ones)."
    ),
    refresh: bool = typer.Option(
        False,
        "--refresh",
        help="Also restore regions, organisations and populations that differ from the files "
        "(diseases an administrator edited are always kept).",
    ),
) -> None:
    """Load diseases, regions, organisations and populations from the data files."""
    try:
        with (
            Progress(
                SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                console=console, transient=True,
            ) as progress,
            session_scope() as session,
        ):  # fmt: skip
            task = progress.add_task("reading data files", total=None)

            def step(table: str) -> None:
                progress.update(task, description=f"loading {table}")

            report = service.load_all(session, data_dir=data_dir, refresh=refresh, progress=step)
    except DataFileError as exc:
        console.print(f"[red]data file error:[/red] {exc}")
        raise typer.Exit(1) from None
    table = Table(title=f"catalog loaded (diseases {report.disease_version})")
    for column in ("table", "inserted", "updated", "unchanged", "kept (edited)"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for t in report.tables:
        table.add_row(t.table, str(t.inserted), str(t.updated), str(t.unchanged), str(t.kept))
    console.print(table)
    console.print(f"{report.changed} rows changed in {report.seconds:.2f} s")


@app.command("diseases")
def diseases(
    disease_class: str | None = typer.Option(None, "--class", help="A, B, C or other."),
    leaf: bool = typer.Option(False, "--leaf", help="Only diseases a card may name."),
) -> None:
    """List the disease catalogue with its reporting rules."""
    with session_scope() as session:
        rows = service.list_diseases(session, disease_class=disease_class, leaf_only=leaf)
        out = service.diseases_out(session, rows)
    table = Table(title=f"{len(out)} diseases")
    for column in ("code", "national", "name", "class", "甲管", "report h", "review h",
                   "classifications", "dup. days", "edited by"):  # fmt: skip
        table.add_column(column)
    for d in out:
        name = d.name_zh if d.parent_code is None else f"  {d.name_zh}"
        table.add_row(
            d.code,
            d.national_code or "",
            name,
            CLASS_LABEL.get(d.disease_class, d.disease_class),
            "✓" if d.managed_as_class_a else "",
            str(d.report_limit_hours),
            str(d.review_limit_hours),
            ",".join(d.classifications),
            str(d.duplicate_window_days),
            d.edited_by or "",
        )
    console.print(table)


@app.command("reset-disease")
def reset_disease(
    code: str = typer.Argument(..., help="Yifang disease code, e.g. HFMD."),
    actor: str = typer.Option("admin", "--as", help="Who does it (kept in the audit trail)."),
) -> None:
    """Undo an administrator's edits of a disease: restore the data file's values."""
    try:
        with session_scope() as session:
            disease = service.reset_disease(session, code, actor)
            name = disease.name_zh
    except service.CatalogError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"[green]{code} {name}[/green]: restored from the data file")


@app.command("regions")
def regions(
    code: str | None = typer.Argument(None, help="Region code; omitted: the provinces."),
) -> None:
    """List the children of a region (GB/T 2260 code, padded or not)."""
    with session_scope() as session:
        try:
            title = service.region_path(session, code) if code else "中国"
            rows = service.region_children(session, code)
        except service.CatalogError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
        table = Table(title=f"{title}: {len(rows)} sub-regions")
        for column in ("code", "name", "level", "kind", "urban", "herding", "lon", "lat"):
            table.add_column(column)
        for r in rows:
            table.add_row(
                r.code,
                r.name,
                str(r.level),
                r.kind or "",
                _flag(r.urban),
                _flag(r.herding),
                f"{r.longitude:.3f}" if r.longitude is not None else "",
                f"{r.latitude:.3f}" if r.latitude is not None else "",
            )
    console.print(table)


def _flag(value: bool | None) -> str:
    return "" if value is None else ("✓" if value else "·")
