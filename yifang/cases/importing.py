"""Importing report cards from files, with quarantine of invalid rows.

``import_file`` streams a CSV, XLSX or JSON Lines file (see :mod:`yifang.cases.import_formats`)
in chunks, validates each chunk with the card rules at once
(:func:`yifang.cases.validation.validate_frame`) and stores it in one transaction:

* valid rows become cards: status ``submitted``, ``source='import'``, entered now, review
  due after the disease's review limit, a card number generated where the file has none;
* invalid rows go to ``quarantined_row`` with their row number, the raw values and every
  error, to be fixed from the error report (:func:`error_report`) and imported again;
* a row whose content is already stored (``card.content_hash``) adds nothing, and a file
  whose SHA-256 matches a finished import is not read again, so importing twice adds
  nothing.

A file that cannot be read (wrong format, empty, header only, truncated, undecodable,
missing required columns) raises an :class:`~yifang.cases.import_formats.ImportFileError`
with Chinese and English messages before anything is stored; damage found only midway (a
truncated workbook) removes what the import had stored, so the database is as before.

The columns may be named as the ``card`` table's columns or as in the national system's
card export (卡片编号, 患者姓名, 有效证件号, 年龄 "35岁", 现住地址国标, 疾病名称 …;
research notes §2.4); labels are accepted wherever codes are.

Memory stays bounded by the chunk size (25,000 rows by default). Cards go in with one
``executemany`` per chunk on SQLite and with ``COPY`` into a staging table on PostgreSQL,
while a worker thread reads and validates the next chunk. A large file going into a card
table no larger than itself is a bulk load (:data:`BULK_MIN_ROWS`): the card's non-unique
indexes are dropped while its rows go in and built once at the end.
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import polars as pl
from sqlalchemy import Connection, Engine, Index, Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from yifang.cases import models
from yifang.cases.codes import normalise_label
from yifang.cases.import_formats import (
    ROW_PROBLEM_FIELD,
    Chunk,
    FileInfo,
    ImportFileError,
    MissingColumnsError,
    NoDataRowsError,
    inspect_file,
    open_reader,
)
from yifang.cases.models import Card, ImportBatch, QuarantinedRow
from yifang.cases.schemas import CARD_FIELDS
from yifang.cases.validation import FIELD_LABELS, Reference, validate_frame
from yifang.core.db import utcnow
from yifang.core.errors import FieldError

__all__ = [
    "COLUMN_ALIASES",
    "ImportFileError",
    "ImportProgress",
    "ImportResult",
    "error_report",
    "import_file",
    "map_columns",
]

#: Rows validated and stored per transaction: large enough that per-chunk costs vanish,
#: small enough that an import stays within a few hundred MiB.
CHUNK_ROWS = 25_000

#: Accepted column names → card field. The card's own column names are always accepted;
#: these are the national export's names (§2.4), the printed card's and a few English ones.
#: ``age`` is the export's 年龄 with its unit ("35岁").
COLUMN_ALIASES: dict[str, str] = {
    "卡片编号": "card_number",
    "报卡类别": "report_type",
    "卡片状态": "report_type",
    "患者姓名": "patient_name",
    "姓名": "patient_name",
    "患儿家长姓名": "guardian_name",
    "家长姓名": "guardian_name",
    "证件类型": "id_type",
    "有效证件类型": "id_type",
    "有效证件号": "id_number",
    "身份证号": "id_number",
    "证件号码": "id_number",
    "性别": "sex",
    "出生日期": "birth_date",
    "年龄": "age",
    "实足年龄": "age_value",
    "年龄单位": "age_unit",
    "患者工作单位": "work_unit",
    "工作单位": "work_unit",
    "工作单位(学校)": "work_unit",
    "联系电话": "phone",
    "病人属于": "residence_category",
    "现住地址国标": "address_code",
    "现住地址编码": "address_code",
    "现住详细地址": "address_detail",
    "人群分类": "occupation",
    "患者职业": "occupation",
    "职业": "occupation",
    "病例分类": "classification",
    "病例分类2": "chronicity",
    "病例分类(2)": "chronicity",
    "发病日期": "onset_date",
    "诊断时间": "diagnosis_time",
    "诊断日期": "diagnosis_time",
    "死亡日期": "death_date",
    "疾病名称": "disease_code",
    "病种": "disease_code",
    "疾病编码": "disease_code",
    "疾病分型": "subtype_code",
    "分型": "subtype_code",
    "报告单位": "org_code",
    "报告单位编码": "org_code",
    "填卡医生": "doctor_name",
    "报告医生": "doctor_name",
    "医生填卡日期": "fill_date",
    "填卡日期": "fill_date",
    "备注": "remarks",
    "age_text": "age",
    "disease": "disease_code",
    "organisation": "org_code",
    "org": "org_code",
}

#: Fields without which no row of a file could be valid: a file lacking their columns is
#: refused as a whole. Birth date may be replaced by age (see ``_BIRTH_OR_AGE``).
REQUIRED_COLUMNS: tuple[str, ...] = (
    "patient_name",
    "id_number",
    "sex",
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
)
_BIRTH_OR_AGE = ("birth_date", "age", "age_value")

# SQLAlchemy's storage format for SQLite DATETIME, so imported rows compare like ORM rows.
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S%.6f"


@dataclass
class ImportProgress:
    """Where an import stands: rows so far, and how far through the file (``position`` of
    ``total`` bytes, or rows for XLSX; ``total`` may be None)."""

    rows_read: int = 0
    rows_stored: int = 0
    rows_duplicate: int = 0
    rows_quarantined: int = 0
    position: int = 0
    total: int | None = None
    #: ``rows`` while rows are read and stored; ``indexes`` while a bulk load builds the
    #: card table's indexes at the end (see :data:`BULK_MIN_ROWS`).
    phase: str = "rows"


ProgressCallback = Callable[[ImportProgress], None]


@dataclass
class ImportResult:
    """The outcome of one import. ``already_imported`` is True when the same file (same
    SHA-256) had been imported before and nothing was read; ``batch_id`` is then the earlier
    batch."""

    batch_id: int
    filename: str
    file_format: str
    encoding: str | None
    rows_total: int
    rows_stored: int
    rows_duplicate: int
    rows_quarantined: int
    already_imported: bool = False
    ignored_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _header_key(name: str) -> str:
    return normalise_label(name).replace("(", "").replace(")", "").lstrip("\ufeff")


_KNOWN: dict[str, tuple[int, str]] = {}
for _field in (*CARD_FIELDS, "age"):
    _KNOWN[_header_key(_field)] = (0, _field)
for _alias, _target in COLUMN_ALIASES.items():
    _KNOWN.setdefault(_header_key(_alias), (1, _target))
# A code column beats a name column for the same field (报告单位编码 over 报告单位).
_KNOWN[_header_key("报告单位编码")] = (0, "org_code")
_KNOWN[_header_key("疾病编码")] = (0, "disease_code")


def map_columns(header: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Map a file's header onto card fields: (field → column, ignored columns). When two
    columns give the same field, the card's own name (or a code column) wins, then the
    first."""
    chosen: dict[str, tuple[int, str]] = {}
    ignored: list[str] = []
    for column in header:
        known = _KNOWN.get(_header_key(column))
        if known is None:
            ignored.append(column)
            continue
        rank, target = known
        if target not in chosen or rank < chosen[target][0]:
            if target in chosen:
                ignored.append(chosen[target][1])
            chosen[target] = (rank, column)
        else:
            ignored.append(column)
    return {target: column for target, (_, column) in chosen.items()}, ignored


