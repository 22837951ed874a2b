"""From identified cases to draft report cards, the doctor's decision, and missed reports.

:func:`identify` runs the rules (:mod:`yifang.hospital.rules`) over a batch of stored
encounters and makes, for each new case, a draft card (``Card.status = 'draft'``,
``source = 'hospital'``, the hospital's organisation code) pre-filled from the encounter:
patient, address, diagnosis time, disease, classification. What the hospital system did not
send (occupation, often the address code) is left empty; the validation errors of the draft
are kept on the case (``draft_errors``) so that the doctor sees at once what to complete.

One person, one disease, one draft: a case is not drafted again when

* the same person already has a card (not deleted) for the same disease group within the
  disease's ``duplicate_window_days`` (matched on a real document number, or on the
  normalised name with the birth date — the cases capability's own duplicate rules) →
  ``already_reported``;
* the same person already has an identified case of that disease group within that window
  (same ``patient_key``) → ``merged`` into it; within a batch the earliest finding wins.

The report clock starts at the diagnosis (the diagnosis's time, or the result's time for a
laboratory finding, else the visit's): ``due_at = diagnosed_at + report_limit_hours`` of the
disease (2 h or 24 h, catalog data). The doctor then confirms (the card is submitted through
the cases workflow, with any corrections), or rejects with a reason (the draft is deleted
with that reason).

:func:`scan_missed` finds missed reports (漏报): cases still without a submitted card past
their time limit. A card submitted after the limit resolves the missed report as
``reported_late``; the row stays for the hospital's indicators.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import ColumnElement, Table, and_, bindparam, func, select, update
from sqlalchemy.orm import Session

from yifang.cases import service as cards
from yifang.cases.codes import UNKNOWN_ID_NUMBERS
from yifang.cases.models import Card, name_key
from yifang.cases.validation import RAW_COLUMNS, Reference, validate_frame
from yifang.catalog.models import Organisation
from yifang.core.audit import AuditEntry, record
from yifang.core.db import utcnow
from yifang.core.jurisdiction import Scope
from yifang.core.settings import get_settings
from yifang.hospital.bulk import insert_frame, insert_frame_ids, json_text
from yifang.hospital.models import (
    Diagnosis,
    Encounter,
    IdentifiedCase,
    LabResult,
    MissedReport,
)
from yifang.hospital.rules import (
    RuleSet,
    diagnosis_candidates,
    lab_candidates,
)

DRAFT = "draft"
REPORTED = "reported"
REJECTED = "rejected"
ALREADY_REPORTED = "already_reported"
MERGED = "merged"
WITHDRAWN = "withdrawn"
#: Cases that stand for a person's episode: a new finding within the window joins them.
LIVE = (DRAFT, REPORTED, ALREADY_REPORTED)

ACTOR = "hospital-frontend"
ID_CHUNK = 5_000


def local_now(now: datetime | None = None) -> datetime:
    """The city's wall-clock time (naive) of the instant ``now`` (naive UTC or aware)."""
    instant = now or utcnow()
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(ZoneInfo(get_settings().timezone)).replace(tzinfo=None)


def to_utc(local: datetime) -> datetime:
    """A wall-clock time of the city as naive UTC."""
    aware = local.replace(tzinfo=ZoneInfo(get_settings().timezone))
    return aware.astimezone(UTC).replace(tzinfo=None)


# --------------------------------------------------------------------------- loading


ENCOUNTER_FIELDS = (
    "id",
    "org_code",
    "patient_key",
    "patient_name",
    "guardian_name",
    "id_type",
    "id_number",
    "sex",
    "birth_date",
    "phone",
    "address_code",
    "address_detail",
    "occupation",
    "work_unit",
    "visit_time",
    "doctor_name",
    "onset_date",
)


#: Columns of the frames :func:`load_frames` returns.
ENCOUNTER_SCHEMA: dict[str, Any] = {
    **{("encounter_id" if f == "id" else f): pl.String for f in ENCOUNTER_FIELDS},
    "encounter_id": pl.Int64,
    "birth_date": pl.Date,
    "visit_time": pl.Datetime("us"),
    "onset_date": pl.Date,
    "chief_complaint": pl.String,
    "temperature_c": pl.Float64,
}
DIAGNOSIS_SCHEMA: dict[str, Any] = {
    "encounter_id": pl.Int64,
    "entry_key": pl.String,
    "icd10": pl.String,
    "text": pl.String,
    "diagnosed_at": pl.Datetime("us"),
    "refuted": pl.Boolean,
}
LAB_SCHEMA: dict[str, Any] = {
    "encounter_id": pl.Int64,
    "test_code": pl.String,
    "test_name": pl.String,
    "result_text": pl.String,
    "positive": pl.Boolean,
    "observed_at": pl.Datetime("us"),
}


