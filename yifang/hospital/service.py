"""The hospital front end's workflow: receive a message, keep it, store what it says, and run
case identification, draft cards and syndromes on the encounters it touched.

:func:`receive` is the one entry of every intake format (FHIR, HL7 v2 over MLLP or from
files, CSV, JSON): the message is kept whole (:class:`IntakeMessage`) before anything else,

* a message seen before (same sender and message id with the same content, or the same
  content) is recorded as ``duplicate`` and changes nothing;
* a malformed one is recorded as ``rejected`` with every error found, for inspection;
* a valid one is stored (``accepted``) and processed inside a savepoint: if processing fails
  unexpectedly the message stays, marked ``failed`` with the error, and
  :func:`reprocess` runs it again later — valid data is never lost.

Storing (:func:`store_records`) is an upsert keyed by hospital and visit number. Messages
may arrive out of order: each encounter remembers the sender's time of the newest message
applied (``source_time``); an older message fills only fields still empty and adds the
diagnoses and results it carries (a diagnosis or result already stored from a newer
message is not overwritten). A laboratory result for a visit not seen yet creates the visit
(from the result's patient data) so that it is not lost; the admission message fills it in
later.

:func:`ingest_frames` is the bulk path of CSV extracts and the benchmark: whole batches of
new encounters are inserted with one statement per table; visits already stored go
through the record path above.

Patient identity: ``patient_key`` = SHA-256 of the resident ID number when one is given,
else of the hospital and its patient number, else of the hospital, name and birth date.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast

import polars as pl
from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yifang.cases.codes import UNKNOWN_ID_NUMBERS
from yifang.cases.models import name_key
from yifang.catalog.models import Organisation
from yifang.core.db import utcnow
from yifang.hospital import drafts, syndromes
from yifang.hospital.bulk import insert_frame, insert_frame_ids, upsert_frame
from yifang.hospital.models import (
    Diagnosis,
    Encounter,
    IntakeMessage,
    LabResult,
    StreamObservation,
)
from yifang.hospital.rules import ruleset
from yifang.hospital.schemas import EncounterRecord, RecordError, StreamIn

log = logging.getLogger(__name__)

ACCEPTED = "accepted"
REJECTED = "rejected"
DUPLICATE = "duplicate"
FAILED = "failed"

#: Largest raw message kept inline (characters); a larger CSV file is kept by reference.
MAX_INLINE_RAW = 2_000_000


# --------------------------------------------------------------------------- identity


def patient_key(
    org_code: str,
    patient_number: str | None,
    id_number: str | None,
    patient_name: str | None,
    birth_date: date | str | None,
) -> str:
    """The stable key of a patient (see the module docstring)."""
    real = (id_number or "").strip().upper()
    if real and real not in UNKNOWN_ID_NUMBERS:
        basis = f"id:{real}"
    elif patient_number:
        basis = f"mrn:{org_code}:{patient_number.strip()}"
    else:
        basis = f"name:{org_code}:{name_key(patient_name) or ''}:{birth_date or ''}"
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()


def township_of(address_code: str | None) -> str:
    """The 9-digit township of an address code, or ``""``."""
    code = (address_code or "").strip()
    return code[:9] if len(code) >= 9 and code.isdigit() else ""


# --------------------------------------------------------------------------- storing records

ENCOUNTER_DATA = (
    "patient_number",
    "patient_name",
    "id_type",
    "id_number",
    "sex",
    "birth_date",
    "phone",
    "guardian_name",
    "address_code",
    "address_detail",
    "occupation",
    "work_unit",
    "visit_time",
    "encounter_class",
    "department",
    "doctor_name",
    "chief_complaint",
    "temperature_c",
    "onset_date",
    "status",
)
DIAGNOSIS_DATA = ("icd10", "text", "diagnosed_at", "kind", "refuted")
LAB_DATA = (
    "test_code",
    "test_name",
    "result_text",
    "value_num",
    "unit",
    "positive",
    "specimen",
    "status",
    "observed_at",
)


def _newer(incoming: datetime | None, stored: datetime | None) -> bool:
    """Whether a message sent at ``incoming`` is at least as new as what is stored."""
    return incoming is None or stored is None or incoming >= stored


def _apply(target: Any, values: dict[str, Any], fields: Iterable[str], newer: bool) -> None:
    for f in fields:
        value = values.get(f)
        if value is None:
            continue
        if newer or getattr(target, f) is None:
            setattr(target, f, value)


def store_record(session: Session, rec: EncounterRecord, message_id: int | None) -> int:
    """Store one encounter record (insert or out-of-order-safe update); returns its id."""
    data = rec.model_dump()
    enc = session.scalars(
        select(Encounter).where(
            Encounter.org_code == rec.org_code, Encounter.visit_number == rec.visit_number
        )
    ).first()
    if enc is None:
        enc = Encounter(org_code=rec.org_code, visit_number=rec.visit_number, patient_key="")
        session.add(enc)
        newer = True
    else:
        newer = _newer(rec.source_time, enc.source_time)
    _apply(enc, data, ENCOUNTER_DATA, newer)
    if newer and rec.source_time is not None:
        enc.source_time = rec.source_time
    enc.visit_day = enc.visit_time.date() if enc.visit_time else enc.visit_day
    enc.township = township_of(enc.address_code)
    enc.patient_key = patient_key(
        enc.org_code, enc.patient_number, enc.id_number, enc.patient_name, enc.birth_date
    )
    enc.message_id = message_id if newer or enc.message_id is None else enc.message_id
    session.flush()
    if rec.diagnoses:
        stored_dx = {
            d.entry_key: d
            for d in session.scalars(select(Diagnosis).where(Diagnosis.encounter_id == enc.id))
        }
        for dx in rec.diagnoses:
            row = stored_dx.get(dx.entry_key)
            values = dx.model_dump()
            if row is None:
                row = Diagnosis(
                    encounter_id=enc.id, entry_key=dx.entry_key, source_time=rec.source_time
                )
                session.add(row)
                _apply(row, values, DIAGNOSIS_DATA, True)
            else:
                dx_newer = _newer(rec.source_time, row.source_time)
                _apply(row, values, DIAGNOSIS_DATA, dx_newer)
                if dx_newer:
                    row.refuted = dx.refuted
                    row.source_time = rec.source_time or row.source_time
    for lab in rec.labs:
        row_lab = session.scalars(
            select(LabResult).where(
                LabResult.org_code == rec.org_code, LabResult.result_key == lab.result_key
            )
        ).first()
        values = lab.model_dump()
        if row_lab is None:
            row_lab = LabResult(
                org_code=rec.org_code,
                result_key=lab.result_key,
                encounter_id=enc.id,
                patient_key=enc.patient_key,
                source_time=rec.source_time,
                message_id=message_id,
            )
            session.add(row_lab)
            _apply(row_lab, values, LAB_DATA, True)
        else:
            lab_newer = _newer(rec.source_time, row_lab.source_time)
            _apply(row_lab, values, LAB_DATA, lab_newer)
            if lab_newer:
                row_lab.positive = lab.positive
                row_lab.source_time = rec.source_time or row_lab.source_time
                row_lab.message_id = message_id
    session.flush()
    return enc.id


def store_records(
    session: Session, records: Sequence[EncounterRecord], message_id: int | None = None
) -> list[int]:
    """Store encounter records; returns the ids of the encounters touched (in order)."""
    ids: list[int] = []
    for rec in records:
        encounter_id = store_record(session, rec, message_id)
        if encounter_id not in ids:
            ids.append(encounter_id)
    return ids


# --------------------------------------------------------------------------- processing


@dataclass
class ProcessReport:
    """What processing a batch of encounters found."""

    encounters: int = 0
    syndromes: int = 0
    identify: drafts.IdentifyReport = field(default_factory=drafts.IdentifyReport)

    def as_dict(self) -> dict[str, Any]:
        """The figures as a flat dict."""
        return {
            "encounters": self.encounters,
            "syndromes": self.syndromes,
            "candidates": self.identify.candidates,
            "drafts": self.identify.drafts,
            "already_reported": self.identify.already_reported,
            "merged": self.identify.merged,
            "upgraded": self.identify.upgraded,
            "withdrawn": self.identify.withdrawn,
        }


def process(
    session: Session,
    encounter_ids: Sequence[int],
    now: datetime | None = None,
    known: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame] | None = None,
) -> ProcessReport:
    """Syndromes, counts, case identification and drafts for the given encounters.

    ``known`` holds frames (as :func:`yifang.hospital.drafts.load_frames` returns) of
    encounters just inserted, so that they are not read back; the others are loaded."""
    report = ProcessReport(encounters=len(encounter_ids))
    if not encounter_ids:
        return report
    rules = ruleset(session)
    if known is None:
        frames = drafts.load_frames(session, encounter_ids)
    else:
        have = set(known[0]["encounter_id"].to_list())
        rest = [i for i in encounter_ids if i not in have]
        loaded = drafts.load_frames(session, rest) if rest else None
        frames = known
        if loaded is not None:
            frames = (
                pl.concat([known[0], loaded[0]], how="vertical_relaxed"),
                pl.concat([known[1], loaded[1]], how="vertical_relaxed"),
                pl.concat([known[2], loaded[2]], how="vertical_relaxed"),
            )
    enc, dx, _labs = frames
    # encounters inserted just now have no syndromes, cases or counts stored yet
    new_ids: set[int] = set(known[0]["encounter_id"].to_list()) if known is not None else set()
    found = syndromes.classify(rules, enc, dx)
    syndromes.store(session, encounter_ids, found, new_ids)
    report.syndromes = found.height
    cells = _cells(session, [i for i in encounter_ids if i not in new_ids])
    if known is not None:
        cells |= {
            (o, d)
            for o, d in known[0]
            .select("org_code", pl.col("visit_time").dt.date())
            .unique()
            .iter_rows()
            if d is not None
        }
    syndromes.recount(session, cells)
    report.identify = drafts.identify(session, rules, encounter_ids, frames, now, new_ids)
    session.flush()
    return report


def _cells(session: Session, encounter_ids: Sequence[int]) -> set[tuple[str, date]]:
    """The (hospital, visit day) of stored encounters."""
    cells: set[tuple[str, date]] = set()
    for start in range(0, len(encounter_ids), drafts.ID_CHUNK):
        part = list(encounter_ids[start : start + drafts.ID_CHUNK])
        cells |= {
            (o, d)
            for o, d in session.execute(
                select(Encounter.org_code, Encounter.visit_day)
                .where(Encounter.id.in_(part), Encounter.visit_day.is_not(None))
                .distinct()
            )
            if d is not None
        }
    return cells


# --------------------------------------------------------------------------- intake


@dataclass
class Parsed:
    """A message read by one of the intake parsers."""

    format: str
    records: list[EncounterRecord]
    errors: list[RecordError]
    org_code: str | None = None
    message_key: str | None = None
    message_time: datetime | None = None


@dataclass
class Received:
    """The outcome of :func:`receive`: the kept message and, if processed, the figures."""

    message: IntakeMessage
    report: ProcessReport | None = None

    @property
    def status(self) -> str:
        """accepted, rejected, duplicate or failed."""
        return self.message.status


def sha256_text(raw: str | bytes) -> str:
    """SHA-256 of a message's bytes (text is encoded as UTF-8)."""
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    return hashlib.sha256(data).hexdigest()