def _check_columns(mapping: dict[str, str]) -> None:
    missing = [f for f in REQUIRED_COLUMNS if f not in mapping]
    if not any(f in mapping for f in _BIRTH_OR_AGE):
        missing.append("birth_date")
    if missing:
        zh = "、".join(FIELD_LABELS.get(f, f) for f in missing)
        en = ", ".join(missing)
        raise MissingColumnsError(
            f"缺少必需的列:{zh}(可用本系统列名或国家系统导出列名)",
            f"required columns are missing: {en} (our column names or the national export's)",
        )


# --------------------------------------------------------------------------- storing


@dataclass
class _Batch:
    id: int
    actor: str
    now: datetime
    ref: Reference
    stored: int = 0
    duplicate: int = 0
    quarantined: int = 0
    total: int = 0


def _card_columns() -> list[str]:
    return [c.name for c in Card.__table__.columns if c.name != "id"]


def _content_hash(cards: pl.DataFrame) -> list[str]:
    """SHA-256 of each card's normalised content (every card field, fixed order)."""
    canonical = cards.select(
        pl.concat_str(
            [
                (
                    pl.col(f).dt.strftime("%Y-%m-%d %H")
                    if f == "diagnosis_time"
                    else pl.col(f).cast(pl.String)
                ).fill_null("")
                for f in CARD_FIELDS
            ],
            separator="\x1f",
        )
    ).to_series()
    return [hashlib.sha256(text.encode()).hexdigest() for text in canonical]


