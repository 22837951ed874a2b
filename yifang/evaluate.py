"""``yifang evaluate``: score the detection methods on simulated data with known outbreaks.

This module assembles ``simulate`` (the Noufaily et al. 2013 design) and ``detect`` (the
algorithms and the scoring), which may not import each other; like ``cli`` and ``web`` it
sits above both.

For each scenario it simulates ``n_series`` weekly series of 624 weeks, runs each method on
the 49 current weeks (576–624) of all series at once and scores the alarms as the paper
does: FPR over weeks without outbreak cases, POD over the current outbreaks. Repeating this
over a grid of ``alpha`` gives each method's false-alarm/detection curve.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yifang.catalog.models import Disease, Region
from yifang.catalog.service import normalise_region_code
from yifang.core.settings import get_settings
from yifang.detect import algorithms
from yifang.detect.config import LEVEL_DIGITS, load_config
from yifang.detect.evaluation import RaisedSignal, TrueOutbreak, score_series, score_signals
from yifang.detect.models import Signal
from yifang.simulate import noufaily
from yifang.simulate.models import SimOutbreak

#: Methods scored on weekly series: algorithm function name and fixed parameters.
WEEKLY_METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "farrington": ("farrington_flexible", {"b": 3, "w": 3, "no_periods": 1}),
    "noufaily": (
        "farrington_flexible",
        {
            "b": 3,
            "w": 3,
            "no_periods": 10,
            "past_weeks_not_included": 26,
            "threshold_method": "nbPlugin",
            "weights_threshold": 2.58,
            "p_threshold_trend": 1.0,
        },
    ),
    "ears_c3": ("ears_c", {"method": "C3", "baseline": 7}),
}
DEFAULT_ALPHAS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1)


@dataclass(frozen=True)
class EvaluationRow:
    """One method × alpha × scenario score."""

    method: str
    alpha: float
    scenario: int
    fpr: float
    pod: float
    sensitivity: float
    mean_delay_weeks: float


def evaluate_noufaily(
    methods: Sequence[str] = ("farrington", "noufaily", "ears_c3"),
    scenario_numbers: Sequence[int] | None = None,
    n_series: int = 100,
    seed: int = 1,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    progress: Callable[[str], None] | None = None,
) -> list[EvaluationRow]:
    """Score ``methods`` on the Noufaily scenarios; one row per method × alpha × scenario."""
    unknown = [m for m in methods if m not in WEEKLY_METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {sorted(WEEKLY_METHODS)}")
    chosen = [
        s
        for s in noufaily.scenarios()
        if scenario_numbers is None or s.number in set(scenario_numbers)
    ]
    lo, hi = noufaily.CURRENT_WEEKS
    rng = np.arange(lo - 1, hi, dtype=np.int64)
    rows: list[EvaluationRow] = []
    for sc in chosen:
        sims = noufaily.simulate_many(sc, n_series, seed)
        observed = np.stack([s.observed for s in sims], axis=1).astype(np.float64)
        current = np.stack([s.in_outbreak for s in sims], axis=1)[rng]
        # Only the current outbreak counts for POD; earlier ones only leave the FPR alone.
        ids = np.zeros_like(current, dtype=np.int64)
        for j, s in enumerate(sims):
            cur = next(o for o in s.outbreaks if o.current)
            weeks = cur.weeks - lo
            weeks = weeks[(weeks >= 0) & (weeks < rng.size)]
            ids[weeks, j] = 1
        for name in methods:
            fn_name, params = WEEKLY_METHODS[name]
            fn = getattr(algorithms, fn_name)
            for alpha in alphas:
                if progress:
                    progress(f"scenario {sc.number} {name} α={alpha}")
                res = fn(observed, range=rng, alpha=alpha, **params)
                alarm = np.asarray(res.alarm, dtype=bool)
                score = score_series(alarm, current, ids)
                rows.append(
                    EvaluationRow(
                        method=name,
                        alpha=alpha,
                        scenario=sc.number,
                        fpr=score.fpr,
                        pod=score.pod,
                        sensitivity=score.sensitivity,
                        mean_delay_weeks=score.mean_delay,
                    )
                )
    return rows


def summarise(rows: Sequence[EvaluationRow]) -> list[EvaluationRow]:
    """Average the scores over scenarios: one row per method × alpha (scenario = 0)."""
    out: list[EvaluationRow] = []
    keys = sorted({(r.method, r.alpha) for r in rows})
    for method, alpha in keys:
        sel = [r for r in rows if r.method == method and r.alpha == alpha]
        out.append(
            EvaluationRow(
                method=method,
                alpha=alpha,
                scenario=0,
                fpr=float(np.nanmean([r.fpr for r in sel])),
                pod=float(np.nanmean([r.pod for r in sel])),
                sensitivity=float(np.nanmean([r.sensitivity for r in sel])),
                mean_delay_weeks=float(np.nanmean([r.mean_delay_weeks for r in sel])),
            )
        )
    return out


def plot_curves(summary: Sequence[EvaluationRow], path: Path) -> Path:
    """Draw POD against FPR per method (one point per alpha) into a PNG file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    for method in sorted({r.method for r in summary}):
        pts = sorted((r.fpr, r.pod, r.alpha) for r in summary if r.method == method)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=method)
        for fpr, pod, alpha in pts:
            ax.annotate(f"{alpha:g}", (fpr, pod), fontsize=7, xytext=(3, -8),
                        textcoords="offset points")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("false-positive rate (share of weeks without outbreak that alarm)")
    ax.set_ylabel("probability of detection (current outbreak)")
    ax.set_title("Noufaily et al. (2013) scenarios: detection against false alarms")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