def find_duplicate(
    session: Session, org_code: str | None, message_key: str | None, digest: str
) -> IntakeMessage | None:
    """The first accepted message with the same content, from the same sender with the same
    id or not."""
    return session.scalars(
        select(IntakeMessage)
        .where(
            IntakeMessage.content_sha256 == digest,
            IntakeMessage.status == ACCEPTED,
        )
        .order_by(IntakeMessage.id)
    ).first()


def known_organisation(session: Session, code: str | None) -> bool:
    """Whether ``code`` is an active organisation of the catalog."""
    if not code:
        return False
    active = session.scalar(select(Organisation.active).where(Organisation.code == code))
    return bool(active)


def receive(
    session: Session,
    *,
    source: str,
    raw: str,
    parse: Callable[[], Parsed],
    actor: str = "system",
    org_code: str | None = None,
    now: datetime | None = None,
) -> Received:
    """Keep, check and (if valid and new) store and process one message.

    ``parse`` reads the message; it must not raise on bad input (errors go into
    :attr:`Parsed.errors`), but if it does, the message is kept as rejected.
    ``org_code``, when given (the API token's hospital), is the only hospital the message
    may speak for.
    """
    now = now or utcnow()
    digest = sha256_text(raw)
    try:
        parsed = parse()
    except Exception as exc:  # a parser bug must not lose the message
        log.exception("intake parser failed")
        parsed = Parsed(
            format="unknown",
            records=[],
            errors=[
                RecordError(
                    location="message",
                    code="parse_failed",
                    message_zh=f"消息无法解析:{exc}",
                    message_en=f"the message could not be read: {exc}",
                )
            ],
        )
    sender = org_code or parsed.org_code
    errors = list(parsed.errors)
    if org_code is not None:
        for rec in parsed.records:
            if rec.org_code != org_code:
                errors.append(
                    RecordError(
                        location=f"encounter {rec.visit_number}",
                        code="org_mismatch",
                        message_zh=f"机构 {rec.org_code} 与令牌所属机构 {org_code} 不符",
                        message_en=f"organisation {rec.org_code} is not the token's {org_code}",
                    )
                )
    for code in sorted({rec.org_code for rec in parsed.records}):
        if not known_organisation(session, code):
            errors.append(
                RecordError(
                    location="organisation",
                    code="unknown_organisation",
                    message_zh=f"机构编码 {code} 不在机构目录中",
                    message_en=f"organisation {code} is not in the catalog",
                )
            )
    message = IntakeMessage(
        source=source,
        format=parsed.format[:32],
        org_code=(sender or None) and str(sender)[:32],
        message_key=(parsed.message_key or None) and parsed.message_key[:128],
        message_time=parsed.message_time,
        content_sha256=digest,
        received_at=now,
        raw=raw if len(raw) <= MAX_INLINE_RAW else raw[:MAX_INLINE_RAW],
        actor=actor,
        errors=[e.model_dump() for e in errors],
    )
    fatal = [e for e in errors if e.severity == "error"]
    duplicate = None if fatal else find_duplicate(session, sender, parsed.message_key, digest)
    if duplicate is not None:
        message.status = DUPLICATE
        message.duplicate_of_id = duplicate.id
        session.add(message)
        session.flush()
        return Received(message)
    if fatal:
        message.status = REJECTED
        session.add(message)
        session.flush()
        return Received(message)
    message.status = ACCEPTED
    session.add(message)
    session.flush()
    report = _store_and_process(session, message, parsed.records, now)
    return Received(message, report)