def _prepare(cards: pl.DataFrame, batch: _Batch, dialect: str) -> pl.DataFrame:
    """The ``card`` rows of a chunk of valid cards, columns in table order."""
    now = batch.now
    limits = {code: d.review_limit_hours for code, d in batch.ref.diseases.items()}
    name_key = getattr(models, "name_key", None)
    frame = cards.with_columns(
        pl.Series("content_hash", _content_hash(cards), dtype=pl.String),
        pl.coalesce(
            pl.col("card_number"),
            pl.format("IM{}-{}", pl.lit(f"{batch.id:06d}"), pl.col("__row").cast(pl.String)),
        ).alias("card_number"),
        pl.lit("submitted").alias("status"),
        pl.lit(1).alias("version"),
        pl.lit(now).alias("entered_at"),
        pl.lit(now).alias("submitted_at"),
        (
            pl.lit(now)
            + pl.duration(
                hours=pl.col("disease_code").replace_strict(
                    limits, default=24, return_dtype=pl.Int64
                )
            )
        ).alias("review_due_at"),
        pl.lit(batch.actor).alias("created_by"),
        pl.lit("import").alias("source"),
        pl.lit(batch.id).alias("import_batch_id"),
        pl.lit(now).alias("updated_at"),
    )
    if name_key is not None and "name_key" in Card.__table__.columns:
        names = frame["patient_name"]
        keys = {n: name_key(n) for n in names.unique().to_list()}  # names repeat: key each once
        frame = frame.with_columns(
            names.replace_strict(keys, default=None, return_dtype=pl.String).alias("name_key")
        )
    columns = _card_columns()
    missing = [c for c in columns if c not in frame.columns]
    for name in missing:
        default = Card.__table__.columns[name].default
        value = default.arg if default is not None and default.is_scalar else None
        frame = frame.with_columns(pl.lit(value).alias(name))
    frame = frame.select(columns)
    if dialect == "sqlite":
        frame = frame.with_columns(
            pl.col(pl.Datetime).dt.strftime(_SQLITE_DATETIME),
            pl.col(pl.Date).dt.strftime("%Y-%m-%d"),
        )
    return frame


#: Page cache of the importing SQLite connection (KiB): the random keys of the card's
#: unique and person indexes otherwise miss the default 2 MiB cache on every insert.
SQLITE_CACHE_KIB = 131_072


def _insert_sqlite(conn: Connection, frame: pl.DataFrame) -> int:
    # Columns null on every row are left out: converting and binding them costs as much as
    # the values that matter.
    columns = [c for c in frame.columns if frame[c].null_count() < frame.height]
    frame = frame.select(columns)
    conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    sql = (
        f"INSERT INTO card ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
        "ON CONFLICT DO NOTHING"
    )
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    cursor.executemany(sql, frame.iter_rows())
    return int(cursor.rowcount)


