"""Syndromic surveillance: chief complaints (主诉, Chinese free text), temperatures and
diagnoses classified into syndromes, counted per hospital, township and day.

The complaint is read the way NegEx reads clinical notes (Chapman WW, Bridewell W, Hanbury P,
Cooper GF, Buchanan BG. A simple algorithm for identifying negated findings and diseases in
discharge summaries. J Biomed Inform 2001;34:301–10): negation cues, pseudo-negations that
only look like negations, and terms that end a negation's reach. Deliberate differences
from NegEx:

* NegEx looks up to five words after a cue; Chinese complaints have no word breaks, so the
  reach of a cue is the rest of its clause (up to ，。； …), which is how lists are negated in
  Chinese (否认发热、咳嗽、腹泻 negates all three);
* post-negation cues (…已排除) are not used: complaints rarely carry them;
* instead of tagging each finding, the negated stretches are removed from the text and the
  sign keywords are then searched in what remains. Every step is a Polars string
  expression, so a batch of 100,000 complaints is read in well under a second.

All words, keywords, ICD-10 ranges and syndrome definitions are data (``data/syndromes.yaml``
loaded into ``hospital_rule``; see :mod:`yifang.hospital.rules`).

The counts (:class:`~yifang.hospital.models.SyndromeCount`) are rebuilt for every
(hospital, day) touched by new or changed encounters from the per-encounter syndromes
(:class:`~yifang.hospital.models.EncounterSyndrome`), so a late or corrected message changes
the series exactly as it should. ``visits`` holds all encounters of the cell, the denominator
of a syndrome's share.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from datetime import date
from typing import cast

import polars as pl
from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.orm import Session

from yifang.hospital.bulk import insert_frame
from yifang.hospital.models import Encounter, EncounterSyndrome, SyndromeCount
from yifang.hospital.rules import IcdMatcher, RuleSet
from yifang.hospital.schemas import NegationDef

NEGATED = "\x01"  # marks a negation cue in the working text
BREAK = "。"


def _alternation(words: Iterable[str]) -> str:
    """A regex matching any of ``words``, longest first (so 未出现 wins over 未)."""
    ordered = sorted({w for w in words if w}, key=len, reverse=True)
    return "|".join(re.escape(w) for w in ordered)


def affirmed_text(expr: pl.Expr, negation: NegationDef) -> pl.Expr:
    """The complaint with its negated stretches removed (see the module docstring)."""
    text = expr.fill_null("")
    if negation.pseudo:
        text = text.str.replace_all(_alternation(negation.pseudo), " ")
    text = text.str.replace_all(_alternation(negation.cues), NEGATED)
    if negation.terminators:
        text = text.str.replace_all(_alternation(negation.terminators), BREAK)
    breaks = negation.clause_breaks
    if breaks.startswith("[") and breaks.endswith("]"):
        inner = breaks[1:-1]
        scope = f"{NEGATED}[^{inner}{BREAK}]*"
    else:  # a clause-break pattern other than a character class: stop at the break mark only
        scope = f"{NEGATED}[^{BREAK}]*"
    return text.str.replace_all(scope, "")


def sign_matcher(rules: RuleSet) -> IcdMatcher:
    """ICD-10 ranges of signs and syndromes, as one matcher (rule names ``sign:…`` and
    ``syndrome:…``)."""
    ranges = [
        (f"sign:{code}", *_bounds(r)) for code, sign in rules.signs.items() for r in sign.icd10
    ] + [
        (f"syndrome:{code}", *_bounds(r))
        for code, syn in rules.syndromes.items()
        for r in syn.icd10
    ]
    return IcdMatcher(ranges)


def _bounds(spec: str) -> tuple[str, str]:
    lo, _, hi = spec.partition("-")
    return lo, hi or lo


def classify(rules: RuleSet, encounters: pl.DataFrame, diagnoses: pl.DataFrame) -> pl.DataFrame:
    """Each encounter's syndromes: one row (encounter_id, syndrome) per syndrome present.

    ``encounters``: encounter_id, chief_complaint, temperature_c. ``diagnoses``:
    encounter_id, icd10, refuted (refuted diagnoses are ignored).
    """
    if encounters.is_empty() or not rules.syndromes:
        return pl.DataFrame(schema={"encounter_id": pl.Int64, "syndrome": pl.String})
    text = encounters.select(
        pl.col("encounter_id").cast(pl.Int64),
        affirmed_text(pl.col("chief_complaint"), rules.negation).alias("__text"),
        pl.col("temperature_c").cast(pl.Float64),
    )
    flags = text.select(
        "encounter_id",
        *[
            (
                pl.col("__text").str.contains(sign.keywords)
                | (
                    (pl.col("temperature_c") >= sign.min_temperature_c).fill_null(False)
                    if sign.min_temperature_c is not None
                    else pl.lit(False)
                )
            ).alias(f"sign:{code}")
            for code, sign in rules.signs.items()
        ],
    )
    coded = _coded(rules, diagnoses)
    if not coded.is_empty():
        for name in coded.columns:
            if name == "encounter_id":
                continue
            if name not in flags.columns:
                flags = flags.with_columns(pl.lit(False).alias(name))
        flags = flags.join(coded, on="encounter_id", how="left", suffix="__dx")
        flags = flags.with_columns(
            [
                (pl.col(n) | pl.col(f"{n}__dx").fill_null(False)).alias(n)
                for n in coded.columns
                if n != "encounter_id"
            ]
        ).select(pl.exclude("^.*__dx$"))
    present = []
    for code, syn in rules.syndromes.items():
        expr = pl.lit(True)
        for sign in syn.all_of:
            expr = expr & _flag(flags, f"sign:{sign}")
        if syn.any_of:
            anyx = pl.lit(False)
            for sign in syn.any_of:
                anyx = anyx | _flag(flags, f"sign:{sign}")
            expr = expr & anyx
        if not (syn.all_of or syn.any_of):
            expr = pl.lit(False)
        expr = expr | _flag(flags, f"syndrome:{code}")
        present.append(expr.alias(code))
    wide = flags.select("encounter_id", *present)
    return (
        wide.unpivot(index="encounter_id", variable_name="syndrome", value_name="present")
        .filter(pl.col("present"))
        .select("encounter_id", "syndrome")
        .sort("encounter_id", "syndrome")
    )


def _flag(frame: pl.DataFrame, name: str) -> pl.Expr:
    return pl.col(name).fill_null(False) if name in frame.columns else pl.lit(False)


def _coded(rules: RuleSet, diagnoses: pl.DataFrame) -> pl.DataFrame:
    """Sign and syndrome flags from diagnoses: one row per encounter, a column per flag."""
    live = diagnoses.filter(
        ~pl.col("refuted").fill_null(False) & pl.col("icd10").is_not_null()
    ).select(pl.col("encounter_id").cast(pl.Int64), "icd10")
    if live.is_empty():
        return pl.DataFrame(schema={"encounter_id": pl.Int64})
    matcher = rules.__dict__.get("_sign_matcher")
    if matcher is None:
        matcher = sign_matcher(rules)
        rules.__dict__["_sign_matcher"] = matcher
    hits = matcher.match(live).select("encounter_id", "rule").unique()
    if hits.is_empty():
        return pl.DataFrame(schema={"encounter_id": pl.Int64})
    return hits.with_columns(pl.lit(True).alias("v")).pivot(
        on="rule", index="encounter_id", values="v", aggregate_function="first"
    )


# --------------------------------------------------------------------------- storage


def store(
    session: Session,
    encounter_ids: Sequence[int],
    found: pl.DataFrame,
    new_ids: Collection[int] = (),
) -> None:
    """Replace the stored syndromes of ``encounter_ids`` by ``found``; ``new_ids`` are
    encounters inserted just now, which have none stored yet (nothing to delete)."""
    ids = [i for i in encounter_ids if i not in new_ids] if new_ids else list(encounter_ids)
    for start in range(0, len(ids), 10_000):
        part = ids[start : start + 10_000]
        session.execute(delete(EncounterSyndrome).where(EncounterSyndrome.encounter_id.in_(part)))
    if not found.is_empty():
        insert_frame(session, EncounterSyndrome, found)


#: Days and hospitals recounted by one set of statements (bounds the IN lists).
RECOUNT_DAYS = 31
RECOUNT_ORGS = 500


def recount(session: Session, cells: Iterable[tuple[str, date]]) -> int:
    """Rebuild the syndrome counts of the given (hospital, day) cells from the stored
    encounters; returns how many count rows were written.

    The cells are taken in blocks of up to :data:`RECOUNT_DAYS` days × :data:`RECOUNT_ORGS`
    hospitals, and every (hospital, day) of a block is rebuilt (a superset of the cells
    asked for, rebuilt from the same stored data, so the result is the same): one delete,
    two ``GROUP BY`` reads through the (hospital, day) index and one insert per block
    instead of per day."""
    wanted = sorted(set(cells), key=lambda c: (c[1], c[0]))
    if not wanted:
        return 0
    days = sorted({d for _, d in wanted})
    table = cast(Table, SyndromeCount.__table__)
    total = 0
    for d0 in range(0, len(days), RECOUNT_DAYS):
        block_days = days[d0 : d0 + RECOUNT_DAYS]
        in_block = set(block_days)
        orgs = sorted({o for o, d in wanted if d in in_block})
        for o0 in range(0, len(orgs), RECOUNT_ORGS):
            part = orgs[o0 : o0 + RECOUNT_ORGS]
            total += _recount_block(session, table, part, block_days)
    return total


def _recount_block(session: Session, table: Table, orgs: list[str], days: list[date]) -> int:
    session.execute(delete(table).where(table.c.day.in_(days), table.c.org_code.in_(orgs)))
    where = (Encounter.org_code.in_(orgs), Encounter.visit_day.in_(days))
    visits = {
        (o, t, d): n
        for o, t, d, n in session.execute(
            select(Encounter.org_code, Encounter.township, Encounter.visit_day, func.count())
            .where(*where)
            .group_by(Encounter.org_code, Encounter.township, Encounter.visit_day)
        )
    }
    rows = [
        {
            "syndrome": s,
            "org_code": o,
            "township": t,
            "day": d,
            "count": n,
            "visits": visits.get((o, t, d), n),
        }
        for s, o, t, d, n in session.execute(
            select(
                EncounterSyndrome.syndrome,
                Encounter.org_code,
                Encounter.township,
                Encounter.visit_day,
                func.count(),
            )
            .join(Encounter, Encounter.id == EncounterSyndrome.encounter_id)
            .where(*where)
            .group_by(
                EncounterSyndrome.syndrome,
                Encounter.org_code,
                Encounter.township,
                Encounter.visit_day,
            )
        )
    ]
    if rows:
        session.execute(insert(table), rows)
    return len(rows)


def series(
    session: Session,
    syndrome: str,
    start: date,
    end: date,
    org_code: str | None = None,
    township_prefix: str | None = None,
) -> list[tuple[date, int, int]]:
    """A syndrome's daily (day, count, visits) from ``start`` to ``end`` inclusive, summed
    over the hospitals and townships selected; days without a row are left out."""
    stmt = (
        select(SyndromeCount.day, func.sum(SyndromeCount.count), func.sum(SyndromeCount.visits))
        .where(
            SyndromeCount.syndrome == syndrome,
            SyndromeCount.day >= start,
            SyndromeCount.day <= end,
        )
        .group_by(SyndromeCount.day)
        .order_by(SyndromeCount.day)
    )
    if org_code:
        stmt = stmt.where(SyndromeCount.org_code == org_code)
    if township_prefix:
        stmt = stmt.where(SyndromeCount.township.startswith(township_prefix))
    return [(d, int(c), int(v)) for d, c, v in session.execute(stmt)]