def _chunks(ids: Sequence[int]) -> list[list[int]]:
    return [list(ids[i : i + ID_CHUNK]) for i in range(0, len(ids), ID_CHUNK)]


def load_frames(
    session: Session, encounter_ids: Sequence[int]
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The encounters (with the fields a draft needs, the complaint and temperature), their
    diagnoses and their results, as Polars frames."""
    enc_cols = [getattr(Encounter, f) for f in ENCOUNTER_FIELDS] + [
        Encounter.chief_complaint,
        Encounter.temperature_c,
    ]
    enc_rows: list[Any] = []
    dx_rows: list[Any] = []
    lab_rows: list[Any] = []
    for part in _chunks(encounter_ids):
        enc_rows += session.execute(select(*enc_cols).where(Encounter.id.in_(part))).all()
        dx_rows += session.execute(
            select(
                Diagnosis.encounter_id,
                Diagnosis.entry_key,
                Diagnosis.icd10,
                Diagnosis.text,
                Diagnosis.diagnosed_at,
                Diagnosis.refuted,
            ).where(Diagnosis.encounter_id.in_(part))
        ).all()
        lab_rows += session.execute(
            select(
                LabResult.encounter_id,
                LabResult.test_code,
                LabResult.test_name,
                LabResult.result_text,
                LabResult.positive,
                LabResult.observed_at,
            ).where(LabResult.encounter_id.in_(part))
        ).all()
    enc = pl.DataFrame([tuple(r) for r in enc_rows], schema=ENCOUNTER_SCHEMA, orient="row")
    dx = pl.DataFrame([tuple(r) for r in dx_rows], schema=DIAGNOSIS_SCHEMA, orient="row")
    labs = pl.DataFrame([tuple(r) for r in lab_rows], schema=LAB_SCHEMA, orient="row")
    return enc, dx, labs


# --------------------------------------------------------------------------- identification


@dataclass
class IdentifyReport:
    """What :func:`identify` did."""

    candidates: int = 0
    drafts: int = 0
    already_reported: int = 0
    merged: int = 0
    upgraded: int = 0
    withdrawn: int = 0


def candidates(rules: RuleSet, dx: pl.DataFrame, labs: pl.DataFrame) -> pl.DataFrame:
    """All findings of the batch, one row per (encounter, disease group): a laboratory
    finding wins over a diagnosis (it is a confirmation), a more specific diagnosis over a
    general one; the earliest time of any finding of that group starts the clock, and the
    evidence of all of them is kept."""
    found = pl.concat(
        [diagnosis_candidates(rules, dx), lab_candidates(rules, labs)], how="vertical_relaxed"
    )
    if found.is_empty():
        return found.with_columns(pl.lit(None, pl.String).alias("disease_group"))
    groups = pl.DataFrame(
        [(c, f.group) for c, f in rules.diseases.items()],
        schema={"disease_code": pl.String, "disease_group": pl.String},
        orient="row",
    )
    found = found.join(groups, on="disease_code", how="inner").with_columns(
        (pl.col("rule_kind") == "lab").alias("__lab")
    )
    evidence = found.group_by("encounter_id", "disease_group").agg(
        pl.col("evidence").unique(maintain_order=True).str.join("; ").str.slice(0, 200),
        pl.col("diagnosed_at").min().alias("__first"),
    )
    best = found.sort(["__lab", "classification"], descending=[True, True], nulls_last=True).unique(
        subset=["encounter_id", "disease_group"], keep="first", maintain_order=True
    )
    return (
        best.drop("evidence", "__lab")
        .join(evidence, on=["encounter_id", "disease_group"], how="left")
        .with_columns(pl.coalesce("__first", "diagnosed_at").alias("diagnosed_at"))
        .drop("__first")
    )


def identify(
    session: Session,
    rules: RuleSet,
    encounter_ids: Sequence[int],
    frames: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame] | None = None,
    now: datetime | None = None,
    new_ids: Collection[int] = (),
) -> IdentifyReport:
    """Find the cases of the given encounters and draft their cards (see the module
    docstring). ``frames`` (from :func:`load_frames`) may be passed when already loaded;
    ``new_ids`` are encounters inserted just now (no case of theirs is stored yet)."""
    now = now or utcnow()
    report = IdentifyReport()
    enc, dx, labs = frames if frames is not None else load_frames(session, encounter_ids)
    found = candidates(rules, dx, labs)
    report.candidates = found.height
    existing = _existing_cases(session, [i for i in encounter_ids if i not in new_ids])
    report.withdrawn = _withdraw_unsupported(session, existing, found, now)
    if found.is_empty():
        return report
    found = found.join(
        enc.select("encounter_id", "org_code", "patient_key", "visit_time"),
        on="encounter_id",
        how="inner",
    ).with_columns(
        pl.coalesce("diagnosed_at", "visit_time")
        .fill_null(local_now(now))
        .dt.truncate("1h")
        .alias("diagnosed_at")
    )
    fresh: list[dict[str, Any]] = []
    for row in found.iter_rows(named=True):
        stored = existing.get((row["encounter_id"], row["disease_group"]))
        if stored is None:
            fresh.append(row)
        elif _upgrade(session, rules, stored, row):
            report.upgraded += 1
    if not fresh:
        return report
    people = enc.filter(pl.col("encounter_id").is_in([r["encounter_id"] for r in fresh]))
    by_encounter = {r["encounter_id"]: r for r in people.iter_rows(named=True)}
    fresh.sort(key=lambda r: (r["patient_key"], r["disease_group"], r["diagnosed_at"]))
    prior_cases = _prior_cases(session, fresh)
    prior_cards = _prior_cards(session, fresh, by_encounter, rules)
    drafts: list[dict[str, Any]] = []
    kept: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in fresh:
        facts = rules.diseases[row["disease_code"]]
        window = timedelta(days=facts.duplicate_window_days)
        key = (row["patient_key"], row["disease_group"])
        row["status"] = DRAFT
        row["classification"] = facts.classification_for(row["classification"])
        row["due_at"] = row["diagnosed_at"] + timedelta(hours=facts.report_limit_hours)
        card_id = _within(
            prior_cards.get(_person_key(by_encounter[row["encounter_id"]], row)), row, window
        )
        earlier = _within(prior_cases.get(key), row, window)
        same_batch = _within(kept.get(key), row, window, field="__row")
        if card_id is not None:
            row["status"], row["card_id"] = ALREADY_REPORTED, card_id
            report.already_reported += 1
        elif earlier is not None:
            row["status"], row["merged_into_id"] = MERGED, earlier
            report.merged += 1
        elif same_batch is not None:
            row["status"], row["__merge_row"] = MERGED, same_batch
            report.merged += 1
        else:
            drafts.append(row)
        row["__row"] = id(row)
        if row["status"] == DRAFT:
            kept.setdefault(key, []).append(row)
    _write_drafts(session, rules, drafts, by_encounter, now)
    report.drafts = len(drafts)
    _write_cases(session, fresh, now)
    return report


def _within(
    prior: list[dict[str, Any]] | None, row: dict[str, Any], window: timedelta, field: str = "id"
) -> Any:
    """The id (``field``) of the first earlier finding within ``window`` of ``row``."""
    for p in prior or ():
        if abs(row["diagnosed_at"] - p["diagnosed_at"]) <= window:
            return p[field]
    return None


def _existing_cases(
    session: Session, encounter_ids: Sequence[int]
) -> dict[tuple[int, str], IdentifiedCase]:
    found: dict[tuple[int, str], IdentifiedCase] = {}
    for part in _chunks(encounter_ids):
        for case in session.scalars(
            select(IdentifiedCase).where(IdentifiedCase.encounter_id.in_(part))
        ):
            found[(case.encounter_id, case.disease_group)] = case
    return found


def _withdraw_unsupported(
    session: Session,
    existing: dict[tuple[int, str], IdentifiedCase],
    found: pl.DataFrame,
    now: datetime,
) -> int:
    """Drafts whose evidence is gone (diagnosis refuted, result corrected) are withdrawn and
    their draft cards deleted as ruled out."""
    if not existing:
        return 0
    still = set()
    if not found.is_empty():
        still = set(found.select("encounter_id", "disease_group").iter_rows())
    withdrawn = 0
    for key, case in existing.items():
        if case.status != DRAFT or key in still:
            continue
        case.status = WITHDRAWN
        case.decided_by = ACTOR
        case.decided_at = now
        if case.card_id is not None:
            card = session.get(Card, case.card_id)
            if card is not None and card.status == cards.DRAFT:
                cards.delete_card(
                    session,
                    card.id,
                    version=None,
                    scope=Scope.everything(ACTOR),
                    reason_code="ruledout",
                    reason="医院系统撤销了诊断或检验结果 (the hospital withdrew the finding)",
                    now=now,
                )
        withdrawn += 1
    return withdrawn


def _upgrade(session: Session, rules: RuleSet, case: IdentifiedCase, row: dict[str, Any]) -> bool:
    """A draft whose finding became stronger (a laboratory confirmation after a clinical
    diagnosis, a more specific disease) takes the new disease, subtype and classification;
    its draft card follows while still a draft."""
    if case.status != DRAFT:
        return False
    facts = rules.diseases[row["disease_code"]]
    classification = facts.classification_for(row["classification"])
    new = (row["disease_code"], row["subtype_code"], classification)
    if new == (case.disease_code, case.subtype_code, case.classification):
        return False
    if case.rule_kind == "lab" and row["rule_kind"] != "lab":
        return False
    case.disease_code, case.subtype_code, case.classification = new
    case.rule_kind, case.rule_code = row["rule_kind"], row["rule_code"]
    case.evidence = row["evidence"]
    if row["chronicity"]:
        case.chronicity = row["chronicity"]
    card = session.get(Card, case.card_id) if case.card_id else None
    if card is not None and card.status == cards.DRAFT:
        before = cards.snapshot(card)
        card.disease_code, card.subtype_code, card.classification = new
        if row["chronicity"]:
            card.chronicity = row["chronicity"]
        session.flush()
        record(
            session,
            actor=ACTOR,
            action="card.edit",
            entity_type="card",
            entity_id=card.id,
            before={k: before[k] for k in ("disease_code", "subtype_code", "classification")},
            after={"disease_code": new[0], "subtype_code": new[1], "classification": new[2]},
            reason=f"新的检验/诊断结果: {row['evidence']}"[:200],
        )
    return True


def _prior_cases(
    session: Session, fresh: list[dict[str, Any]]
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Stored live cases of the batch's people and disease groups."""
    keys = sorted({(r["patient_key"], r["disease_group"]) for r in fresh})
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for start in range(0, len(keys), 500):
        part = keys[start : start + 500]
        rows = session.execute(
            select(
                IdentifiedCase.id,
                IdentifiedCase.patient_key,
                IdentifiedCase.disease_group,
                IdentifiedCase.diagnosed_at,
            ).where(
                IdentifiedCase.patient_key.in_([k[0] for k in part]),
                IdentifiedCase.status.in_(LIVE),
            )
        )
        wanted = set(part)
        for case_id, pk, group, at in rows:
            if (pk, group) in wanted:
                found.setdefault((pk, group), []).append({"id": case_id, "diagnosed_at": at})
    return found


def _real_id(value: str | None) -> str | None:
    text = (value or "").strip().upper()
    return text if text and text not in UNKNOWN_ID_NUMBERS else None


def _person_key(person: dict[str, Any], row: dict[str, Any]) -> tuple[str, ...]:
    """How a case is matched with cards: the document number, else name and birth date."""
    real = _real_id(person.get("id_number"))
    if real:
        return ("id", real, row["disease_group"])
    return (
        "name",
        name_key(person.get("patient_name")) or "",
        str(person.get("birth_date")),
        row["disease_group"],
    )


def _prior_cards(
    session: Session,
    fresh: list[dict[str, Any]],
    people: dict[int, dict[str, Any]],
    rules: RuleSet,
) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """Cards (not deleted, not drafts) of the batch's people, by :func:`_person_key`."""
    ids = sorted({r for p in people.values() if (r := _real_id(p.get("id_number")))})
    names = sorted(
        {
            k
            for p in people.values()
            if not _real_id(p.get("id_number")) and (k := name_key(p.get("patient_name")))
        }
    )
    groups = {c: f.group for c, f in rules.diseases.items()}
    found: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    live = Card.status.not_in((cards.DELETED, cards.DRAFT))
    cols = (
        Card.id,
        Card.id_number,
        Card.name_key,
        Card.birth_date,
        Card.disease_code,
        Card.diagnosis_time,
    )
    for start in range(0, len(ids), 500):
        for cid, idn, _nk, _bd, disease, at in session.execute(
            select(*cols).where(Card.id_number.in_(ids[start : start + 500]), live)
        ):
            key: tuple[str, ...] = ("id", (idn or "").upper(), groups.get(disease, disease))
            found.setdefault(key, []).append({"id": cid, "diagnosed_at": at})
    for start in range(0, len(names), 500):
        for cid, _idn, nk, bd, disease, at in session.execute(
            select(*cols).where(Card.name_key.in_(names[start : start + 500]), live)
        ):
            key = ("name", nk or "", str(bd), groups.get(disease, disease))
            found.setdefault(key, []).append({"id": cid, "diagnosed_at": at})
    return found


def _residence(address: str | None, org_region: str | None) -> str:
    """病人属于 from the patient's address and the hospital's region (1 本县区 … 4 外省)."""
    if not address or not org_region:
        return ""
    if address[:6] == org_region[:6]:
        return "1"
    if address[:4] == org_region[:4]:
        return "2"
    if address[:2] == org_region[:2]:
        return "3"
    return "4"


def _write_drafts(
    session: Session,
    rules: RuleSet,
    drafts: list[dict[str, Any]],
    people: dict[int, dict[str, Any]],
    now: datetime,
) -> None:
    """Insert the draft cards (one statement) and note their ids and validation errors."""
    if not drafts:
        return
    orgs = {
        code: region
        for code, region in session.execute(
            select(Organisation.code, Organisation.region_code).where(
                Organisation.code.in_(sorted({d["org_code"] for d in drafts}))
            )
        )
    }
    today = local_now(now).date()
    values = []
    for row in drafts:
        p = people[row["encounter_id"]]
        diagnosed: datetime = row["diagnosed_at"]
        onset: date = p.get("onset_date") or diagnosed.date()
        values.append(
            {
                "card_number": cards.new_card_number(now),
                "report_type": "1",
                "status": cards.DRAFT,
                "version": 1,
                "patient_name": p.get("patient_name") or "",
                "guardian_name": p.get("guardian_name"),
                "id_type": p.get("id_type") or ("1" if _real_id(p.get("id_number")) else None),
                "id_number": p.get("id_number"),
                "sex": p.get("sex") or "",
                "birth_date": p.get("birth_date"),
                "phone": p.get("phone"),
                "work_unit": p.get("work_unit"),
                "residence_category": _residence(p.get("address_code"), orgs.get(row["org_code"])),
                "address_code": p.get("address_code") or "",
                "address_detail": p.get("address_detail"),
                "occupation": p.get("occupation") or "",
                "classification": row["classification"],
                "chronicity": row["chronicity"],
                "onset_date": min(onset, diagnosed.date()),
                "diagnosis_time": diagnosed,
                "disease_code": row["disease_code"],
                "subtype_code": row["subtype_code"],
                "org_code": row["org_code"],
                "doctor_name": p.get("doctor_name") or "",
                "fill_date": today,
                "entered_at": now,
                "created_by": ACTOR,
                "source": "hospital",
                "name_key": name_key(p.get("patient_name")),
                "updated_at": now,
            }
        )
    by_number = insert_frame_ids(session, Card, _frame(values, Card), ("card_number",))
    ids = [by_number[(v["card_number"],)] for v in values]
    audit = pl.DataFrame(
        {
            "at": [now] * len(ids),
            "actor": [ACTOR] * len(ids),
            "action": ["card.create"] * len(ids),
            "entity_type": ["card"] * len(ids),
            "entity_id": [str(i) for i in ids],
        },
        schema_overrides={"at": pl.Datetime("us")},
    ).with_columns(
        json_text(
            [
                {
                    "status": cards.DRAFT,
                    "source": "hospital",
                    "disease_code": v["disease_code"],
                    "org_code": v["org_code"],
                }
                for v in values
            ]
        ).alias("after")
    )
    insert_frame(session, AuditEntry, audit)
    errors = _draft_errors(session, values, now)
    for row, card_id, errs in zip(drafts, ids, errors, strict=True):
        row["card_id"] = card_id
        row["draft_errors"] = errs


def _draft_errors(
    session: Session, values: list[dict[str, Any]], now: datetime
) -> list[list[dict[str, Any]]]:
    """The card rules each draft still breaks (what the doctor must complete)."""
    raw = pl.DataFrame(
        {c: [_text(v.get(c)) for v in values] for c in RAW_COLUMNS},
        schema={c: pl.String for c in RAW_COLUMNS},
    )
    outcome = validate_frame(raw, Reference.from_session(session), now)
    errors: list[list[dict[str, Any]]] = [[] for _ in values]
    for position, errs in outcome.invalid:
        errors[position] = [e.model_dump() for e in errs]
    return errors


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


CASE_COLUMNS = (
    "encounter_id",
    "org_code",
    "patient_key",
    "disease_code",
    "disease_group",
    "subtype_code",
    "classification",
    "chronicity",
    "rule_kind",
    "rule_code",
    "evidence",
    "diagnosed_at",
    "due_at",
    "status",
    "card_id",
    "merged_into_id",
    "draft_errors",
)


def _table(model: Any) -> Table:
    """The Core table of a mapped class (bulk statements skip the ORM's bookkeeping)."""
    return cast(Table, model.__table__)


def _frame(values: list[dict[str, Any]], model: Any) -> pl.DataFrame:
    """Rows as a frame typed after the table's columns (all-empty columns too)."""
    table = _table(model)
    kinds: dict[str, Any] = {}
    for name in values[0]:
        python = table.c[name].type.python_type if name in table.c else str
        kinds[name] = {
            datetime: pl.Datetime("us"),
            date: pl.Date,
            int: pl.Int64,
            bool: pl.Boolean,
            float: pl.Float64,
        }.get(python, pl.String)
    return pl.DataFrame({k: [v.get(k) for v in values] for k in kinds}, schema=kinds)


def _write_cases(session: Session, rows: list[dict[str, Any]], now: datetime) -> None:
    """Insert the cases; a finding merged into one of the same batch links to its id."""
    values = [{**{c: r.get(c) for c in CASE_COLUMNS}, "created_at": now} for r in rows]
    errors = json_text([v.pop("draft_errors") or [] for v in values])
    insert_frame(
        session,
        IdentifiedCase,
        _frame(values, IdentifiedCase).with_columns(errors.alias("draft_errors")),
    )
    merging = [r for r in rows if r.get("__merge_row") is not None]
    if not merging:
        return
    # a finding merged into another of this batch: look both up by (encounter, group)
    wanted = {id(r): r for r in rows}
    keys = {(r["encounter_id"], r["disease_group"]) for r in rows}
    encounter_ids = sorted({k[0] for k in keys})
    case_of: dict[tuple[int, str], int] = {}
    for start in range(0, len(encounter_ids), ID_CHUNK):
        for case_id, enc_id, group in session.execute(
            select(
                IdentifiedCase.id, IdentifiedCase.encounter_id, IdentifiedCase.disease_group
            ).where(IdentifiedCase.encounter_id.in_(encounter_ids[start : start + ID_CHUNK]))
        ):
            case_of[(enc_id, group)] = case_id
    rows_by_marker = {r["__row"]: r for r in wanted.values()}
    links = []
    for r in merging:
        target = rows_by_marker[r["__merge_row"]]
        links.append(
            {
                "b_id": case_of[(r["encounter_id"], r["disease_group"])],
                "b_into": case_of[(target["encounter_id"], target["disease_group"])],
            }
        )
    if links:
        table = _table(IdentifiedCase)
        session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(merged_into_id=bindparam("b_into")),
            links,
        )