@dataclass(frozen=True)
class CityRuleScore:
    """How one engine rule's signals found the simulated city's outbreaks."""

    rule: str
    pod: float
    detected: int
    outbreaks: int
    signals: int
    false_signals: int
    false_per_100_region_weeks: float
    median_days_to_signal: float


def evaluate_city(session: Session, *, start: date, end: date) -> list[CityRuleScore]:
    """Score the signals first raised in ``start..end`` against the injected outbreaks.

    Run detection over the same days first (``run_detection(as_of=end, days=...)``). An
    outbreak counts for a rule only if the rule watches its disease; signals are matched
    to outbreaks of the same disease (or its legal parent disease) in nesting regions.
    """
    config = load_config()
    city = normalise_region_code(get_settings().city_code)
    diseases = {d.code: d for d in session.scalars(select(Disease))}
    weeks = max(((end - start).days + 1) / 7.0, 1.0)
    outbreaks = session.scalars(
        select(SimOutbreak).where(SimOutbreak.start_date <= end, SimOutbreak.end_date >= start)
    ).all()
    scores: list[CityRuleScore] = []
    for rule_name in dict.fromkeys(r.name for r in config.rules if r.source == "cards"):
        rule = next(r for r in config.rules if r.name == rule_name)
        watched = {
            code
            for code, d in diseases.items()
            if rule in config.rules_for(code, d.disease_class, d.managed_as_class_a)
        }

        def series_code(code: str) -> str:
            parent = diseases[code].parent_code if code in diseases else None
            return parent if parent and parent in config.aggregate_to_parent else code

        truth = [
            TrueOutbreak(
                series_code(o.disease_code),
                tuple(o.townships or [o.region_code]),
                o.start_date,
                o.end_date,
            )
            for o in outbreaks
            if o.disease_code in watched or series_code(o.disease_code) in watched
        ]
        raised = [
            RaisedSignal(s.disease_code, s.region_code, s.first_date)
            for s in session.scalars(
                select(Signal).where(
                    Signal.rule == rule_name,
                    Signal.first_date >= start,
                    Signal.first_date <= end,
                    Signal.disease_code.is_not(None),
                )
            )
        ]
        digits = LEVEL_DIGITS[rule.level]
        n_regions = (
            session.scalar(
                select(func.count())
                .select_from(Region)
                .where(func.length(Region.code) == digits, Region.code.startswith(city))
            )
            or 1
        )
        region_weeks = n_regions * max(len({series_code(c) for c in watched}), 1) * weeks
        sc = score_signals(raised, truth, region_weeks=region_weeks)
        scores.append(
            CityRuleScore(
                rule=rule_name,
                pod=sc.pod,
                detected=sc.detected,
                outbreaks=sc.outbreaks,
                signals=sc.signals,
                false_signals=sc.false_signals,
                false_per_100_region_weeks=sc.false_per_100_region_weeks,
                median_days_to_signal=sc.median_days_to_signal,
            )
        )
    return scores