def _store_and_process(
    session: Session, message: IntakeMessage, records: Sequence[EncounterRecord], now: datetime
) -> ProcessReport | None:
    """Store and process inside a savepoint; on failure the message is kept as failed."""
    for attempt in (1, 2):
        try:
            with session.begin_nested():
                ids = store_records(session, records, message.id)
                message.encounters = len(ids)
                message.lab_results = sum(len(r.labs) for r in records)
                report = process(session, ids, now)
            return report
        except IntegrityError as exc:  # a concurrent writer created the same visit: retry once
            if attempt == 2:
                return _failed(session, message, exc)
        except Exception as exc:
            log.exception("processing intake message %s failed", message.id)
            return _failed(session, message, exc)
    return None


def _failed(session: Session, message: IntakeMessage, exc: Exception) -> ProcessReport | None:
    message.status = FAILED
    message.errors = [
        *message.errors,
        RecordError(
            location="processing",
            code="processing_failed",
            message_zh=f"消息已保存,处理失败:{exc}",
            message_en=f"the message is kept but processing failed: {exc}",
        ).model_dump(),
    ]
    session.flush()
    return None  # nothing was processed


def reprocess(
    session: Session, message_id: int, parse: Callable[[str], Parsed], now: datetime | None = None
) -> Received:
    """Run a kept message (failed or rejected) again, e.g. after a rule or catalog fix."""
    message = session.get(IntakeMessage, message_id)
    if message is None:
        raise LookupError(f"no intake message {message_id}")
    parsed = parse(message.raw)
    fatal = [e for e in parsed.errors if e.severity == "error"]
    if fatal:
        message.status = REJECTED
        message.errors = [e.model_dump() for e in parsed.errors]
        session.flush()
        return Received(message)
    message.status = ACCEPTED
    message.errors = [e.model_dump() for e in parsed.errors]
    session.flush()
    report = _store_and_process(session, message, parsed.records, now or utcnow())
    return Received(message, report)


