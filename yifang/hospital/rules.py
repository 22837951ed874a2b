"""Case-identification rules as data: ICD-10 codes and laboratory results → notifiable
disease, loaded from ``yifang/hospital/data`` and editable by the CDC.

The rules live in the ``hospital_rule`` table (one row per rule, its fields in
``definition``), loaded from the data files by :func:`load_rules`; a reload adds missing rules
and refreshes untouched ones but never overwrites a rule whose ``edited_by`` is set
(:func:`put_rule` sets it). :func:`ruleset` compiles the table, with the catalog's disease
facts, into a :class:`RuleSet`, rebuilt only when a rule or a disease changed.

Matching is done on whole batches with Polars, so that one million encounters are classified
in seconds:

* **ICD-10** (:class:`IcdMatcher`): codes are normalised (``a150`` → ``A15.0``; national
  clinical-edition extensions such as ``A15.000x001`` keep their prefix) and compared by
  prefix with each rule's range: a code ``c`` lies in ``lo–hi`` when ``c[:len(lo)] ≥ lo`` and
  ``c[:len(hi)] ≤ hi``. Candidate rules are found by a join on the three-character category,
  and when several match, the most specific (longest ``lo``) wins: ``A15.6`` (tuberculous
  pleurisy) beats ``A15`` (pulmonary TB).
* **Laboratory results**: the rule's ``test`` pattern on "code name", a positive result (the
  sender's flag when given, else the result text), an optional minimum titre (1:N).

Every rule names a leaf disease of the catalog; unknown or grouping diseases are refused when
a rule is saved and skipped (with a log line) when compiled.
"""

from __future__ import annotations

import csv
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import yaml
from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yifang.catalog.models import Disease
from yifang.core.audit import record
from yifang.hospital.models import HospitalRule
from yifang.hospital.schemas import (
    DEFINITIONS,
    RULE_KINDS,
    IcdRuleDef,
    LabDefaults,
    LabRuleDef,
    NegationDef,
    RuleIn,
    SignDef,
    SyndromeDef,
)

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).parent / "data"

#: Classifications a draft takes when its rule names none, first allowed wins:
#: 临床诊断, then 确诊, then 疑似.
DEFAULT_CLASSIFICATIONS = ("2", "3", "1")


class RuleError(ValueError):
    """A rule is malformed or names something unknown; the message says which field."""


class RuleNotFoundError(LookupError):
    """No rule of that kind and code."""


# --------------------------------------------------------------------------- data files


@dataclass
class LoadReport:
    """What :func:`load_rules` did."""

    added: int = 0
    refreshed: int = 0
    kept_edited: int = 0


def read_data_files(folder: Path = DATA_DIR) -> dict[tuple[str, str], dict[str, Any]]:
    """Every rule of the data files as ``(kind, code) → definition`` (validated)."""
    rules: dict[tuple[str, str], dict[str, Any]] = {}

    def add(kind: str, code: str, raw: Mapping[str, Any], where: str) -> None:
        try:
            model = DEFINITIONS[kind].model_validate(dict(raw))
        except ValidationError as exc:
            raise RuleError(f"{where}: {_first_error(exc)}") from None
        rules[(kind, code)] = model.model_dump(mode="json", by_alias=True, exclude_none=True)

    with (folder / "icd10_diseases.csv").open(encoding="utf-8", newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            code = (row.pop("code") or "").strip()
            values = {k: (v.strip() or None) for k, v in row.items() if k}
            add("icd10", code, values, f"icd10_diseases.csv line {line}")
    lab = yaml.safe_load((folder / "lab_rules.yaml").read_text(encoding="utf-8"))
    add("lab_text", "default", {k: lab[k] for k in ("positive", "negative")}, "lab_rules.yaml")
    for i, entry in enumerate(lab.get("rules") or []):
        entry = dict(entry)
        add("lab", str(entry.pop("code")), entry, f"lab_rules.yaml rule {i + 1}")
    syn = yaml.safe_load((folder / "syndromes.yaml").read_text(encoding="utf-8"))
    add("negation", "complaint", syn["negation"], "syndromes.yaml negation")
    for code, entry in (syn.get("signs") or {}).items():
        add("sign", str(code), entry, f"syndromes.yaml sign {code}")
    for code, entry in (syn.get("syndromes") or {}).items():
        add("syndrome", str(code), entry, f"syndromes.yaml syndrome {code}")
    return rules


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ())) or "definition"
    return f"{loc}: {err.get('msg', 'invalid')}"