# ---------------------------------------------------------------------------------------
# Multi-source triggers on the simulated city
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MultiSourceCity:
    """What :func:`build_multisource_city` put into the database."""

    start: date
    end: date
    cards: int
    outbreaks: int
    encounters: int
    drafts: int
    syndrome_cells: int
    stream_rows: int


def build_multisource_city(
    session: Session,
    folder: Path,
    *,
    years: float = 3.0,
    seed: int = 20260101,
    end_date: date | None = None,
    progress: Callable[[str], None] | None = None,
) -> MultiSourceCity:
    """The simulated city with every source: its report cards and injected outbreaks (the
    ground truth), its hospital encounters received through the hospital front end's CSV
    path (drafts, syndromes and their daily counts) and its other streams stored as stream
    observations. ``folder`` takes the encounter extracts. The caller commits."""
    import polars as pl

    from yifang.hospital.intake_csv import ingest_csv
    from yifang.hospital.rules import load_rules
    from yifang.hospital.service import put_observation_frame
    from yifang.simulate.config import catalog_from_session, load_city
    from yifang.simulate.encounter_files import write_encounter_files
    from yifang.simulate.engine import content_digest
    from yifang.simulate.output import clear_simulation, write_database
    from yifang.simulate.service import simulate

    def say(text: str) -> None:
        if progress:
            progress(text)

    cfg = load_city(None)
    facts = catalog_from_session(session, cfg.reference_year)
    say("simulating the city with its streams and hospital encounters")
    result = simulate(facts, years, seed, end_date, streams=True)
    assert result.streams is not None and result.encounters is not None
    clear_simulation(session)
    write_database(session, result, {"years": years, "streams": True}, None,
                   content_digest(result.cards))  # fmt: skip
    say(f"{len(result.cards):,} cards, {len(result.outbreaks)} outbreaks; writing encounters")
    folder.mkdir(parents=True, exist_ok=True)
    write_encounter_files(result, result.encounters, folder, ("csv",))
    load_rules(session)
    enc = ingest_csv(session, folder / "encounters.csv")
    labs = pl.read_csv(folder / "encounter_labs.csv", infer_schema=False).join(
        pl.read_csv(folder / "encounters.csv", infer_schema=False).select(
            "encounter_id", "org_code"
        ),
        on="encounter_id",
        how="left",
    )
    labs.write_csv(folder / "labs_with_org.csv")
    ingest_csv(session, folder / "labs_with_org.csv")
    say(f"{enc.stored:,} encounters received; storing the streams")
    frame = result.streams.frame().with_columns(pl.lit("simulated").alias("source"))
    stored = put_observation_frame(session, frame)
    from yifang.hospital.models import SyndromeCount

    cells = session.scalar(select(func.count()).select_from(SyndromeCount)) or 0
    return MultiSourceCity(
        start=result.start,
        end=result.end,
        cards=len(result.cards),
        outbreaks=len(result.outbreaks),
        encounters=enc.stored,
        drafts=int(enc.figures.get("drafts", 0)),
        syndrome_cells=int(cells),
        stream_rows=stored,
    )


@dataclass(frozen=True)
class RankedSignal:
    """A signal with its truth: whether it matches an injected outbreak."""

    id: int
    source: str
    code: str
    region_code: str
    first_date: date
    corroboration: int
    rank_score: float
    exceedance: float  # observed / threshold of the latest alarm (strength on its own)
    true: bool


@dataclass(frozen=True)
class CorroborationScore:
    """How corroboration ranks true against false signals (see :func:`evaluate_corroboration`)."""

    signals: list[RankedSignal]
    by_level: list[tuple[str, int, int]]  # (corroboration level, signals, true ones)
    auc_rank: float  # P(a true signal outranks a false one) by rank_score (ties count half)
    auc_exceedance: float  # the same by the signal's own strength
    auc_combined: float  # rank_score, ties broken by exceedance
    precision_newest: float  # share true among the top k newest (k = true signals)
    precision_rank: float  # share true among the top k by rank
    outbreaks: int
    outbreaks_detected: int
    outbreaks_corroborated: int  # detected by a signal that another source confirms