def _insert_postgres(conn: Connection, frame: pl.DataFrame) -> int:
    columns = frame.columns
    names = ", ".join(columns)
    raw = conn.connection.driver_connection
    with raw.cursor() as cur:  # type: ignore[union-attr]
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS card_import_stage AS "
            f"SELECT {names} FROM card WITH NO DATA"
        )
        cur.execute("TRUNCATE card_import_stage")
        buffer = io.BytesIO()
        frame.write_csv(buffer, include_header=False, null_value="", quote_style="non_numeric")
        with cur.copy(f"COPY card_import_stage ({names}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(buffer.getvalue())
        cur.execute(
            f"INSERT INTO card ({names}) SELECT {names} FROM card_import_stage "
            "ON CONFLICT DO NOTHING"
        )
        return int(cur.rowcount)


def _existing_hashes(conn: Connection, hashes: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(hashes), 5_000):
        part = list(hashes[start : start + 5_000])
        rows = conn.execute(select(Card.content_hash).where(Card.content_hash.in_(part)))
        found.update(h for h in rows.scalars() if h is not None)
    return found


@dataclass
class _Checked:
    """One chunk after validation, before storing: its quarantine rows (unreadable and
    invalid rows), its valid cards and their ``card`` rows (see :func:`_prepare`)."""

    chunk: Chunk
    quarantine: list[dict[str, Any]]
    cards: pl.DataFrame
    rows: pl.DataFrame | None


def _store_cards(conn: Connection, checked: _Checked, batch: _Batch) -> list[dict[str, Any]]:
    """Insert a chunk's valid cards; returns quarantine rows for cards refused because their
    card number is taken by a different card."""
    frame, cards = checked.rows, checked.cards
    if frame is None or frame.is_empty():
        return []
    if conn.dialect.name == "postgresql":
        inserted = _insert_postgres(conn, frame)
    else:
        inserted = _insert_sqlite(conn, frame)
    refused: list[dict[str, Any]] = []
    if inserted < frame.height:
        hashes = frame["content_hash"].to_list()
        present = _existing_hashes(conn, hashes)
        for position, digest in enumerate(hashes):
            if digest not in present:
                row = cards.row(position, named=True)
                refused.append(
                    _quarantine_row(
                        batch,
                        int(row["__row"]),
                        next(_raw_rows(checked.chunk, [int(row["__pos"])])),
                        [
                            FieldError(
                                field="card_number",
                                code="card_number.exists",
                                message_zh=f"卡片编号「{row['card_number']}」已被另一张卡使用",
                                message_en=f"card number {row['card_number']!r} is taken "
                                "by another card",
                            )
                        ],
                    )
                )
        batch.duplicate += frame.height - inserted - len(refused)
    batch.stored += inserted
    return refused


def _quarantine_row(
    batch: _Batch, row_number: int, raw: dict[str, Any], errors: Iterable[FieldError]
) -> dict[str, Any]:
    return {
        "batch_id": batch.id,
        "row_number": row_number,
        "raw": raw,
        "errors": [e.model_dump() for e in errors],
        "resolved": False,
    }


def _raw_rows(chunk: Chunk, positions: Iterable[int]) -> Iterator[dict[str, Any]]:
    columns = chunk.columns
    for i in positions:
        yield {name: values[i] for name, values in columns.items()}


def _check(chunk: Chunk, mapping: dict[str, str], batch: _Batch, dialect: str) -> _Checked:
    """Validate one chunk and build its ``card`` rows. Touches no database (only ``batch``'s
    read-only fields), so it may run in a worker thread while the previous chunk is
    stored."""
    quarantine: list[dict[str, Any]] = []
    for row_number, raw, code, zh, en in chunk.problems:
        error = FieldError(field=ROW_PROBLEM_FIELD, code=code, message_zh=zh, message_en=en)
        quarantine.append(_quarantine_row(batch, row_number, raw, [error]))
    if not len(chunk):
        return _Checked(chunk, quarantine, pl.DataFrame(), None)
    frame = pl.DataFrame(
        {target: chunk.columns[column] for target, column in mapping.items()},
        schema={target: pl.String for target in mapping},
    ).with_columns(
        pl.Series("__row", chunk.row_numbers, dtype=pl.Int64),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("__pos"),
    )
    outcome = validate_frame(frame, batch.ref, batch.now, keep=("__row", "__pos"))
    bad_positions = [p for p, _ in outcome.invalid]
    for (position, errors), raw in zip(
        outcome.invalid, _raw_rows(chunk, bad_positions), strict=True
    ):
        quarantine.append(_quarantine_row(batch, chunk.row_numbers[position], raw, errors))
    rows = None if outcome.cards.is_empty() else _prepare(outcome.cards, batch, dialect)
    return _Checked(chunk, quarantine, outcome.cards, rows)


def _store(conn: Connection, checked: _Checked, batch: _Batch) -> None:
    """Store one checked chunk in the caller's transaction and count it in the batch."""
    quarantine = checked.quarantine + _store_cards(conn, checked, batch)
    if quarantine:
        conn.execute(insert(QuarantinedRow), quarantine)
    batch.quarantined += len(quarantine)
    batch.total += len(checked.chunk) + len(checked.chunk.problems)
    conn.execute(
        update(ImportBatch)
        .where(ImportBatch.id == batch.id)
        .values(
            rows_total=batch.total,
            rows_stored=batch.stored,
            rows_duplicate=batch.duplicate,
            rows_quarantined=batch.quarantined,
        )
    )


def _checked_chunks(
    first: Chunk, chunks: Iterator[Chunk], mapping: dict[str, str], batch: _Batch, dialect: str
) -> Generator[_Checked, None, None]:
    """The file's chunks, checked one ahead in a worker thread: reading and validating
    chunk k+1 (mostly in polars, which releases the GIL) overlaps storing chunk k (mostly
    in the database driver or server)."""

    def read_and_check(chunk: Chunk | None) -> _Checked | None:
        chunk = chunk if chunk is not None else next(chunks, None)
        return None if chunk is None else _check(chunk, mapping, batch, dialect)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="yifang-import") as pool:
        ahead = pool.submit(read_and_check, first)
        while (checked := ahead.result()) is not None:
            ahead = pool.submit(read_and_check, None)
            yield checked