def load_rules(session: Session, folder: Path = DATA_DIR) -> LoadReport:
    """Load the data files' rules into the table: add missing ones, refresh untouched ones,
    keep those the CDC edited."""
    report = LoadReport()
    stored = {(r.kind, r.code): r for r in session.scalars(select(HospitalRule))}
    for (kind, code), definition in read_data_files(folder).items():
        row = stored.get((kind, code))
        note = definition.get("note") if isinstance(definition.get("note"), str) else None
        if row is None:
            session.add(HospitalRule(kind=kind, code=code, definition=definition, note=note))
            report.added += 1
        elif row.edited_by:
            report.kept_edited += 1
        elif row.definition != definition or not row.active:
            row.definition = definition
            row.active = True
            row.note = note
            report.refreshed += 1
    session.flush()
    return report


# --------------------------------------------------------------------------- editing


def list_rules(session: Session, kind: str | None = None) -> list[HospitalRule]:
    """The stored rules, of one kind or all, by kind and code."""
    stmt = select(HospitalRule).order_by(HospitalRule.kind, HospitalRule.code)
    if kind is not None:
        stmt = stmt.where(HospitalRule.kind == kind)
    return list(session.scalars(stmt))


def get_rule(session: Session, kind: str, code: str) -> HospitalRule:
    """One rule, or :class:`RuleNotFoundError`."""
    row = session.scalars(
        select(HospitalRule).where(HospitalRule.kind == kind, HospitalRule.code == code)
    ).first()
    if row is None:
        raise RuleNotFoundError(f"no {kind} rule {code!r}")
    return row


def check_definition(session: Session, kind: str, definition: Mapping[str, Any]) -> dict[str, Any]:
    """The definition validated for its kind, with the diseases it names checked against the
    catalog (known, leaf, subtype of that disease); :class:`RuleError` otherwise."""
    if kind not in RULE_KINDS:
        raise RuleError(f"kind: must be one of {', '.join(RULE_KINDS)}")
    try:
        model = DEFINITIONS[kind].model_validate(dict(definition))
    except ValidationError as exc:
        raise RuleError(_first_error(exc)) from None
    facts = disease_facts(session)
    named: list[tuple[str, str | None, str]] = []
    if isinstance(model, IcdRuleDef):
        named.append((model.disease_code, model.subtype_code, "disease_code"))
    elif isinstance(model, LabRuleDef):
        named.append((model.disease, model.subtype, "disease"))
        named += [(c.disease, None, "disease_if") for c in model.disease_if if c.disease]
        named += [(model.disease, c.code, "subtypes") for c in model.subtypes if c.code]
    elif isinstance(model, SyndromeDef):
        signs = {r.code for r in list_rules(session, "sign")}
        unknown = sorted(set(model.all_of + model.any_of) - signs)
        if unknown:
            raise RuleError(f"all/any: unknown signs {', '.join(unknown)}")
    for disease, subtype, where in named:
        fact = facts.get(disease)
        if fact is None:
            raise RuleError(f"{where}: no disease {disease!r} in the catalog")
        if not fact.leaf:
            raise RuleError(f"{where}: {disease!r} groups other diseases; name one of them")
        if subtype and subtype not in fact.subtypes:
            raise RuleError(f"{where}: {disease!r} has no subtype {subtype!r}")
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def put_rule(session: Session, kind: str, code: str, data: RuleIn, actor: str) -> HospitalRule:
    """Create or change a rule (the CDC's edit: a reload will keep it). Audited."""
    code = code.strip()
    if not code or len(code) > 64:
        raise RuleError("code: 1 to 64 characters")
    definition = check_definition(session, kind, data.definition)
    row = session.scalars(
        select(HospitalRule).where(HospitalRule.kind == kind, HospitalRule.code == code)
    ).first()
    before = None
    if row is None:
        row = HospitalRule(kind=kind, code=code, definition=definition)
        session.add(row)
    else:
        before = {"definition": row.definition, "active": row.active, "note": row.note}
    row.definition = definition
    row.active = data.active
    row.note = data.note
    row.edited_by = actor
    session.flush()
    record(
        session,
        actor=actor,
        action="hospital_rule.put",
        entity_type="hospital_rule",
        entity_id=f"{kind}:{code}",
        before=before,
        after={"definition": definition, "active": data.active, "note": data.note},
    )
    return row


