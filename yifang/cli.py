"""The one ``yifang`` command: each capability contributes its sub-commands."""

from __future__ import annotations

import typer
from rich.console import Console

from yifang.cases.commands import app as cases_app
from yifang.catalog.commands import app as catalog_app
from yifang.core.db import get_engine
from yifang.core.migrate import upgrade
from yifang.detect.commands import app as detect_app
from yifang.simulate.commands import app as simulate_app

console = Console()
app = typer.Typer(no_args_is_help=True, help="Yifang 医防: surveillance, early warning, response.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")
app.add_typer(catalog_app, name="catalog", help="Reference data: diseases, regions, organisations.")
app.add_typer(cases_app, name="cards", help="Report cards: list, show, review, export.")
app.add_typer(detect_app, name="detect", help="Early-warning detection.")
app.add_typer(simulate_app, name="simulate", help="The simulated city.")


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


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
) -> None:
    """Serve the web UI and API."""
    import uvicorn

    from yifang.web.app import create_app

    uvicorn.run(create_app(), host=host, port=port)


if __name__ == "__main__":
    app()