# --------------------------------------------------------------------------- doctor's decision


def _case(session: Session, case_id: int, scope: Scope) -> IdentifiedCase:
    case = session.get(IdentifiedCase, case_id, with_for_update=True)
    if case is None or (scope.organisation_code and case.org_code != scope.organisation_code):
        raise cards.CardNotFoundError(f"病例 {case_id} 不存在", f"case {case_id} not found")
    return case


def _not_draft(case: IdentifiedCase) -> cards.CardError:
    return cards.IllegalTransitionError(
        f"病例 {case.id} 状态为「{case.status}」,不是待确认的草稿",
        f"case {case.id} is '{case.status}', not a draft awaiting the doctor",
    )


def confirm(
    session: Session,
    case_id: int,
    *,
    scope: Scope,
    changes: dict[str, Any] | None = None,
    version: int | None = None,
    now: datetime | None = None,
) -> IdentifiedCase:
    """The doctor confirms a draft: ``changes`` completes or corrects the card (validated),
    then the card is submitted for the county CDC's review."""
    now = now or utcnow()
    case = _case(session, case_id, scope)
    if case.status != DRAFT or case.card_id is None:
        raise _not_draft(case)
    card = session.get(Card, case.card_id)
    if card is None:
        raise _not_draft(case)
    current = version if version is not None else card.version
    if changes:
        card = cards.edit_card(session, card.id, changes, version=current, scope=scope, now=now)
        current = card.version
    card = cards.submit_card(session, card.id, version=current, scope=scope, now=now)
    case.status = REPORTED
    case.decided_by = scope.actor
    case.decided_at = now
    case.draft_errors = []
    _settle_missed(session, case, local_now(now), "reported_late")
    return case