# --------------------------------------------------------------------------- compiled rules


@dataclass(frozen=True, slots=True)
class DiseaseFacts:
    """What the drafts need of a catalog disease."""

    code: str
    group: str  # the parent disease, or the disease itself
    leaf: bool
    report_limit_hours: int
    duplicate_window_days: int
    classifications: tuple[str, ...]
    chronicity: tuple[str, ...]
    subtypes: frozenset[str]
    active: bool

    def classification_for(self, wanted: str | None) -> str:
        """``wanted`` if the disease allows it, else the first allowed default."""
        if wanted and (not self.classifications or wanted in self.classifications):
            return wanted
        for c in DEFAULT_CLASSIFICATIONS:
            if c in self.classifications:
                return c
        return self.classifications[0] if self.classifications else (wanted or "2")


def disease_facts(session: Session) -> dict[str, DiseaseFacts]:
    """Every catalog disease's facts, by code (a parent inherits nothing here: the catalog
    loader already filled children's fields)."""
    rows = list(session.scalars(select(Disease)))
    parents = {d.parent_code for d in rows if d.parent_code}
    facts = {}
    for d in rows:
        subtypes = {
            str(s.get("code")) if isinstance(s, Mapping) else str(s) for s in d.subtypes or ()
        }
        facts[d.code] = DiseaseFacts(
            code=d.code,
            group=d.parent_code or d.code,
            leaf=d.code not in parents,
            report_limit_hours=d.report_limit_hours,
            duplicate_window_days=d.duplicate_window_days,
            classifications=tuple(str(c) for c in d.classifications or ()),
            chronicity=tuple(str(c) for c in d.chronicity or ()),
            subtypes=frozenset(subtypes),
            active=d.active,
        )
    return facts