# --------------------------------------------------------------------------- bulk frames

ENCOUNTER_FRAME: dict[str, Any] = {
    "org_code": pl.String,
    "visit_number": pl.String,
    **{f: pl.String for f in ENCOUNTER_DATA},
    "birth_date": pl.Date,
    "visit_time": pl.Datetime("us"),
    "temperature_c": pl.Float64,
    "onset_date": pl.Date,
    "source_time": pl.Datetime("us"),
}
DIAGNOSIS_FRAME: dict[str, Any] = {
    "org_code": pl.String,
    "visit_number": pl.String,
    "entry_key": pl.String,
    "icd10": pl.String,
    "text": pl.String,
    "diagnosed_at": pl.Datetime("us"),
    "kind": pl.String,
    "refuted": pl.Boolean,
}
LAB_FRAME: dict[str, Any] = {
    "org_code": pl.String,
    "visit_number": pl.String,
    "result_key": pl.String,
    "test_code": pl.String,
    "test_name": pl.String,
    "result_text": pl.String,
    "value_num": pl.Float64,
    "unit": pl.String,
    "positive": pl.Boolean,
    "specimen": pl.String,
    "status": pl.String,
    "observed_at": pl.Datetime("us"),
}


def conform(frame: pl.DataFrame, schema: dict[str, Any]) -> pl.DataFrame:
    """``frame`` with exactly the columns of ``schema`` (missing ones null), cast."""
    return frame.select(
        [
            (pl.col(c) if c in frame.columns else pl.lit(None)).cast(t).alias(c)
            for c, t in schema.items()
        ]
    )