# --------------------------------------------------------------------------- bulk loads

#: An import estimated at this many rows or more, into a card table holding no more cards
#: than the file brings, is a bulk load: the card table's non-unique indexes are dropped
#: for its duration and built once at the end. Building an index by sorting is several
#: times cheaper than maintaining it row by row, and the rebuild reads the whole table, so
#: it only pays when the file is at least as large as what is already stored.
BULK_MIN_ROWS = 100_000


def deferred_indexes() -> list[Index]:
    """The card's indexes a bulk load builds at the end: every non-unique one. Unique ones
    stay, since they refuse duplicate cards while the rows go in."""
    return sorted(
        (ix for ix in cast(Table, Card.__table__).indexes if not ix.unique),
        key=lambda i: str(i.name),
    )


def restore_card_indexes(engine: Engine) -> list[str]:
    """Create any of the card's deferred indexes that is missing (after a bulk load, or
    when a bulk load was killed before its end); returns the names created."""
    created = []
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
        present = _index_names(conn)
        for index in deferred_indexes():
            if index.name not in present:
                index.create(conn)
                created.append(str(index.name))
    return created


def _index_names(conn: Connection) -> set[str]:
    """Names of the card table's indexes, expression indexes included (which SQLAlchemy's
    reflection leaves out on SQLite)."""
    if conn.dialect.name == "postgresql":
        sql = "SELECT indexname FROM pg_indexes WHERE tablename = 'card'"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'card'"
    return {str(name) for name in conn.exec_driver_sql(sql).scalars()}


