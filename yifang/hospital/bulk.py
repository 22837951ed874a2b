"""Writing whole Polars frames into a table with one driver-level statement.

SQLAlchemy's per-row parameter processing costs more than the database itself at a hundred
thousand rows, so batches go to the driver directly: ``COPY … FROM STDIN`` on PostgreSQL
(psycopg), one ``executemany`` of tuples elsewhere. Values are prepared column by column in
Polars first, as SQLAlchemy would store them: on SQLite timestamps as
``YYYY-MM-DD HH:MM:SS.ffffff`` text, dates as ISO text, booleans as 0/1. JSON columns must
already hold JSON text.
"""

from __future__ import annotations

import json
from typing import Any, cast

import polars as pl
from sqlalchemy import Table
from sqlalchemy.orm import Session


def table_of(model: Any) -> Table:
    """The Core table of a mapped class."""
    return cast(Table, model.__table__)


def json_text(values: list[Any]) -> pl.Series:
    """Python values as a column of JSON text (for JSON columns)."""
    return pl.Series(
        [json.dumps(v, ensure_ascii=False, default=str) for v in values], dtype=pl.String
    )


def _sqlite_ready(frame: pl.DataFrame) -> pl.DataFrame:
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            exprs.append(col.dt.strftime("%Y-%m-%d %H:%M:%S%.6f").alias(name))
        elif dtype == pl.Date:
            exprs.append(col.dt.strftime("%Y-%m-%d").alias(name))
        elif dtype == pl.Boolean:
            exprs.append(col.cast(pl.Int8).alias(name))
        elif dtype == pl.Null:
            exprs.append(col.cast(pl.String).alias(name))
        else:
            exprs.append(col)
    return frame.select(exprs)


def insert_frame(session: Session, model: Any, frame: pl.DataFrame) -> None:
    """Insert every row of ``frame`` (columns named as the table's) into ``model``'s table."""
    if frame.is_empty():
        return
    table = table_of(model)
    connection = session.connection()
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    columns = frame.columns
    names = ", ".join(quote(c) for c in columns)
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        raw = connection.connection.driver_connection
        assert raw is not None
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {quote(table.name)} ({names}) FROM STDIN") as copy,
        ):
            for row in frame.iter_rows():
                copy.write_row(row)
        return
    if dialect.name == "sqlite":
        frame = _sqlite_ready(frame)
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s", "numeric": "?"}.get(
        dialect.paramstyle, "?"
    )
    sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({', '.join(mark for _ in columns)})"
    connection.exec_driver_sql(sql, frame.rows())
