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
from collections.abc import Sequence
from typing import Any, cast

import polars as pl
from sqlalchemy import Table, func, select, tuple_
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


#: Page cache of the SQLite connection while it inserts (KiB): the random keys of the
#: encounter, case and card indexes (patient hashes, visit numbers) otherwise miss the
#: default 2 MiB cache on nearly every insert once the tables outgrow it.
SQLITE_CACHE_KIB = 131_072


def _mark(paramstyle: str) -> str:
    return {"qmark": "?", "format": "%s", "pyformat": "%s", "numeric": "?"}.get(paramstyle, "?")


def insert_frame(session: Session, model: Any, frame: pl.DataFrame) -> None:
    """Insert every row of ``frame`` (columns named as the table's) into ``model``'s table.

    Columns null on every row are left out (the table's default applies): binding them
    costs as much as the values that matter."""
    if frame.is_empty():
        return
    frame = frame.select([c for c in frame.columns if frame[c].null_count() < frame.height])
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
        connection.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    mark = _mark(dialect.paramstyle)
    sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({', '.join(mark for _ in columns)})"
    connection.exec_driver_sql(sql, frame.rows())


def insert_frame_ids(
    session: Session, model: Any, frame: pl.DataFrame, keys: Sequence[str]
) -> dict[tuple[Any, ...], int]:
    """Insert the rows of ``frame`` (see :func:`insert_frame`) and return the id given to
    each, by its ``keys`` (a unique key of the table).

    The ids are read back by a primary-key range (those above the largest id before the
    insert, which is where the table's sequence puts new rows) instead of looking every key
    up: rows other writers added meanwhile are in the range too and are left out by key."""
    table = table_of(model)
    pk = table.c.id
    before = session.execute(select(func.max(pk))).scalar() or 0
    insert_frame(session, model, frame)
    wanted = set(frame.select(*keys).iter_rows())
    found: dict[tuple[Any, ...], int] = {}
    stmt = select(pk, *[table.c[k] for k in keys]).where(pk > before)
    for row in session.execute(stmt):
        key = tuple(row[1:])
        if key in wanted:
            found[key] = int(row[0])
    missing = sorted(k for k in wanted if k not in found)
    for start in range(0, len(missing), 1_000):  # ids below the range (explicit ids set by hand)
        part = missing[start : start + 1_000]
        cols = tuple_(*[table.c[k] for k in keys])
        for row in session.execute(select(pk, *[table.c[k] for k in keys]).where(cols.in_(part))):
            found[tuple(row[1:])] = int(row[0])
    return found


def upsert_frame(
    session: Session, model: Any, frame: pl.DataFrame, keys: Sequence[str], chunk: int = 50_000
) -> None:
    """Insert the rows of ``frame``, replacing the other columns of a row whose ``keys``
    (a unique constraint of the table) are already stored: ``INSERT … ON CONFLICT (keys)
    DO UPDATE``, the same statement on SQLite and PostgreSQL, sent as one ``executemany``
    per ``chunk`` rows (prepared once). ``frame``'s keys must be unique."""
    if frame.is_empty():
        return
    table = table_of(model)
    connection = session.connection()
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    columns = frame.columns
    rest = [c for c in columns if c not in keys]
    if dialect.name == "sqlite":
        frame = _sqlite_ready(frame)
        connection.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    mark = _mark(dialect.paramstyle)
    sets = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in rest)
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join(mark for _ in columns)}) "
        f"ON CONFLICT ({', '.join(quote(k) for k in keys)}) "
        + (f"DO UPDATE SET {sets}" if sets else "DO NOTHING")
    )
    for start in range(0, frame.height, chunk):
        connection.exec_driver_sql(sql, frame.slice(start, chunk).rows())