def reject(
    session: Session,
    case_id: int,
    *,
    scope: Scope,
    reason: str,
    reason_code: str = "ruledout",
    now: datetime | None = None,
) -> IdentifiedCase:
    """The doctor rejects a draft (not a case to report): the draft card is deleted with the
    reason, and the case is kept as rejected."""
    now = now or utcnow()
    text = (reason or "").strip()
    if not text:
        raise cards.BadRequestError("驳回须填写原因", "a rejection needs a reason")
    case = _case(session, case_id, scope)
    if case.status != DRAFT:
        raise _not_draft(case)
    if case.card_id is not None:
        card = session.get(Card, case.card_id)
        if card is not None and card.status == cards.DRAFT:
            cards.delete_card(
                session,
                card.id,
                version=None,
                scope=scope,
                reason_code=reason_code,
                reason=text,
                now=now,
            )
    case.status = REJECTED
    case.reject_reason = text
    case.decided_by = scope.actor
    case.decided_at = now
    _settle_missed(session, case, local_now(now), "rejected")
    return case


def _settle_missed(session: Session, case: IdentifiedCase, at: datetime, how: str) -> None:
    """Resolve the case's open missed report; a card submitted after the limit that was
    never flagged (no scan ran in between) is recorded as a resolved miss."""
    missed = session.scalars(select(MissedReport).where(MissedReport.case_id == case.id)).first()
    if missed is None:
        if how != "reported_late" or at <= case.due_at:
            return
        missed = MissedReport(
            case_id=case.id,
            org_code=case.org_code,
            disease_code=case.disease_code,
            diagnosed_at=case.diagnosed_at,
            due_at=case.due_at,
            flagged_at=to_utc(case.due_at),
        )
        session.add(missed)
    if missed.resolved_at is None:
        missed.resolved_at = to_utc(at)
        missed.resolution = how
    session.flush()