@dataclass
class BulkReport:
    """What :func:`ingest_frames` did."""

    encounters_new: int = 0
    encounters_updated: int = 0
    diagnoses: int = 0
    lab_results: int = 0
    process: ProcessReport = field(default_factory=ProcessReport)


def ingest_frames(
    session: Session,
    encounters: pl.DataFrame,
    diagnoses: pl.DataFrame | None = None,
    labs: pl.DataFrame | None = None,
    message_id: int | None = None,
    now: datetime | None = None,
    run_process: bool = True,
) -> BulkReport:
    """Store a batch of encounters with their diagnoses and results (frames shaped as
    :data:`ENCOUNTER_FRAME`, :data:`DIAGNOSIS_FRAME`, :data:`LAB_FRAME`; extra columns are
    ignored, missing ones are null) and process them. Rows must be valid already (the CSV
    reader checks them)."""
    now = now or utcnow()
    report = BulkReport()
    enc = conform(encounters, ENCOUNTER_FRAME).unique(
        subset=["org_code", "visit_number"], keep="last", maintain_order=True
    )
    dx = conform(diagnoses if diagnoses is not None else pl.DataFrame(), DIAGNOSIS_FRAME)
    lab = conform(labs if labs is not None else pl.DataFrame(), LAB_FRAME)
    stored = _stored_visits(session, enc)
    is_new = pl.Series(
        [k not in stored for k in enc.select("org_code", "visit_number").iter_rows()],
        dtype=pl.Boolean,
    )
    new_enc = enc.filter(is_new)
    old_enc = enc.filter(~is_new)
    ids: list[int] = []
    person = pl.DataFrame(
        schema={"org_code": pl.String, "visit_number": pl.String, "patient_key": pl.String}
    )
    if not new_enc.is_empty():
        new_ids, person = _insert_encounters(session, new_enc, message_id, now, stored)
        ids += new_ids
        report.encounters_new = new_enc.height
    new_keys = pl.DataFrame(
        [(o, v, stored[(o, v)]) for o, v in new_enc.select("org_code", "visit_number").iter_rows()],
        schema={"org_code": pl.String, "visit_number": pl.String, "encounter_id": pl.Int64},
        orient="row",
    )
    dx_new = dx.join(new_keys, on=["org_code", "visit_number"], how="inner")
    if not dx_new.is_empty():
        rows = dx_new.select(
            "encounter_id",
            "entry_key",
            "icd10",
            "text",
            "diagnosed_at",
            "kind",
            pl.col("refuted").fill_null(False),
        ).unique(subset=["encounter_id", "entry_key"], keep="last")
        insert_frame(session, Diagnosis, rows)
        report.diagnoses += rows.height
    lab_new = lab.join(new_keys, on=["org_code", "visit_number"], how="inner")
    if not lab_new.is_empty():
        taken = _stored_results(session, lab_new)
        seen = pl.Series(
            [k in taken for k in lab_new.select("org_code", "result_key").iter_rows()],
            dtype=pl.Boolean,
        )
        fresh = (
            lab_new.filter(~seen)
            .unique(subset=["org_code", "result_key"], keep="last")
            .join(person, on=["org_code", "visit_number"], how="left")
        )
        if not fresh.is_empty():
            insert_frame(
                session,
                LabResult,
                fresh.with_columns(
                    pl.lit(message_id, pl.Int64).alias("message_id"),
                    pl.lit(now).alias("created_at"),
                ).select(
                    "org_code",
                    "result_key",
                    "encounter_id",
                    "patient_key",
                    *LAB_DATA,
                    "message_id",
                    "created_at",
                ),
            )
            report.lab_results += fresh.height
        resent = lab_new.filter(seen)
        if not resent.is_empty():  # a result already stored (a correction): the record path
            visits = resent.select("org_code", "visit_number").unique()
            ids += store_records(session, _records(visits, dx.clear(), resent), message_id)
    if not old_enc.is_empty():
        old_dx = dx.join(
            old_enc.select("org_code", "visit_number"), on=["org_code", "visit_number"]
        )
        old_lab = lab.join(
            old_enc.select("org_code", "visit_number"), on=["org_code", "visit_number"]
        )
        ids += store_records(session, _records(old_enc, old_dx, old_lab), message_id)
        report.encounters_updated = old_enc.height
    session.flush()
    if run_process:
        known = _known_frames(new_enc, person, new_keys, dx_new, lab_new)
        report.process = process(session, list(dict.fromkeys(ids)), now, known)
    return report


