"""How fast a filtered card list pages over 1,000,000 cards: page 1 and page 1,000.

Fills a fresh database (SQLite file by default, PostgreSQL with ``--postgres URL``) with N
synthetic cards (default 1,000,000) by bulk insert — the card indexes are dropped during the
fill and built afterwards, then the planner statistics are gathered — and times
:func:`yifang.cases.queries.list_cards` (the code path of ``GET /api/cards``: SQL, ORM rows,
masking) for several filters:

* ``disease+county+dates``: one common disease, one county (address prefix) and a two-year
  diagnosis window — the goal's case;
* the same under a county jurisdiction scope (address prefix OR reporting organisation);
* ``county`` only and ``none`` (the whole city), the other shapes a user meets.

Page 1,000 starts from the keyset cursor after row 49,950 (page size 50). As a reference
measured in the same run, page 1,000 is also fetched the usual naive way, with ``OFFSET``.
Each figure is the p50 and p95 over ``--repeats`` runs, in milliseconds. Goal: < 50 ms.

    .venv/bin/python benchmarks/list_cards.py                  # SQLite, 1,000,000 cards
    .venv/bin/python benchmarks/list_cards.py -n 200000
    .venv/bin/python benchmarks/list_cards.py --postgres postgresql+psycopg://postgres@127.0.0.1:55432/postgres
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from yifang.cases import queries  # noqa: E402
from yifang.cases.models import Card  # noqa: E402
from yifang.catalog.models import Disease, Organisation, Region  # noqa: E402
from yifang.core.db import make_engine  # noqa: E402
from yifang.core.jurisdiction import Scope  # noqa: E402
from yifang.models import Base  # noqa: E402

PAGE = 50
END = datetime(2025, 12, 31, 23)
YEARS = 3
COLUMNS = (
    "card_number",
    "report_type",
    "status",
    "version",
    "patient_name",
    "id_type",
    "id_number",
    "sex",
    "birth_date",
    "residence_category",
    "address_code",
    "occupation",
    "classification",
    "onset_date",
    "diagnosis_time",
    "disease_code",
    "org_code",
    "doctor_name",
    "fill_date",
    "entered_at",
    "submitted_at",
    "review_due_at",
    "created_by",
    "source",
    "updated_at",
    "name_key",
)


def populate_catalog(engine: Engine) -> None:
    """Schema, then the packaged catalog (diseases, regions, organisations)."""
    from yifang.catalog.service import load_all

    Base.metadata.create_all(engine)
    with Session(engine) as session:
        load_all(session)
        session.commit()


def _card_indexes() -> list[Any]:
    return [ix for ix in Card.__table__.indexes]


def generate(engine: Engine, n: int, seed: int = 1) -> Iterator[pl.DataFrame]:
    """Synthetic cards, 200,000 at a time, as frames of :data:`COLUMNS`: one common disease
    (HFMD) a third of all cards, the rest spread over 30 others; townships uniform over the
    city; diagnosis times uniform over three years; built column-wise (no Python loop)."""
    rng = np.random.default_rng(seed)
    with Session(engine) as session:
        parents = set(
            session.scalars(select(Disease.parent_code).where(Disease.parent_code.is_not(None)))
        )
        diseases = [
            d
            for d in session.scalars(select(Disease.code).where(Disease.active.is_(True)))
            if d not in parents
        ]
        towns = list(
            session.scalars(select(Region.code).where(Region.level == 4, Region.code.like("6405%")))
        )
        orgs: dict[str, list[str]] = {}
        rows = session.execute(
            select(Organisation.code, Organisation.region_code).where(
                Organisation.region_code.like("6405%")
            )
        )
        for code, region in rows:
            orgs.setdefault(region[:6], []).append(code)
    common = "HFMD" if "HFMD" in diseases else diseases[0]
    others = [d for d in diseases if d != common][:30]
    pool = np.array([common, *others])
    weights = np.array([1 / 3] + [2 / 3 / len(others)] * len(others))
    towns_arr = np.array(towns)
    counties = np.array([t[:6] for t in towns])
    now = END + timedelta(days=1)
    chunk = 200_000
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        town_idx = rng.integers(0, len(towns), size=m)
        org = np.empty(m, dtype=object)
        for county in np.unique(counties):
            mask = counties[town_idx] == county
            choices = orgs.get(str(county)) or next(iter(orgs.values()))
            org[mask] = rng.choice(np.array(choices), size=int(mask.sum()))
        frame = pl.DataFrame(
            {
                "k": np.arange(start, start + m),
                "disease_code": rng.choice(pool, size=m, p=weights),
                "address_code": towns_arr[town_idx],
                "org_code": org.astype(str),
                "hours": rng.integers(0, YEARS * 365 * 24, size=m),
                "birth_days": rng.integers(0, 80 * 365, size=m),
            }
        )
        t = pl.lit(END) - pl.duration(hours=pl.col("hours"))
        birth = pl.lit(date(1940, 1, 1)) + pl.duration(days=pl.col("birth_days"))
        name = pl.format("患者{}", pl.col("k"))
        yield frame.select(
            pl.format("L{}", pl.col("k").cast(pl.String).str.zfill(9)).alias("card_number"),
            pl.lit("1").alias("report_type"),
            pl.when(pl.col("k") % 5 == 0)
            .then(pl.lit("submitted"))
            .otherwise(pl.lit("reviewed"))
            .alias("status"),
            pl.lit(1).alias("version"),
            name.alias("patient_name"),
            pl.lit("1").alias("id_type"),
            pl.concat_str(
                pl.col("address_code").str.slice(0, 6),
                birth.dt.strftime("%Y%m%d"),
                (pl.col("k") % 1000).cast(pl.String).str.zfill(3),
                pl.lit("X"),
            ).alias("id_number"),
            pl.when(pl.col("k") % 2 == 1).then(pl.lit("1")).otherwise(pl.lit("2")).alias("sex"),
            birth.cast(pl.Date).alias("birth_date"),
            pl.lit("1").alias("residence_category"),
            pl.col("address_code"),
            pl.lit("18").alias("occupation"),
            pl.lit("3").alias("classification"),
            (t - pl.duration(days=2)).dt.date().alias("onset_date"),
            t.alias("diagnosis_time"),
            pl.col("disease_code"),
            pl.col("org_code"),
            pl.lit("李医生").alias("doctor_name"),
            t.dt.date().alias("fill_date"),
            pl.lit(now).alias("entered_at"),
            pl.lit(now).alias("submitted_at"),
            pl.lit(now).alias("review_due_at"),
            pl.lit("bench").alias("created_by"),
            pl.lit("import").alias("source"),
            pl.lit(now).alias("updated_at"),
            name.alias("name_key"),
        )


def fill(engine: Engine, n: int) -> float:
    """Bulk-insert ``n`` cards with the card indexes dropped, then rebuild them; seconds.
    PostgreSQL: ``COPY … FROM STDIN (FORMAT csv)``; SQLite: one ``executemany``."""
    started = time.perf_counter()
    indexes = _card_indexes()
    with engine.begin() as conn:
        for ix in indexes:
            ix.drop(conn)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            raw = conn.connection.driver_connection
            copy_sql = f"COPY card ({', '.join(COLUMNS)}) FROM STDIN (FORMAT csv)"
            with raw.cursor() as cur, cur.copy(copy_sql) as copy:  # type: ignore[union-attr]
                for frame in generate(engine, n):
                    buffer = io.BytesIO()
                    frame.write_csv(buffer, include_header=False)
                    copy.write(buffer.getvalue())
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA synchronous=OFF")
            cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            marks = ", ".join("?" * len(COLUMNS))
            sql = f"INSERT INTO card ({', '.join(COLUMNS)}) VALUES ({marks})"
            for frame in generate(engine, n):
                text_frame = frame.with_columns(
                    pl.col(pl.Datetime).dt.strftime("%Y-%m-%d %H:%M:%S.%6f"),
                    pl.col(pl.Date).dt.strftime("%Y-%m-%d"),
                )
                cur.executemany(sql, text_frame.iter_rows())
    with engine.begin() as conn:
        for ix in indexes:
            ix.create(conn)
        conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - started


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """p50 and p95 in milliseconds over ``repeats`` calls (after one warm-up call)."""
    result = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return statistics.median(times), p95, result


def cursor_at(session: Session, scope: Scope, flt: queries.CardFilter, offset: int) -> str | None:
    """The keyset cursor after row ``offset`` of the list (found once, by OFFSET)."""
    row = session.execute(
        select(Card.diagnosis_time, Card.id)
        .where(queries.scope_clause(scope), *flt.clauses())
        .order_by(Card.diagnosis_time.desc(), Card.id.desc())
        .offset(offset - 1)
        .limit(1)
    ).first()
    return queries.encode_cursor(row[0], row[1]) if row else None


def offset_page(session: Session, scope: Scope, flt: queries.CardFilter, offset: int) -> list[Card]:
    """The naive reference: the same page by OFFSET."""
    return list(
        session.scalars(
            select(Card)
            .where(queries.scope_clause(scope), *flt.clauses())
            .order_by(Card.diagnosis_time.desc(), Card.id.desc())
            .offset(offset)
            .limit(PAGE)
        )
    )


def measure(engine: Engine, repeats: int) -> None:
    with Session(engine) as session:
        total = session.scalar(select(func.count()).select_from(Card))
        common = session.scalar(
            select(Card.disease_code)
            .group_by(Card.disease_code)
            .order_by(func.count().desc())
            .limit(1)
        )
        town = session.scalar(
            select(Card.address_code)
            .where(Card.address_code.like("640521%"))
            .group_by(Card.address_code)
            .order_by(func.count().desc())
            .limit(1)
        )
        cases = [
            (
                "disease+county+dates",
                Scope.everything(),
                queries.CardFilter(
                    disease_codes=[common],
                    region_prefix="640521",
                    diagnosis_from=date(2024, 1, 1),
                    diagnosis_to=date(2025, 12, 31),
                ),
            ),
            (
                "same, county scope",
                Scope(region_prefix="640521"),
                queries.CardFilter(
                    disease_codes=[common],
                    region_prefix="640521",
                    diagnosis_from=date(2024, 1, 1),
                    diagnosis_to=date(2025, 12, 31),
                ),
            ),
            ("county", Scope.everything(), queries.CardFilter(region_prefix="640521")),
            ("county scope, no filter", Scope(region_prefix="640521"), queries.CardFilter()),
            ("township", Scope.everything(), queries.CardFilter(region_prefix=town)),
            ("none", Scope.everything(), queries.CardFilter()),
        ]
        print(
            f"{engine.dialect.name}: {total:,} cards; most common disease {common}; "
            f"page size {PAGE}; {repeats} repeats"
        )
        print(
            f"{'filter':<26}{'matching':>10}  {'page 1 p50/p95 ms':>18}  "
            f"{'page 1000 p50/p95 ms':>21}  {'OFFSET p50 ms':>14}  {'ratio':>6}"
        )
        offset = 999 * PAGE
        for label, scope, flt in cases:
            matching = session.scalar(
                select(func.count())
                .select_from(Card)
                .where(queries.scope_clause(scope), *flt.clauses())
            )
            p1 = timed(
                lambda s=scope, f=flt: queries.list_cards(session, s, f, limit=PAGE), repeats
            )
            cursor = cursor_at(session, scope, flt, offset)
            if cursor is None:
                print(
                    f"{label:<26}{matching:>10,}  {p1[0]:>8.1f}/{p1[1]:<8.1f}  "
                    "(fewer than 1,000 pages)"
                )
                continue
            p1000 = timed(
                lambda s=scope, f=flt, c=cursor: queries.list_cards(
                    session, s, f, cursor=c, limit=PAGE
                ),
                repeats,
            )
            ref = timed(
                lambda s=scope, f=flt: offset_page(session, s, f, offset), max(3, repeats // 5)
            )
            keyset_ids = [c["id"] for c in p1000[2].items]
            assert keyset_ids == [c.id for c in ref[2]], "keyset and OFFSET pages differ"
            session.expunge_all()
            print(
                f"{label:<26}{matching:>10,}  {p1[0]:>8.1f}/{p1[1]:<8.1f}  "
                f"{p1000[0]:>10.1f}/{p1000[1]:<9.1f}  {ref[0]:>14.1f}  {ref[0] / p1000[0]:>5.0f}×"
            )


def measure_duplicates(engine: Engine) -> None:
    """Time the duplicate scan (重卡): the newest 10,000 cards against the rest, then every
    card as one import batch (the scan after a 1,000,000-card import)."""
    from sqlalchemy import insert, update

    from yifang.cases import duplicates
    from yifang.cases.models import DuplicateFlag, ImportBatch

    with Session(engine) as session:
        newest = list(session.scalars(select(Card.id).order_by(Card.id.desc()).limit(10_000)))
        t0 = time.perf_counter()
        flags = duplicates.scan(session, newest)
        session.commit()
        seconds = time.perf_counter() - t0
        print(f"duplicate scan, 10,000 new cards: {seconds:.2f} s, {flags} flags")
        batch_id = session.execute(
            insert(ImportBatch)
            .values(filename="bench", file_sha256="0" * 64, file_format="csv")
            .returning(ImportBatch.id)
        ).scalar_one()
        session.execute(update(Card).values(import_batch_id=batch_id))
        session.commit()
        t0 = time.perf_counter()
        flags = duplicates.scan_batch(session, batch_id)
        session.commit()
        seconds = time.perf_counter() - t0
        total = session.scalar(select(func.count()).select_from(DuplicateFlag))
        n = session.scalar(select(func.count()).select_from(Card))
        print(
            f"duplicate scan of a {n:,}-card import batch: {seconds:.1f} s "
            f"({n / seconds:,.0f} cards/s), {flags} new flags, {total} in all"
        )


def _has_cards(engine: Engine) -> bool:
    from sqlalchemy import inspect

    if not inspect(engine).has_table("card"):
        return False
    with engine.connect() as conn:
        return bool(conn.execute(select(func.count()).select_from(Card)).scalar())


def bench(engine: Engine, args: argparse.Namespace) -> None:
    """Fill the database unless it already holds cards, then measure."""
    if _has_cards(engine):
        measure(engine, args.repeats)
    else:
        run(engine, args.rows, args.repeats)
    if args.duplicates:
        measure_duplicates(engine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument(
        "--postgres", help="PostgreSQL server URL: a database is created there, then dropped"
    )
    parser.add_argument(
        "--url", help="database to use and keep (filled if it holds no cards, else reused)"
    )
    parser.add_argument("--sqlite", type=Path, help="SQLite file to use and keep (as --url)")
    parser.add_argument(
        "--duplicates", action="store_true", help="also time the duplicate scan (changes data)"
    )
    args = parser.parse_args()
    if args.url or args.sqlite:
        engine = make_engine(args.url or f"sqlite:///{args.sqlite}")
        bench(engine, args)
        engine.dispose()
        return
    if args.postgres:
        name = f"yifang_bench_list_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        base, _, _ = args.postgres.rpartition("/")
        engine = make_engine(f"{base}/{name}")
        try:
            bench(engine, args)
        finally:
            engine.dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        return
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        bench(engine, args)
        engine.dispose()


def run(engine: Engine, rows: int, repeats: int) -> None:
    t0 = time.perf_counter()
    populate_catalog(engine)
    print(f"catalog loaded in {time.perf_counter() - t0:.1f} s")
    seconds = fill(engine, rows)
    print(
        f"filled {rows:,} cards in {seconds:.1f} s "
        f"({rows / seconds:,.0f} cards/s, indexes built after)"
    )
    measure(engine, repeats)


if __name__ == "__main__":
    io.DEFAULT_BUFFER_SIZE = 1 << 16
    main()