# --------------------------------------------------------------------------- missed reports


@dataclass
class MissedScan:
    """What :func:`scan_missed` did."""

    flagged: int = 0
    synced_reported: int = 0
    synced_rejected: int = 0
    found_reported: int = 0


def scan_missed(session: Session, rules: RuleSet, now: datetime | None = None) -> MissedScan:
    """Bring draft cases up to date with their cards, then flag missed reports (漏报).

    A draft case whose card was submitted through the card pages counts as reported (late if
    after the limit); one whose draft was deleted counts as rejected; one whose person was
    reported by hand on another card within the window counts as already reported. The rest
    past their ``due_at`` get a :class:`MissedReport` (once).
    """
    now = now or utcnow()
    at = local_now(now)
    result = MissedScan()
    rows = session.execute(
        select(IdentifiedCase, Card.status, Card.submitted_at)
        .join(Card, Card.id == IdentifiedCase.card_id, isouter=True)
        .where(IdentifiedCase.status == DRAFT)
    ).all()
    overdue: list[IdentifiedCase] = []
    for case, card_status, submitted_at in rows:
        if card_status in (cards.SUBMITTED, cards.REVIEWED, cards.RETURNED):
            case.status = REPORTED
            case.decided_by = case.decided_by or ACTOR
            case.decided_at = submitted_at
            when = local_now(submitted_at) if submitted_at else at
            _settle_missed(session, case, when, "reported_late")
            result.synced_reported += 1
        elif card_status == cards.DELETED:
            case.status = REJECTED
            case.reject_reason = case.reject_reason or "草稿已删除 (draft deleted)"
            _settle_missed(session, case, at, "rejected")
            result.synced_rejected += 1
        elif case.due_at < at:
            overdue.append(case)
    if overdue:
        result.found_reported = _reported_elsewhere(session, rules, overdue, now)
    flagged_ids = set(
        session.scalars(
            select(MissedReport.case_id).where(
                MissedReport.case_id.in_([c.id for c in overdue if c.status == DRAFT])
            )
        )
    )
    for case in overdue:
        if case.status != DRAFT or case.id in flagged_ids:
            continue
        session.add(
            MissedReport(
                case_id=case.id,
                org_code=case.org_code,
                disease_code=case.disease_code,
                diagnosed_at=case.diagnosed_at,
                due_at=case.due_at,
                flagged_at=now,
            )
        )
        result.flagged += 1
    session.flush()
    return result


