"""`yifang catalog …` commands (assembled into the one CLI by ``yifang.cli``)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="catalog")