def _estimated_rows(first: Chunk, position: int, total: int | None) -> int:
    """Rows in the whole file, extrapolated from the first chunk's share of its bytes (or
    rows, for XLSX)."""
    taken = len(first) + len(first.problems)
    if not total or not position:
        return taken
    return int(taken * total / position)


def _begin_bulk(engine: Engine, estimate: int) -> bool:
    """Drop the deferred indexes when this import is a bulk load; True if they were."""
    if estimate < BULK_MIN_ROWS:
        return False
    with engine.begin() as conn:
        stored = conn.execute(select(func.count()).select_from(Card)).scalar_one()
        if stored > estimate:
            return False
        present = _index_names(conn)
        for index in deferred_indexes():
            if index.name in present:
                index.drop(conn)
    return True


# --------------------------------------------------------------------------- the import


def _already_imported(engine: Engine, info: FileInfo) -> ImportBatch | None:
    with Session(engine) as session:
        return session.scalars(
            select(ImportBatch)
            .where(ImportBatch.file_sha256 == info.sha256, ImportBatch.status == "done")
            .order_by(ImportBatch.id.desc())
            .limit(1)
        ).first()


def _undo(engine: Engine, batch_id: int, error: str) -> None:
    """Remove what a failed import stored and mark its batch failed.

    ``card.duplicate_of_id`` refers to ``card`` without an index, so the foreign-key check of
    every deleted card would scan the table; a temporary index keeps the undo linear."""
    with engine.begin() as conn:
        conn.execute(delete(QuarantinedRow).where(QuarantinedRow.batch_id == batch_id))
        linked = "duplicate_of_id" in Card.__table__.columns
        if linked:
            conn.exec_driver_sql(
                "CREATE INDEX IF NOT EXISTS tmp_card_duplicate_of ON card (duplicate_of_id)"
            )
        conn.execute(delete(Card).where(Card.import_batch_id == batch_id))
        if linked:
            conn.exec_driver_sql("DROP INDEX IF EXISTS tmp_card_duplicate_of")
        conn.execute(
            update(ImportBatch)
            .where(ImportBatch.id == batch_id)
            .values(
                status="failed",
                error=error,
                finished_at=utcnow(),
                rows_stored=0,
                rows_duplicate=0,
                rows_quarantined=0,
            )
        )