def _reported_elsewhere(
    session: Session, rules: RuleSet, overdue: list[IdentifiedCase], now: datetime
) -> int:
    """Overdue drafts whose person has another card (entered by hand) within the window:
    marked already reported, their drafts deleted as duplicates."""
    people = {
        r["encounter_id"]: r
        for r in load_frames(session, [c.encounter_id for c in overdue])[0].iter_rows(named=True)
    }
    rows = [
        {
            "encounter_id": c.encounter_id,
            "disease_group": c.disease_group,
            "diagnosed_at": c.diagnosed_at,
        }
        for c in overdue
    ]
    prior = _prior_cards(session, rows, people, rules)
    found = 0
    for case, row in zip(overdue, rows, strict=True):
        person = people.get(case.encounter_id)
        if person is None:
            continue
        window = timedelta(days=rules.diseases[case.disease_code].duplicate_window_days)
        candidates_ = [
            p for p in prior.get(_person_key(person, row), []) if p["id"] != case.card_id
        ]
        other = _within(candidates_, row, window)
        if other is None:
            continue
        if case.card_id is not None:
            card = session.get(Card, case.card_id)
            if card is not None and card.status == cards.DRAFT:
                cards.delete_card(
                    session,
                    card.id,
                    version=None,
                    scope=Scope.everything(ACTOR),
                    reason_code="dup",
                    reason=f"已有报告卡 {other} (already reported)",
                    now=now,
                    duplicate_of=other,
                )
        case.status = ALREADY_REPORTED
        case.card_id = other
        found += 1
    return found