def _known_frames(
    enc: pl.DataFrame,
    person: pl.DataFrame,
    keys: pl.DataFrame,
    dx: pl.DataFrame,
    labs: pl.DataFrame,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame] | None:
    """The just-inserted encounters as :func:`drafts.load_frames` would read them back."""
    if enc.is_empty():
        return None
    with_ids = enc.join(keys, on=["org_code", "visit_number"], how="inner").join(
        person, on=["org_code", "visit_number"], how="left"
    )
    enc_frame = with_ids.select(
        "encounter_id",
        *[
            pl.col(f).cast(t)
            for f, t in drafts.ENCOUNTER_SCHEMA.items()
            if f not in ("encounter_id",)
        ],
    )
    dx_frame = (
        dx.select(
            "encounter_id",
            "entry_key",
            "icd10",
            "text",
            "diagnosed_at",
            pl.col("refuted").fill_null(False),
        )
        if not dx.is_empty()
        else pl.DataFrame(schema=drafts.DIAGNOSIS_SCHEMA)
    )
    lab_frame = (
        labs.select(
            "encounter_id", "test_code", "test_name", "result_text", "positive", "observed_at"
        )
        if not labs.is_empty()
        else pl.DataFrame(schema=drafts.LAB_SCHEMA)
    )
    return (
        enc_frame,
        dx_frame.cast(drafts.DIAGNOSIS_SCHEMA),  # type: ignore[arg-type]
        lab_frame.cast(drafts.LAB_SCHEMA),  # type: ignore[arg-type]
    )