def import_file(
    engine: Engine,
    path: str | Path,
    *,
    actor: str = "system",
    now: datetime | None = None,
    chunk_rows: int = CHUNK_ROWS,
    progress: ProgressCallback | None = None,
    force: bool = False,
    filename: str | None = None,
    reference: Reference | None = None,
) -> ImportResult:
    """Import the cards of ``path`` (CSV, XLSX or JSON Lines) into the database of
    ``engine``, committing chunk by chunk on its own connections.

    ``now`` (naive UTC, default the current time) is the entry time of the cards and the
    "now" of the date rules. ``force`` reads a file even if the same content was imported
    before (rows already stored are still skipped). Raises
    :class:`~yifang.cases.import_formats.ImportFileError` for a file that cannot be
    imported; the database is then unchanged.
    """
    started = time.perf_counter()
    path = Path(path)
    name = filename or path.name
    info = inspect_file(path)
    if not force and (earlier := _already_imported(engine, info)) is not None:
        return ImportResult(
            batch_id=earlier.id,
            filename=name,
            file_format=info.file_format,
            encoding=info.encoding,
            rows_total=earlier.rows_total,
            rows_stored=0,
            rows_duplicate=earlier.rows_total,
            rows_quarantined=0,
            already_imported=True,
            seconds=time.perf_counter() - started,
        )
    now = now or utcnow()
    with open_reader(info) as reader:
        mapping, ignored = map_columns(reader.header)
        _check_columns(mapping)
        chunks = reader.chunks(chunk_rows)
        first = next(chunks, None)
        if first is None:
            raise NoDataRowsError("文件只有表头,没有数据行", "the file has a header but no rows")
        if reference is None:
            with Session(engine) as session:
                reference = Reference.from_session(session)
        with engine.begin() as conn:
            batch_id = conn.execute(
                insert(ImportBatch)
                .values(
                    filename=name[:255],
                    file_sha256=info.sha256,
                    file_format=info.file_format,
                    encoding=info.encoding,
                    started_at=now,
                    status="running",
                    actor=actor,
                )
                .returning(ImportBatch.id)
            ).scalar_one()
        batch = _Batch(id=batch_id, actor=actor, now=now, ref=reference)
        state = ImportProgress(total=reader.total)
        restore_card_indexes(engine)  # a bulk load killed midway left them dropped
        bulk = _begin_bulk(engine, _estimated_rows(first, reader.position, reader.total))
        checked_chunks = _checked_chunks(first, chunks, mapping, batch, engine.dialect.name)
        try:
            with closing(checked_chunks):  # on failure, the worker stops before the file closes
                for checked in checked_chunks:
                    with engine.begin() as conn:
                        _store(conn, checked, batch)
                    state.rows_read = batch.total
                    state.rows_stored = batch.stored
                    state.rows_duplicate = batch.duplicate
                    state.rows_quarantined = batch.quarantined
                    state.position = reader.position
                    if progress is not None:
                        progress(state)
        except BaseException as exc:
            _undo(engine, batch_id, str(exc)[:2000])
            raise
        finally:
            if bulk:
                state.phase = "indexes"
                if progress is not None:
                    progress(state)
                restore_card_indexes(engine)
                with engine.begin() as conn:  # the planner's statistics, for the new rows
                    conn.exec_driver_sql("ANALYZE card")
    with engine.begin() as conn:
        conn.execute(
            update(ImportBatch)
            .where(ImportBatch.id == batch_id)
            .values(status="done", finished_at=utcnow())
        )
    return ImportResult(
        batch_id=batch_id,
        filename=name,
        file_format=info.file_format,
        encoding=info.encoding,
        rows_total=batch.total,
        rows_stored=batch.stored,
        rows_duplicate=batch.duplicate,
        rows_quarantined=batch.quarantined,
        ignored_columns=ignored,
        seconds=time.perf_counter() - started,
    )


# --------------------------------------------------------------------------- error report


def _report_rows(session: Session, batch_id: int) -> tuple[list[str], Iterator[list[Any]]]:
    first = session.scalars(
        select(QuarantinedRow.raw).where(QuarantinedRow.batch_id == batch_id).limit(1000)
    ).all()
    columns: list[str] = []
    for raw in first:
        for key in raw or {}:
            if key not in columns:
                columns.append(key)
    header = ["行号 row", "错误 errors", "errors (English)", *columns]

    def rows() -> Iterator[list[Any]]:
        stmt = (
            select(QuarantinedRow.row_number, QuarantinedRow.raw, QuarantinedRow.errors)
            .where(QuarantinedRow.batch_id == batch_id)
            .order_by(QuarantinedRow.row_number)
            .execution_options(yield_per=2000)
        )
        for row_number, raw, errors in session.execute(stmt):
            zh = ";".join(e.get("message_zh", "") for e in errors or [])
            en = "; ".join(e.get("message_en", "") for e in errors or [])
            values = [(raw or {}).get(c) for c in columns]
            yield [row_number, zh, en, *values]

    return header, rows()


def error_report(session: Session, batch_id: int, fmt: str = "csv") -> Iterator[bytes]:
    """The quarantined rows of a batch as a file to download: CSV (UTF-8 with BOM, so Excel
    shows Chinese) streamed in pieces, or XLSX (one piece). Each row holds its row number,
    its errors in Chinese and English, then the row as it was in the file — so the report,
    once corrected, can be imported again (the extra columns are ignored)."""
    if fmt not in ("csv", "xlsx"):
        raise ValueError(f"unknown report format {fmt!r}; use 'csv' or 'xlsx'")
    if session.get(ImportBatch, batch_id) is None:
        raise LookupError(f"no import batch {batch_id}")
    header, rows = _report_rows(session, batch_id)
    if fmt == "xlsx":
        return iter([_xlsx(header, rows)])
    return _csv(header, rows)