def missed_summary(
    session: Session,
    start: date | None = None,
    end: date | None = None,
    org_code: str | None = None,
) -> list[dict[str, Any]]:
    """Per hospital: cases identified, reported in time, missed (漏报) and still open, with
    the missed rate, over diagnoses from ``start`` to ``end`` (inclusive)."""
    conds: list[ColumnElement[bool]] = [IdentifiedCase.status.not_in((MERGED, WITHDRAWN))]
    if start:
        conds.append(IdentifiedCase.diagnosed_at >= datetime.combine(start, datetime.min.time()))
    if end:
        conds.append(
            IdentifiedCase.diagnosed_at
            < datetime.combine(end + timedelta(days=1), datetime.min.time())
        )
    if org_code:
        conds.append(IdentifiedCase.org_code == org_code)
    missed_any = func.count(MissedReport.id)
    missed_open = func.count(MissedReport.id).filter(MissedReport.resolved_at.is_(None))
    in_time = func.count(IdentifiedCase.id).filter(
        and_(IdentifiedCase.status == REPORTED, MissedReport.id.is_(None))
    )
    stmt = (
        select(
            IdentifiedCase.org_code, func.count(IdentifiedCase.id), in_time, missed_any, missed_open
        )
        .join(MissedReport, MissedReport.case_id == IdentifiedCase.id, isouter=True)
        .where(*conds)
        .group_by(IdentifiedCase.org_code)
        .order_by(IdentifiedCase.org_code)
    )
    return [
        {
            "org_code": org,
            "identified": int(n),
            "reported_in_time": int(ok),
            "missed": int(m),
            "missed_open": int(mo),
            "missed_rate": (int(m) / int(n)) if n else None,
        }
        for org, n, ok, m, mo in session.execute(stmt)
    ]