def _table(model: Any) -> Table:
    """The Core table of a mapped class (bulk statements skip the ORM's bookkeeping)."""
    return cast(Table, model.__table__)


def _stored_visits(session: Session, enc: pl.DataFrame) -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = {}
    for (org,), part in enc.group_by("org_code"):
        visits = part["visit_number"].to_list()
        for start in range(0, len(visits), drafts.ID_CHUNK):
            for i, v in session.execute(
                select(Encounter.id, Encounter.visit_number).where(
                    Encounter.org_code == org,
                    Encounter.visit_number.in_(visits[start : start + drafts.ID_CHUNK]),
                )
            ):
                found[(str(org), v)] = i
    return found


def _stored_results(session: Session, labs: pl.DataFrame) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for (org,), part in labs.group_by("org_code"):
        keys = part["result_key"].to_list()
        for start in range(0, len(keys), drafts.ID_CHUNK):
            found |= {
                (str(org), k)
                for k in session.scalars(
                    select(LabResult.result_key).where(
                        LabResult.org_code == org,
                        LabResult.result_key.in_(keys[start : start + drafts.ID_CHUNK]),
                    )
                )
            }
    return found


def _insert_encounters(
    session: Session,
    enc: pl.DataFrame,
    message_id: int | None,
    now: datetime,
    stored: dict[tuple[str, str], int],
) -> tuple[list[int], pl.DataFrame]:
    """Insert new encounters; returns their ids and (org, visit, patient_key) of each."""
    keys = [
        patient_key(o, pn, idn, nm, bd)
        for o, pn, idn, nm, bd in enc.select(
            "org_code", "patient_number", "id_number", "patient_name", "birth_date"
        ).iter_rows()
    ]
    rows = enc.with_columns(
        pl.Series("patient_key", keys, dtype=pl.String),
        pl.col("visit_time").dt.date().alias("visit_day"),
        pl.when(pl.col("address_code").str.contains(r"^\d{9}"))
        .then(pl.col("address_code").str.slice(0, 9))
        .otherwise(pl.lit(""))
        .alias("township"),
        pl.lit(message_id, pl.Int64).alias("message_id"),
        pl.lit(now).alias("created_at"),
        pl.lit(now).alias("updated_at"),
    )
    inserted = insert_frame_ids(session, Encounter, rows, ("org_code", "visit_number"))
    stored.update({(str(o), str(v)): i for (o, v), i in inserted.items()})
    ids = [stored[k] for k in enc.select("org_code", "visit_number").iter_rows()]
    person = rows.select("org_code", "visit_number", "patient_key")
    return ids, person