def _csv(header: list[str], rows: Iterator[list[Any]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    yield "\ufeff".encode() + buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    for n, row in enumerate(rows, start=1):
        writer.writerow(row)
        if n % 1000 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def _xlsx(header: list[str], rows: Iterator[list[Any]]) -> bytes:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("errors")
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def batch_counts(session: Session, batch_id: int) -> dict[str, int]:
    """Stored cards and quarantined rows of a batch, counted in the database."""
    cards = session.scalar(
        select(func.count()).select_from(Card).where(Card.import_batch_id == batch_id)
    )
    quarantined = session.scalar(
        select(func.count()).select_from(QuarantinedRow).where(QuarantinedRow.batch_id == batch_id)
    )
    return {"cards": int(cards or 0), "quarantined": int(quarantined or 0)}


# --------------------------------------------------------------------------- command line


def run_cli_import(
    engine: Engine,
    path: Path,
    *,
    console: Any,
    actor: str = "system",
    force: bool = False,
    errors_path: Path | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> int:
    """``yifang import FILE``: import with a progress bar and print the outcome (zh/en).
    Returns the exit code: 0 imported (even with quarantined rows), 2 file refused."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    by_rows = path.suffix.lower() == ".xlsx"
    size_column = MofNCompleteColumn() if by_rows else DownloadColumn()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        size_column,
        TextColumn("{task.fields[rows]:>10,} rows · {task.fields[bad]:,} quarantined"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(f"导入 import {path.name}", total=None, rows=0, bad=0)

        def show(p: ImportProgress) -> None:
            bar.update(
                task, completed=p.position, total=p.total, rows=p.rows_read, bad=p.rows_quarantined
            )
            if p.phase == "indexes":
                bar.update(task, description=f"建立索引 building indexes {path.name}")

        try:
            result = import_file(
                engine, path, actor=actor, force=force, progress=show, chunk_rows=chunk_rows
            )
        except ImportFileError as exc:
            bar.stop()
            console.print(f"[red]无法导入 {path.name}:{exc.message_zh}[/red]")
            console.print(f"[red]cannot import {path.name}: {exc.message_en}[/red]")
            return 2
    if result.already_imported:
        console.print(
            f"[yellow]该文件已于批次 {result.batch_id} 导入,未新增任何记录 / this file was "
            f"imported before (batch {result.batch_id}); nothing added (--force to read it "
            "again)[/yellow]"
        )
    else:
        rate = result.rows_total / result.seconds if result.seconds else 0.0
        console.print(
            f"批次 batch {result.batch_id}: {result.rows_total:,} 行 rows · "
            f"[green]{result.rows_stored:,} 入库 stored[/green] · "
            f"{result.rows_duplicate:,} 重复 already stored · "
            f"[{'red' if result.rows_quarantined else 'green'}]{result.rows_quarantined:,} "
            f"隔离 quarantined[/] · {result.seconds:.1f} s ({rate:,.0f} rows/s)"
        )
        if result.ignored_columns:
            console.print(f"未使用的列 ignored columns: {', '.join(result.ignored_columns)}")
        from yifang.cases.duplicates import scan_batch

        with Session(engine) as session:
            flags = scan_batch(session, result.batch_id)
            session.commit()
        if flags:
            console.print(
                f"[yellow]{flags:,} 对疑似重卡待审核 / suspected duplicate pairs flagged for "
                "review (yifang cards duplicates)[/yellow]"
            )
    if errors_path is not None:
        fmt = "xlsx" if errors_path.suffix.lower() == ".xlsx" else "csv"
        with Session(engine) as session, errors_path.open("wb") as out:
            for piece in error_report(session, result.batch_id, fmt):
                out.write(piece)
        console.print(f"错误报告 error report: {errors_path}")
    elif result.rows_quarantined:
        console.print("用 --errors 错误.csv 导出被隔离的行 / use --errors errors.csv to get them")
    return 0
