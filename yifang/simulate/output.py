"""Writing a simulation: into the database, or into files in the importer's formats.

Database: cards are bulk-inserted (status ``reviewed`` for the past, ``submitted`` for the
last days) together with the ground truth (:mod:`yifang.simulate.models`). Reporting
organisations that the catalog lacks are added as synthetic organisations.

Files: ``cards.csv`` (UTF-8 with BOM, what Excel and the importer read), ``cards.jsonl``,
optionally ``cards.xlsx``, and the ground truth as ``outbreaks.csv``,
``outbreak_cards.csv``, ``card_errors.csv`` and ``run.json``. Columns carry the card's
field names as the database and the importer use them. Everything written is a function
of the seed only: no timestamps of the moment of writing, fixed row order, fixed XLSX
metadata and archive dates, so the same seed gives byte-identical files.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.orm import Session

from yifang.simulate.engine import SimulationResult, content_digest

if TYPE_CHECKING:
    from yifang.simulate.encounters import Encounters
    from yifang.simulate.streams import StreamSet

CARD_COLUMNS = (
    "card_number", "report_type", "status", "patient_name", "guardian_name", "id_type",
    "id_number", "sex", "birth_date", "age_value", "age_unit", "work_unit", "phone",
    "residence_category", "address_code", "address_detail", "occupation", "occupation_other",
    "classification", "chronicity", "onset_date", "diagnosis_time", "death_date",
    "disease_code", "subtype_code", "org_code", "doctor_name", "fill_date", "remarks",
    "entered_at", "submitted_at", "reviewed_at",
)  # fmt: skip
BATCH = 5000
FIXED_TIME = datetime(2000, 1, 1)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return (
            value.strftime("%Y-%m-%d %H:%M:%S")
            if value.second or value.minute
            else value.strftime("%Y-%m-%d %H:%M")
        )
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return _text(value)
    return value


# ---------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------


def write_files(
    result: SimulationResult, out_dir: Path, formats: Iterable[str] = ("csv", "jsonl")
) -> list[Path]:
    """Write cards and ground truth into ``out_dir``; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    fmts = set(formats)
    unknown = fmts - {"csv", "jsonl", "xlsx", "fhir", "hl7"}
    if unknown:
        raise ValueError(
            f"unknown output formats: {sorted(unknown)} "
            "(csv, jsonl, xlsx; fhir, hl7 for encounters)"
        )
    rows = [[_text(c.get(k)) for k in CARD_COLUMNS] for c in result.cards]
    if "csv" in fmts:
        written.append(_write_csv(out_dir / "cards.csv", CARD_COLUMNS, rows, bom=True))
    if "jsonl" in fmts:
        p = out_dir / "cards.jsonl"
        with p.open("w", encoding="utf-8", newline="\n") as fh:
            for c in result.cards:
                obj = {k: _json_value(c.get(k)) for k in CARD_COLUMNS}
                fh.write(json.dumps(obj, ensure_ascii=False, sort_keys=False) + "\n")
        written.append(p)
    if "xlsx" in fmts:
        written.append(_write_xlsx(out_dir / "cards.xlsx", CARD_COLUMNS, rows))
    written.extend(write_truth_files(result, out_dir))
    return written


def _write_csv(
    path: Path, header: Iterable[str], rows: Iterable[list[str]], bom: bool = False
) -> Path:
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(list(header))
        w.writerows(rows)
    return path