@dataclass
class RuleSet:
    """The active rules compiled for batch matching, and the diseases' facts."""

    icd: list[tuple[str, IcdRuleDef]]
    lab: list[tuple[str, LabRuleDef]]
    lab_text: LabDefaults
    signs: dict[str, SignDef]
    syndromes: dict[str, SyndromeDef]
    negation: NegationDef
    diseases: dict[str, DiseaseFacts]
    fingerprint: tuple[Any, ...] = ()
    _icd_matcher: IcdMatcher | None = field(default=None, repr=False)

    @property
    def icd_matcher(self) -> IcdMatcher:
        """The ICD-10 → disease matcher, built once."""
        if self._icd_matcher is None:
            self._icd_matcher = IcdMatcher(
                [(code, r.icd10_from, r.icd10_to) for code, r in self.icd]
            )
        return self._icd_matcher

    @classmethod
    def build(
        cls,
        rows: Iterable[tuple[str, str, Mapping[str, Any]]],
        diseases: dict[str, DiseaseFacts],
        fingerprint: tuple[Any, ...] = (),
    ) -> RuleSet:
        """Compile ``(kind, code, definition)`` rows; rules naming unknown or grouping
        diseases are skipped with a warning in the log."""
        icd: list[tuple[str, IcdRuleDef]] = []
        lab: list[tuple[str, LabRuleDef]] = []
        signs: dict[str, SignDef] = {}
        syndromes: dict[str, SyndromeDef] = {}
        lab_text: LabDefaults | None = None
        negation: NegationDef | None = None
        for kind, code, definition in rows:
            try:
                model = DEFINITIONS[kind].model_validate(dict(definition))
            except (KeyError, ValidationError) as exc:
                log.warning("hospital rule %s:%s skipped: %s", kind, code, exc)
                continue
            if isinstance(model, IcdRuleDef):
                if _usable(diseases, model.disease_code, kind, code):
                    icd.append((code, model))
            elif isinstance(model, LabRuleDef):
                if _usable(diseases, model.disease, kind, code):
                    lab.append((code, model))
            elif isinstance(model, LabDefaults):
                lab_text = model
            elif isinstance(model, SignDef):
                signs[code] = model
            elif isinstance(model, SyndromeDef):
                syndromes[code] = model
            elif isinstance(model, NegationDef):
                negation = model
        if lab_text is None or negation is None:
            files = read_data_files()
            lab_text = lab_text or LabDefaults.model_validate(files[("lab_text", "default")])
            negation = negation or NegationDef.model_validate(files[("negation", "complaint")])
        return cls(icd, lab, lab_text, signs, syndromes, negation, diseases, fingerprint)


def _usable(diseases: Mapping[str, DiseaseFacts], code: str, kind: str, rule: str) -> bool:
    fact = diseases.get(code)
    if fact is None or not fact.leaf:
        log.warning("hospital rule %s:%s skipped: %s is not a leaf disease", kind, rule, code)
        return False
    return True


_CACHE: dict[str, RuleSet] = {}
_CACHE_LOCK = threading.Lock()


def _fingerprint(session: Session) -> tuple[Any, ...]:
    rules = session.execute(select(func.count(), func.max(HospitalRule.updated_at))).one()
    diseases = session.execute(select(func.count(), func.max(Disease.updated_at))).one()
    return (tuple(rules), tuple(diseases))


def ruleset(session: Session) -> RuleSet:
    """The active rules of the database behind ``session``, compiled; rebuilt only when a
    rule or a disease changed. Loads the data files first if the table is empty."""
    fingerprint = _fingerprint(session)
    if fingerprint[0][0] == 0:
        load_rules(session)
        fingerprint = _fingerprint(session)
    bind = session.get_bind()
    key = bind.url.render_as_string(hide_password=True) if hasattr(bind, "url") else str(id(bind))
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None and cached.fingerprint == fingerprint:
            return cached
    rows = [
        (r.kind, r.code, r.definition)
        for r in session.scalars(
            select(HospitalRule)
            .where(HospitalRule.active.is_(True))
            .order_by(HospitalRule.kind, HospitalRule.code)
        )
    ]
    built = RuleSet.build(rows, disease_facts(session), fingerprint)
    with _CACHE_LOCK:
        _CACHE[key] = built
    return built


# --------------------------------------------------------------------------- ICD-10 matching


def icd_expr(column: str | pl.Expr) -> pl.Expr:
    """Polars: ICD-10 codes normalised as :func:`yifang.hospital.schemas.normalise_icd`."""
    expr = pl.col(column) if isinstance(column, str) else column
    text = expr.str.to_uppercase().str.replace_all(r"[^A-Z0-9.]", "")
    return (
        pl.when(~text.str.contains(".", literal=True) & (text.str.len_chars() > 3))
        .then(pl.concat_str([text.str.slice(0, 3), pl.lit("."), text.str.slice(3)]))
        .otherwise(text)
    )


