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
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.orm import Session

from yifang.simulate.engine import SimulationResult, content_digest

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
    unknown = fmts - {"csv", "jsonl", "xlsx"}
    if unknown:
        raise ValueError(f"unknown output formats: {sorted(unknown)} (csv, jsonl, xlsx)")
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
    from yifang.simulate.models import SimCardError, SimOutbreak, SimOutbreakCard, SimRun

    sim_ids = select(Card.id).where(Card.created_by == "simulator")
    session.execute(delete(DuplicateFlag).where(DuplicateFlag.card_id.in_(sim_ids)))
    session.execute(delete(DuplicateFlag).where(DuplicateFlag.other_card_id.in_(sim_ids)))
    session.execute(delete(CardRevision).where(CardRevision.card_id.in_(sim_ids)))
    res = session.execute(delete(Card).where(Card.created_by == "simulator"))
    n = getattr(res, "rowcount", 0) or 0
    session.execute(delete(SimOutbreakCard))
    session.execute(delete(SimOutbreak))
    session.execute(delete(SimCardError))
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