def _write_xlsx(path: Path, header: tuple[str, ...], rows: list[list[str]]) -> Path:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("cards")
    ws.append(list(header))
    for r in rows:
        ws.append(r)
    wb.properties.created = FIXED_TIME
    wb.properties.modified = FIXED_TIME
    wb.properties.creator = "yifang simulate"
    buf = io.BytesIO()
    wb.save(buf)
    # rewrite the archive with fixed entry dates so that equal seeds give equal bytes
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in sorted(src.infolist(), key=lambda i: i.filename):
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps the save time here
                data = re.sub(
                    rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2000-01-01T00:00:00Z", data
                )
            zi = zipfile.ZipInfo(info.filename, date_time=(2000, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(zi, data)
    return path


def write_truth_files(result: SimulationResult, out_dir: Path) -> list[Path]:
    """The ground truth next to the cards: outbreaks, their cards, erroneous cards, run."""
    paths = []
    ob_cols = (
        "number",
        "kind",
        "disease_code",
        "region_code",
        "townships",
        "place_name",
        "place_kind",
        "start_date",
        "end_date",
        "extra_cases",
        "reported_cases",
        "rt",
        "note",
    )
    rows = [
        [
            str(o.id),
            o.kind,
            o.disease_code,
            o.region_code,
            " ".join(o.townships),
            o.place_name or "",
            o.place_kind or "",
            o.start.isoformat(),
            o.end.isoformat(),
            str(o.extra_cases),
            str(len(o.card_numbers)),
            "" if o.rt is None else f"{o.rt:.3f}",
            o.note,
        ]
        for o in result.outbreaks
    ]
    paths.append(_write_csv(out_dir / "outbreaks.csv", ob_cols, rows))
    rows = [[str(o.id), n] for o in result.outbreaks for n in o.card_numbers]
    paths.append(
        _write_csv(out_dir / "outbreak_cards.csv", ("outbreak_number", "card_number"), rows)
    )
    rows = [[e.card_number, e.kind, e.detail, e.duplicate_of or ""] for e in result.errors]
    paths.append(
        _write_csv(
            out_dir / "card_errors.csv", ("card_number", "kind", "detail", "duplicate_of"), rows
        )
    )
    run = {
        "city": result.city.config.code,
        "seed": result.seed,
        "start": result.start.isoformat(),
        "end": result.end.isoformat(),
        "cards": len(result.cards),
        "outbreaks": len(result.outbreaks),
        "errors": len(result.errors),
        "digest": content_digest(result.cards),
        "population_source": result.city.population_source,
    }
    p = out_dir / "run.json"
    p.write_text(json.dumps(run, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    paths.append(p)
    return paths


# ---------------------------------------------------------------------------------------
# database
# ---------------------------------------------------------------------------------------


def clear_simulation(session: Session) -> int:
    """Remove earlier simulated cards and ground truth; return the number of cards removed."""
    from yifang.cases.models import Card, CardRevision, DuplicateFlag
    from yifang.simulate.models import (
        SimCardError,
        SimEncounter,
        SimEncounterLab,
        SimOutbreak,
        SimOutbreakCard,
        SimPlace,
        SimRun,
        SimStream,
    )

    sim_ids = select(Card.id).where(Card.created_by == "simulator")
    session.execute(delete(DuplicateFlag).where(DuplicateFlag.card_id.in_(sim_ids)))
    session.execute(delete(DuplicateFlag).where(DuplicateFlag.other_card_id.in_(sim_ids)))
    session.execute(delete(CardRevision).where(CardRevision.card_id.in_(sim_ids)))
    res = session.execute(delete(Card).where(Card.created_by == "simulator"))
    n = getattr(res, "rowcount", 0) or 0
    session.execute(delete(SimOutbreakCard))
    session.execute(delete(SimOutbreak))
    session.execute(delete(SimCardError))
    for table in (SimEncounterLab, SimEncounter, SimStream, SimPlace):
        session.execute(delete(table))
    session.execute(delete(SimRun))
    return int(n)


def _ensure_organisations(session: Session, result: SimulationResult) -> int:
    from yifang.catalog.models import Organisation, Region

    if not result.reporters:
        return 0
    have = set(session.scalars(select(Organisation.code)))
    regions = set(session.scalars(select(Region.code)))
    rows = []
    for code, name, county, region in result.reporters:
        if code in have:
            continue
        region_code = region if region in regions else county
        if region_code not in regions:
            raise ValueError(
                f"organisation {code} ({name}) needs region {region} or {county}, which the "
                "catalog does not hold: run `yifang catalog load` first"
            )
        rows.append(
            {
                "code": code,
                "name": name,
                "kind": "hospital",
                "region_code": region_code,
                "synthetic": True,
                "active": True,
            }
        )
    if rows:
        session.execute(insert(Organisation), rows)
    return len(rows)


def write_database(
    session: Session,
    result: SimulationResult,
    params: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
    digest: str | None = None,
) -> int:
    """Insert the cards and the ground truth; return the run id. The caller commits."""
    from yifang.cases.models import Card
    from yifang.simulate.models import SimCardError, SimOutbreak, SimOutbreakCard, SimRun

    _ensure_organisations(session, result)
    run = SimRun(
        city_code=result.city.config.code,
        seed=result.seed,
        start_date=result.start,
        end_date=result.end,
        scale=float((params or {}).get("scale", 1.0)),
        errors_share=float((params or {}).get("errors_share", 0.0)),
        cards=len(result.cards),
        digest=digest or content_digest(result.cards),
        params=params or {},
    )
    session.add(run)
    session.flush()
    for lo in range(0, len(result.cards), BATCH):
        # Core executemany: one prepared statement for the batch (the ORM bulk path would
        # fall back to one statement per row when rows differ in which fields are empty)
        session.execute(cast(Table, Card.__table__).insert(), result.cards[lo : lo + BATCH])
        if progress:
            progress(min(BATCH, len(result.cards) - lo))
    for o in result.outbreaks:
        row = SimOutbreak(
            run_id=run.id,
            number=o.id,
            kind=o.kind,
            disease_code=o.disease_code,
            region_code=o.region_code,
            townships=o.townships,
            place_name=o.place_name,
            place_kind=o.place_kind,
            start_date=o.start,
            end_date=o.end,
            extra_cases=o.extra_cases,
            reported_cases=len(o.card_numbers),
            rt=o.rt,
            note=o.note,
        )
        session.add(row)
        session.flush()
        if o.card_numbers:
            session.execute(
                insert(SimOutbreakCard),
                [{"outbreak_id": row.id, "card_number": n} for n in o.card_numbers],
            )
    if result.errors:
        session.execute(
            insert(SimCardError),
            [
                {
                    "run_id": run.id,
                    "card_number": e.card_number,
                    "kind": e.kind,
                    "detail": e.detail[:200],
                    "duplicate_of": e.duplicate_of,
                }
                for e in result.errors
            ],
        )
    return int(run.id)


# ---------------------------------------------------------------------------------------
# streams and encounters
# ---------------------------------------------------------------------------------------

STREAM_COLUMNS = ("stream", "region_code", "place_id", "date", "value", "denominator")
PLACE_COLUMNS = ("place_id", "kind", "name", "region_code", "capacity")


def place_rows(result: SimulationResult) -> list[dict[str, Any]]:
    """The generated places with the identifiers the streams use."""
    from yifang.simulate.streams import place_code

    city = result.city
    return [
        {
            "place_id": place_code(p),
            "kind": p.kind,
            "name": p.name,
            "region_code": city.codes[p.township],
            "capacity": int(p.capacity),
        }
        for p in city.places
    ]


def write_stream_files(result: SimulationResult, streams: StreamSet, out_dir: Path) -> list[Path]:
    """``streams.csv`` (stream, region_code, place_id, date, value, denominator; empty
    denominator where a stream has none) and ``places.csv`` (place_id, kind, name,
    region_code, capacity)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "streams.csv"
    streams.frame().write_csv(path, line_terminator="\n", date_format="%Y-%m-%d")
    places = [[str(r[k]) for k in PLACE_COLUMNS] for r in place_rows(result)]
    return [path, _write_csv(out_dir / "places.csv", PLACE_COLUMNS, places)]


def _int32_bytes(values: Any) -> bytes:
    import numpy as np

    return bytes(np.ascontiguousarray(values, dtype="<i4").tobytes())


def stream_rows(session: Session, run_id: int) -> list[tuple[str, str, str, date, int, int | None]]:
    """The long rows (stream, region_code, place_id, date, value, denominator) of a run."""
    from datetime import timedelta

    import numpy as np

    from yifang.simulate.models import SimStream

    out: list[tuple[str, str, str, date, int, int | None]] = []
    for s in session.scalars(
        select(SimStream).where(SimStream.run_id == run_id).order_by(SimStream.id)
    ):
        days = np.frombuffer(s.days, dtype="<i4").tolist()
        values = np.frombuffer(s.values, dtype="<i4").tolist()
        dens: list[int | None] = (
            np.frombuffer(s.denominators, dtype="<i4").tolist()
            if s.denominators is not None
            else [None] * len(days)
        )
        for d, v, n in zip(days, values, dens, strict=True):
            out.append(
                (s.stream, s.region_code, s.place_id, s.first_date + timedelta(days=d), v, n)
            )
    return out


def _driver_insert(
    session: Session, table: Table, columns: list[str], rows: list[tuple[Any, ...]]
) -> None:
    """Insert tuples with one driver-level ``executemany`` (COPY on PostgreSQL/psycopg).

    Values must already be in the driver's form (the caller converts times for SQLite).
    """
    if not rows:
        return
    connection = session.connection()
    quote = connection.dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        raw = connection.connection.driver_connection
        assert raw is not None
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {quote(table.name)} ({names}) FROM STDIN") as copy,
        ):
            for r in rows:
                copy.write_row(r)
        return
    marks = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(connection.dialect.paramstyle)
    if marks is None:
        connection.execute(insert(table), [dict(zip(columns, r, strict=True)) for r in rows])
        return
    sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({', '.join(marks for _ in columns)})"
    connection.exec_driver_sql(sql, rows)


def _times(session: Session, start: date, minutes: Any) -> list[Any]:
    """Local minutes from ``start`` as the driver stores a naive DateTime."""
    import numpy as np

    stamps = np.datetime64(start, "m") + np.asarray(minutes, dtype=np.int64)
    if session.connection().dialect.name == "sqlite":
        # SQLAlchemy's SQLite DateTime format: 'YYYY-MM-DD HH:MM:SS.ffffff'
        text = np.datetime_as_string(stamps.astype("datetime64[us]"), unit="us")
        chars = text.astype("<U26").view("<U1").reshape(-1, 26).copy()
        chars[:, 10] = " "
        return list(chars.view("<U26").ravel().tolist())
    return list(stamps.astype("datetime64[us]").tolist())


def write_streams_database(
    session: Session,
    run_id: int,
    result: SimulationResult,
    streams: StreamSet,
    enc: Encounters,
) -> tuple[int, int]:
    """Insert places, stream series, encounters and lab results; return (series, encounters)."""
    from yifang.simulate.models import SimEncounter, SimEncounterLab, SimPlace, SimStream

    session.execute(insert(SimPlace), [{"run_id": run_id, **r} for r in place_rows(result)])
    if streams.series:
        session.execute(
            insert(SimStream),
            [
                {
                    "run_id": run_id,
                    "stream": s.stream,
                    "region_code": s.region_code,
                    "place_id": s.place_id,
                    "first_date": streams.start,
                    "days": _int32_bytes(s.days),
                    "values": _int32_bytes(s.value),
                    "denominators": None if s.denominator is None else _int32_bytes(s.denominator),
                }
                for s in streams.series
            ],
        )
    codes = result.city.codes
    visit = _times(session, result.start, enc.minute)
    columns = [
        "run_id", "encounter_id", "kind", "visit_time", "org_code", "department",
        "region_code", "age", "sex", "icd10", "diagnosis", "chief_complaint", "temperature",
        "true_disease_code", "card_number", "outbreak_number",
    ]  # fmt: skip
    rows = list(
        zip(
            [run_id] * len(enc),
            enc.encounter_id.tolist(),
            enc.kind.tolist(),
            visit,
            enc.org.tolist(),
            enc.department.tolist(),
            [codes[t] for t in enc.township.tolist()],
            enc.age.tolist(),
            enc.sex.tolist(),
            enc.icd10.tolist(),
            enc.diagnosis.tolist(),
            enc.complaint.tolist(),
            enc.temperature.tolist(),
            [t or None for t in enc.true_disease.tolist()],
            [c or None for c in enc.card_number.tolist()],
            [o or None for o in enc.outbreak.tolist()],
            strict=True,
        )
    )
    _driver_insert(session, cast(Table, SimEncounter.__table__), columns, rows)
    if enc.labs:
        collected = _times(session, result.start, [lab.collected_minute for lab in enc.labs])
        reported = _times(session, result.start, [lab.reported_minute for lab in enc.labs])
        lab_rows = [
            {
                "run_id": run_id,
                "encounter_id": str(enc.encounter_id[lab.row]),
                "test_code": lab.test.code,
                "test_name": lab.test.name,
                "specimen": lab.test.specimen,
                "result": lab.result,
                "positive": lab.test.positive,
                "collected_at": c,
                "reported_at": r,
            }
            for lab, c, r in zip(enc.labs, collected, reported, strict=True)
        ]
        lab_cols = list(lab_rows[0])
        if session.connection().dialect.name == "sqlite":
            for row in lab_rows:
                row["positive"] = int(row["positive"])
        _driver_insert(
            session,
            cast(Table, SimEncounterLab.__table__),
            lab_cols,
            [tuple(r[c] for c in lab_cols) for r in lab_rows],
        )
    return len(streams.series), len(enc)