def _categories(lo: str, hi: str) -> list[str]:
    """The three-character categories a range spans: A90–A91 → [A90, A91]."""
    a, b = lo[:3], hi[:3]
    out = []
    for letter in range(ord(a[0]), ord(b[0]) + 1):
        first = int(a[1:3]) if letter == ord(a[0]) else 0
        last = int(b[1:3]) if letter == ord(b[0]) else 99
        out += [f"{chr(letter)}{n:02d}" for n in range(first, last + 1)]
    return out


class IcdMatcher:
    """Matches ICD-10 codes against named ranges ``(rule, lo, hi)``; most specific first."""

    def __init__(self, ranges: Sequence[tuple[str, str, str]]) -> None:
        rows = [
            (cat, rule, lo, hi, len(lo), len(hi))
            for rule, lo, hi in ranges
            for cat in _categories(lo, hi)
        ]
        self.table = pl.DataFrame(
            rows,
            schema={
                "cat": pl.String,
                "rule": pl.String,
                "lo": pl.String,
                "hi": pl.String,
                "lo_len": pl.Int64,
                "hi_len": pl.Int64,
            },
            orient="row",
        )

    def match(self, codes: pl.DataFrame, column: str = "icd10") -> pl.DataFrame:
        """Every (row of ``codes``, matching rule) pair, with ``specificity`` = len(lo).
        ``codes`` keeps its other columns."""
        norm = codes.with_columns(icd_expr(column).alias("__icd")).with_columns(
            pl.col("__icd").str.slice(0, 3).alias("cat")
        )
        joined = norm.join(self.table, on="cat", how="inner")
        hit = (pl.col("__icd").str.slice(0, pl.col("lo_len")) >= pl.col("lo")) & (
            pl.col("__icd").str.slice(0, pl.col("hi_len")) <= pl.col("hi")
        )
        return joined.filter(hit).with_columns(pl.col("lo_len").alias("specificity"))

    def best(self, codes: pl.DataFrame, keys: Sequence[str], column: str = "icd10") -> pl.DataFrame:
        """The most specific matching rule of each row identified by ``keys``."""
        found = self.match(codes, column)
        return found.sort("specificity", descending=True).unique(
            subset=list(keys), keep="first", maintain_order=True
        )


# --------------------------------------------------------------------------- case candidates

CANDIDATE_SCHEMA: dict[str, Any] = {
    "encounter_id": pl.Int64,
    "disease_code": pl.String,
    "subtype_code": pl.String,
    "classification": pl.String,
    "chronicity": pl.String,
    "rule_kind": pl.String,
    "rule_code": pl.String,
    "evidence": pl.String,
    "diagnosed_at": pl.Datetime("us"),
}


def diagnosis_candidates(rules: RuleSet, dx: pl.DataFrame) -> pl.DataFrame:
    """Cases proven by diagnoses. ``dx``: encounter_id, entry_key, icd10, text,
    diagnosed_at, refuted (refuted diagnoses are ignored)."""
    if dx.is_empty() or not rules.icd:
        return pl.DataFrame(schema=CANDIDATE_SCHEMA)
    live = dx.filter(~pl.col("refuted").fill_null(False) & pl.col("icd10").is_not_null())
    best = rules.icd_matcher.best(live, ["encounter_id", "entry_key"])
    defs = pl.DataFrame(
        [
            (code, r.disease_code, r.subtype_code, r.classification, r.chronicity)
            for code, r in rules.icd
        ],
        schema={
            "rule": pl.String,
            "disease_code": pl.String,
            "subtype_code": pl.String,
            "classification": pl.String,
            "chronicity": pl.String,
        },
        orient="row",
    )
    out = best.join(defs, on="rule", how="inner")
    return out.select(
        pl.col("encounter_id").cast(pl.Int64),
        "disease_code",
        "subtype_code",
        "classification",
        "chronicity",
        pl.lit("icd10").alias("rule_kind"),
        pl.col("rule").alias("rule_code"),
        pl.concat_str([pl.col("icd10"), pl.col("text").fill_null("")], separator=" ")
        .str.strip_chars()
        .str.slice(0, 200)
        .alias("evidence"),
        pl.col("diagnosed_at").cast(pl.Datetime("us")),
    )