def _records(enc: pl.DataFrame, dx: pl.DataFrame, lab: pl.DataFrame) -> list[EncounterRecord]:
    """Rows of the bulk frames as records (for visits already stored)."""
    dx_by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in dx.iter_rows(named=True):
        dx_by.setdefault((row["org_code"], row["visit_number"]), []).append(row)
    lab_by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in lab.iter_rows(named=True):
        lab_by.setdefault((row["org_code"], row["visit_number"]), []).append(row)
    out = []
    for row in enc.iter_rows(named=True):
        key = (row["org_code"], row["visit_number"])
        data = {k: v for k, v in row.items() if k in EncounterRecord.model_fields and v is not None}
        data["diagnoses"] = [
            {k: v for k, v in d.items() if v is not None and k not in ("org_code", "visit_number")}
            for d in dx_by.get(key, [])
        ]
        data["labs"] = [
            {
                k: v
                for k, v in d.items()
                if v is not None
                and k not in ("org_code", "visit_number", "encounter_id", "patient_key")
            }
            for d in lab_by.get(key, [])
        ]
        out.append(EncounterRecord.model_validate(data))
    return out


# --------------------------------------------------------------------------- streams


def put_observations(session: Session, rows: Sequence[StreamIn], known: Iterable[str]) -> int:
    """Store stream observations (upsert on stream, region, place, day); unknown streams
    are refused with :class:`ValueError` naming the row."""
    allowed = set(known)
    for i, row in enumerate(rows, start=1):
        if row.stream not in allowed:
            raise ValueError(
                f"row {i}: stream {row.stream!r} is not one of {', '.join(sorted(allowed))}"
            )
    frame = pl.DataFrame(
        [(r.stream, r.region_code, r.place, r.day, r.value, r.denominator, r.source) for r in rows],
        schema=STREAM_FRAME,
        orient="row",
    )
    return put_observation_frame(session, frame)


#: Columns of a frame of stream observations (see :func:`put_observation_frame`).
STREAM_FRAME: dict[str, Any] = {
    "stream": pl.String,
    "region_code": pl.String,
    "place": pl.String,
    "day": pl.Date,
    "value": pl.Float64,
    "denominator": pl.Float64,
    "source": pl.String,
}
#: The simulator's and other extracts' names of the columns.
STREAM_ALIASES = {"place_id": "place", "date": "day", "日期": "day", "地区编码": "region_code"}


def put_observation_frame(session: Session, frame: pl.DataFrame) -> int:
    """Store a frame of stream observations (columns of :data:`STREAM_FRAME`, or their
    :data:`STREAM_ALIASES`; ``place`` and ``source`` may be missing), replacing the stored
    value of the same stream, region, place and day (a resend corrects; the last of
    repeated keys in the frame wins). One prepared ``INSERT … ON CONFLICT DO UPDATE``, on
    SQLite and PostgreSQL alike. Returns the rows stored."""
    frame = frame.rename({k: v for k, v in STREAM_ALIASES.items() if k in frame.columns})
    frame = conform(frame, STREAM_FRAME).with_columns(pl.col("place").fill_null(""))
    frame = frame.unique(
        subset=["stream", "region_code", "place", "day"], keep="last", maintain_order=True
    )
    if frame.is_empty():
        return 0
    upsert_frame(
        session,
        StreamObservation,
        frame.with_columns(pl.lit(utcnow()).alias("updated_at")),
        keys=("stream", "region_code", "place", "day"),
    )
    session.flush()
    return frame.height


def stream_definitions() -> dict[str, dict[str, Any]]:
    """The streams of ``data/streams.yaml``, by code."""
    import yaml

    from yifang.hospital.rules import DATA_DIR

    data = yaml.safe_load((DATA_DIR / "streams.yaml").read_text(encoding="utf-8"))
    return {str(k): dict(v) for k, v in (data.get("streams") or {}).items()}