def _auc(scores: Sequence[float], truth: Sequence[bool]) -> float:
    """Mann–Whitney probability that a true item scores above a false one (ties half)."""
    t = np.array([s for s, y in zip(scores, truth, strict=True) if y], dtype=np.float64)
    f = np.array([s for s, y in zip(scores, truth, strict=True) if not y], dtype=np.float64)
    if t.size == 0 or f.size == 0:
        return float("nan")
    gt = (t[:, None] > f[None, :]).sum()
    eq = (t[:, None] == f[None, :]).sum()
    return float((gt + 0.5 * eq) / (t.size * f.size))


def evaluate_corroboration(
    session: Session, *, start: date, end: date, source: str | None = "cards"
) -> CorroborationScore:
    """Score how the multi-source rank orders the signals first raised in ``start..end``.

    Run detection over the same days first. A card signal is true when it matches an
    injected outbreak of its disease (or legal parent) in a nesting region, first alarming
    between the outbreak's start and a week after its end; a syndrome or stream signal is
    true when it so matches an outbreak of a disease its corroboration groups relate it to
    (from the group's window before the outbreak's start, since some streams lead). Only
    signals of ``source`` are ranked (None: all).
    """
    from yifang.detect.corroboration import load_corroboration, member_of

    config = load_config()
    groups = load_corroboration()
    diseases = {d.code: d for d in session.scalars(select(Disease))}

    def series_code(code: str) -> str:
        parent = diseases[code].parent_code if code in diseases else None
        return parent if parent and parent in config.aggregate_to_parent else code

    outbreaks = [
        (
            series_code(o.disease_code),
            tuple(o.townships or [o.region_code]),
            o.start_date,
            o.end_date,
        )
        for o in session.scalars(
            select(SimOutbreak).where(SimOutbreak.start_date <= end, SimOutbreak.end_date >= start)
        )
    ]
    stmt = select(Signal).where(Signal.first_date >= start, Signal.first_date <= end)
    if source:
        stmt = stmt.where(Signal.source == source)
    ranked: list[RankedSignal] = []
    detected: set[int] = set()
    corroborated: set[int] = set()
    for sig in session.scalars(stmt.order_by(Signal.id)):
        member = member_of(sig)
        if member[0] == "cards":
            related, lead = {member[1]}, 0
        else:
            mine = groups.groups_of(member)
            related = {c for g in mine for (s, c) in g.members if s == "cards"}
            lead = max((g.window_days for g in mine), default=0)
        hits = [
            k
            for k, (code, towns, o_start, o_end) in enumerate(outbreaks)
            if code in related
            and any(t.startswith(sig.region_code) or sig.region_code.startswith(t) for t in towns)
            and o_start - timedelta(days=lead) <= sig.first_date <= o_end + timedelta(days=7)
        ]
        detected.update(hits)
        if sig.corroboration:
            corroborated.update(hits)
        ub = sig.upperbound
        ranked.append(
            RankedSignal(
                id=sig.id,
                source=member[0],
                code=member[1],
                region_code=sig.region_code,
                first_date=sig.first_date,
                corroboration=sig.corroboration or 0,
                rank_score=float(sig.rank_score or 1.0),
                exceedance=float(sig.observed / ub) if ub and ub > 0 else float(sig.observed),
                true=bool(hits),
            )
        )
    truth = [r.true for r in ranked]
    k = sum(truth)
    by_new = sorted(ranked, key=lambda r: (r.first_date, r.id), reverse=True)
    by_rank = sorted(ranked, key=lambda r: (r.rank_score, r.first_date, r.id), reverse=True)
    levels = sorted({min(r.corroboration, 3) for r in ranked})
    by_level = [
        (
            f"{lv}+" if lv == 3 else str(lv),
            sum(1 for r in ranked if min(r.corroboration, 3) == lv),
            sum(1 for r in ranked if min(r.corroboration, 3) == lv and r.true),
        )
        for lv in levels
    ]
    span = max((r.exceedance for r in ranked), default=1.0) + 1.0
    return CorroborationScore(
        signals=ranked,
        by_level=by_level,
        auc_rank=_auc([r.rank_score for r in ranked], truth),
        auc_exceedance=_auc([r.exceedance for r in ranked], truth),
        auc_combined=_auc([r.rank_score * span + r.exceedance for r in ranked], truth),
        precision_newest=sum(r.true for r in by_new[:k]) / k if k else float("nan"),
        precision_rank=sum(r.true for r in by_rank[:k]) / k if k else float("nan"),
        outbreaks=len(outbreaks),
        outbreaks_detected=len(detected),
        outbreaks_corroborated=len(corroborated),
    )