def list_cases(
    session: Session,
    scope: Scope,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[IdentifiedCase]:
    """Identified cases the caller may see (a hospital: its own), newest first."""
    stmt = select(IdentifiedCase).order_by(
        IdentifiedCase.diagnosed_at.desc(), IdentifiedCase.id.desc()
    )
    if scope.organisation_code:
        stmt = stmt.where(IdentifiedCase.org_code == scope.organisation_code)
    if scope.region_prefix:
        orgs = select(Organisation.code).where(
            Organisation.region_code.startswith(scope.region_prefix)
        )
        stmt = stmt.where(IdentifiedCase.org_code.in_(orgs.scalar_subquery()))
    if status:
        stmt = stmt.where(IdentifiedCase.status == status)
    return list(session.scalars(stmt.limit(limit).offset(offset)))


def get_case(session: Session, case_id: int, scope: Scope) -> IdentifiedCase:
    """One case the caller may see."""
    case = session.get(IdentifiedCase, case_id)
    visible = case is not None and (
        not scope.organisation_code or case.org_code == scope.organisation_code
    )
    if scope.region_prefix and case is not None and visible:
        region = session.scalar(
            select(Organisation.region_code).where(Organisation.code == case.org_code)
        )
        visible = bool(region and region.startswith(scope.region_prefix))
    if not visible or case is None:
        raise cards.CardNotFoundError(f"病例 {case_id} 不存在", f"case {case_id} not found")
    return case