_TITRE = r"1\s*[:：/]\s*(\d+)"


def lab_candidates(rules: RuleSet, labs: pl.DataFrame) -> pl.DataFrame:
    """Cases proven by laboratory results. ``labs``: encounter_id, test_code, test_name,
    result_text, positive (the sender's flag or null), observed_at."""
    if labs.is_empty() or not rules.lab:
        return pl.DataFrame(schema=CANDIDATE_SCHEMA)
    base = labs.with_columns(
        pl.concat_str(
            [pl.col("test_code").fill_null(""), pl.col("test_name").fill_null("")], separator=" "
        ).alias("__key"),
        pl.col("result_text").fill_null("").alias("__text"),
    ).with_columns(
        pl.col("__text").str.extract(_TITRE, 1).cast(pl.Int64, strict=False).alias("__titre"),
        pl.col("__text").str.contains(rules.lab_text.negative).alias("__neg"),
        pl.col("__text").str.contains(rules.lab_text.positive).alias("__pos_text"),
    )
    found = []
    for code, rule in rules.lab:
        text_positive = (
            pl.col("__text").str.contains(rule.positive) if rule.positive else pl.col("__pos_text")
        ) & ~(pl.col("__text").str.contains(rule.negative) if rule.negative else pl.col("__neg"))
        positive = pl.coalesce(pl.col("positive"), text_positive)
        hit = pl.col("__key").str.contains(f"(?i){rule.test}") & positive
        if rule.min_titre is not None:
            hit = hit & (pl.col("__titre").fill_null(0) >= rule.min_titre)
        matched = base.filter(hit)
        if matched.is_empty():
            continue
        about = pl.concat_str([pl.col("__key"), pl.col("__text")], separator=" ")
        disease: pl.Expr = pl.lit(rule.disease)
        for choice in reversed(rule.disease_if):
            if choice.disease:
                disease = (
                    pl.when(about.str.contains(f"(?i){choice.match}"))
                    .then(pl.lit(choice.disease))
                    .otherwise(disease)
                )
        subtype: pl.Expr = pl.lit(rule.subtype, dtype=pl.String)
        for choice in reversed(rule.subtypes):
            if choice.code:
                subtype = (
                    pl.when(about.str.contains(f"(?i){choice.match}"))
                    .then(pl.lit(choice.code))
                    .otherwise(subtype)
                )
        found.append(
            matched.select(
                pl.col("encounter_id").cast(pl.Int64),
                disease.alias("disease_code"),
                subtype.alias("subtype_code"),
                pl.lit(rule.classification, dtype=pl.String).alias("classification"),
                pl.lit(None, dtype=pl.String).alias("chronicity"),
                pl.lit("lab").alias("rule_kind"),
                pl.lit(code).alias("rule_code"),
                pl.concat_str(
                    [
                        pl.col("test_name").fill_null(pl.col("test_code")).fill_null(""),
                        pl.col("__text"),
                    ],
                    separator=": ",
                )
                .str.slice(0, 200)
                .alias("evidence"),
                pl.col("observed_at").cast(pl.Datetime("us")).alias("diagnosed_at"),
            )
        )
    if not found:
        return pl.DataFrame(schema=CANDIDATE_SCHEMA)
    return pl.concat(found, how="vertical_relaxed").cast(CANDIDATE_SCHEMA)  # type: ignore[arg-type]


def rule_out(row: HospitalRule) -> dict[str, Any]:
    """A stored rule as a plain dict (for the CLI and the API)."""
    return {
        "kind": row.kind,
        "code": row.code,
        "definition": row.definition,
        "active": row.active,
        "note": row.note,
        "edited_by": row.edited_by,
        "updated_at": row.updated_at,
    }


def definition_model(kind: str, definition: Mapping[str, Any]) -> BaseModel:
    """The typed definition of a stored rule."""
    return DEFINITIONS[kind].model_validate(dict(definition))
