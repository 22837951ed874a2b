"""The early-warning engine: counts cases into series, runs the configured algorithms and
records signals.

A run takes an analysis date ``as_of`` and a number of ``days`` to evaluate (1 for the daily
job, more to back-fill). For every rule of ``data/methods.yaml`` it builds one block of
series — every disease the rule applies to × every region of the rule's level that had a
case in the history window — as a (T, S) array of counts per period (days, or 7-day blocks
ending on ``as_of``), runs the algorithm on the whole block at once, and turns alarms into
signals. An alarm of the same disease, region and rule within ``close_after`` periods of the
open signal's last alarm updates that signal rather than opening a new one.

Incremental runs (after an import) restrict the series to the diseases and regions of the
cards changed since the previous run.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import String, and_, func, or_, select
from sqlalchemy.orm import Session

from yifang.cases.models import Card
from yifang.catalog.models import Disease, Region
from yifang.core.db import utcnow
from yifang.detect import algorithms
from yifang.detect.algorithms.result import DetectionResult
from yifang.detect.config import LEVEL_DIGITS, PERIOD_DAYS, MethodConfig, Rule, load_config
from yifang.detect.models import DetectionRun, Signal

#: Periods of counts kept in a signal for its chart.
CHART_PERIODS = 60
Progress = Callable[[str, int, int], None]


@dataclass
class SeriesBlock:
    """Counts of S series over T periods; ``period_end[t]`` is the last day of period t."""

    keys: list[tuple[str, str]]
    period_end: list[date]
    counts: NDArray[np.float64]


@dataclass
class RunReport:
    """What one run did."""

    run_id: int
    as_of: date
    series: int = 0
    alarms: int = 0
    signals_new: int = 0
    signals_updated: int = 0
    skipped_rules: list[str] = field(default_factory=list)


def _date_column() -> Any:
    # date() exists in SQLite and PostgreSQL; untyped so each driver's own value comes back.
    return func.date(Card.diagnosis_time, type_=String)


def build_series(
    session: Session,
    *,
    disease_codes: Iterable[str],
    level: str,
    granularity: str,
    as_of: date,
    history_days: int,
    regions: Iterable[str] | None = None,
    series_of: Mapping[str, str] | None = None,
) -> SeriesBlock:
    """Count non-deleted cards by disease × region (at ``level``) × period up to ``as_of``.

    Periods are days, or 7-day blocks whose last one ends on ``as_of`` (so weekly series are
    comparable across years to within a day). Series with no case in the window are left out:
    they cannot alarm. ``series_of`` folds card diseases into the disease of the series
    (e.g. every pulmonary-TB sub-type into TB); unmapped codes are their own series.
    """
    digits = LEVEL_DIGITS[level]
    period = PERIOD_DAYS[granularity]
    n_periods = max(1, history_days // period)
    start = as_of - timedelta(days=n_periods * period - 1)
    day = _date_column().label("day")
    region = func.substr(Card.address_code, 1, digits).label("region")
    stmt = (
        select(Card.disease_code, region, day, func.count())
        .where(
            Card.status != "deleted",
            Card.disease_code.in_(list(disease_codes)),
            Card.diagnosis_time >= datetime.combine(start, datetime.min.time()),
            Card.diagnosis_time < datetime.combine(as_of + timedelta(days=1), datetime.min.time()),
        )
        .group_by(Card.disease_code, region, day)
    )
    region_list = list(regions) if regions is not None else None
    if region_list is not None:
        stmt = stmt.where(or_(*[Card.address_code.startswith(r[:digits]) for r in region_list]))
    rows = session.execute(stmt).all()
    index: dict[tuple[str, str], int] = {}
    cells: list[tuple[int, int, int]] = []
    for disease_code, region_code, day_value, n in rows:
        d = day_value if isinstance(day_value, date) else date.fromisoformat(str(day_value)[:10])
        t = n_periods - 1 - (as_of - d).days // period
        if not 0 <= t < n_periods:
            continue
        key = ((series_of or {}).get(disease_code, disease_code), region_code)
        s = index.setdefault(key, len(index))
        cells.append((t, s, int(n)))
    counts = np.zeros((n_periods, len(index)), dtype=np.float64)
    for t, s, n in cells:
        counts[t, s] += n
    period_end = [as_of - timedelta(days=(n_periods - 1 - t) * period) for t in range(n_periods)]
    return SeriesBlock(keys=list(index), period_end=period_end, counts=counts)


def series_params(
    rule: Rule, keys: list[tuple[str, str]], disease_names: Mapping[str, str]
) -> dict[str, Any]:
    """The rule's parameters, with per-series values where the method takes them.

    The moving percentile method gets each disease's CIDARS percentile (by its Chinese
    name) unless the rule fixes one; ``default_percentile`` applies to the others.
    """
    params = dict(rule.params)
    default = float(params.pop("default_percentile", 80.0))
    if rule.method == "mpm" and "percentile" not in params:
        table = algorithms.CIDARS_MPM_PERCENTILES
        params["percentile"] = np.array(
            [float(table.get(disease_names.get(d, ""), default)) for d, _ in keys]
        )
    return params


def run_method(
    rule: Rule,
    counts: NDArray[np.float64],
    eval_idx: NDArray[np.int64],
    params: Mapping[str, Any] | None = None,
) -> DetectionResult:
    """Call the rule's algorithm on a block of series."""
    fn = getattr(algorithms, rule.method, None)
    if fn is None:
        raise LookupError(f"unknown detection method {rule.method!r}")
    kwargs = dict(rule.params if params is None else params)
    result: DetectionResult = fn(counts, range=eval_idx, **kwargs)
    return result


def _fmt(x: float | None) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.1f}"


def _explain(
    rule: Rule,
    disease: str,
    disease_en: str,
    region: str,
    day: date,
    obs: float,
    exp: float | None,
    ub: float | None,
) -> tuple[str, str]:
    unit_zh = "日" if rule.granularity == "day" else "周（截至该日的7天）"
    unit_en = "day" if rule.granularity == "day" else "7 days ending"
    zh = (
        f"{region}{disease}：{day.isoformat()}{unit_zh}报告 {int(obs)} 例，"
        f"超过预警阈值 {_fmt(ub)}（期望 {_fmt(exp)}；方法 {rule.method}，规则 {rule.name}）。"
    )
    en = (
        f"{disease_en} in {region}: {int(obs)} cases on the {unit_en} {day.isoformat()}, above the "
        f"threshold {_fmt(ub)} (expected {_fmt(exp)}; method {rule.method}, rule {rule.name})."
    )
    return zh, en


def _value(arr: NDArray[np.float64] | None, i: int, s: int) -> float | None:
    if arr is None:
        return None
    v = float(arr[i, s] if arr.ndim == 2 else arr[i])
    return v if math.isfinite(v) else None


def touched_since(session: Session, since: datetime) -> tuple[set[str], set[str]]:
    """Diseases and township codes of the cards created or changed since ``since``."""
    rows = session.execute(
        select(Card.disease_code, func.substr(Card.address_code, 1, 9))
        .where(Card.updated_at >= since)
        .distinct()
    ).all()
    return {r[0] for r in rows}, {r[1] for r in rows}


def run_detection(
    session: Session,
    *,
    as_of: date,
    days: int = 1,
    config: MethodConfig | None = None,
    incremental: bool = False,
    progress: Progress | None = None,
) -> RunReport:
    """Run every rule for the ``days`` periods ending on ``as_of`` and record signals.

    With ``incremental`` only the diseases and regions touched since the last finished run
    are evaluated. The caller commits.
    """
    config = config or load_config()
    run = DetectionRun(as_of=as_of, incremental=incremental)
    session.add(run)
    session.flush()
    report = RunReport(run_id=run.id, as_of=as_of)

    diseases = session.scalars(select(Disease).where(Disease.active.is_(True))).all()
    names = {d.code: (d.name_zh, d.name_en) for d in diseases}
    touched_diseases: set[str] | None = None
    touched_regions: set[str] | None = None
    if incremental:
        last = session.scalar(
            select(func.max(DetectionRun.started_at)).where(
                DetectionRun.status == "finished", DetectionRun.id != run.id
            )
        )
        if last is not None:
            touched_diseases, touched_regions = touched_since(session, last)

    by_code = {d.code: d for d in diseases}
    series_of = {
        d.code: d.parent_code
        for d in diseases
        if d.parent_code and d.parent_code in config.aggregate_to_parent
    }
    members: dict[str, list[str]] = defaultdict(list)
    for d in diseases:
        if touched_diseases is None or d.code in touched_diseases:
            members[series_of.get(d.code, d.code)].append(d.code)
    by_rule: dict[str, list[str]] = defaultdict(list)
    rules: dict[str, Rule] = {}
    for series_code, leaves in members.items():
        head = by_code[series_code]
        for rule in config.rules_for(head.code, head.disease_class, head.managed_as_class_a):
            by_rule[rule.name].extend(leaves)
            rules[rule.name] = rule
    plans = [(rules[name], codes) for name, codes in by_rule.items()]

    region_names: dict[str, str] = {
        code: name for code, name in session.execute(select(Region.code, Region.name))
    }
    for step, (rule, codes) in enumerate(plans):
        if progress:
            progress(rule.name, step, len(plans))
        if getattr(algorithms, rule.method, None) is None:
            report.skipped_rules.append(rule.name)
            continue
        period = PERIOD_DAYS[rule.granularity]
        history_days = 366 * rule.history_years + 7 * 8 + days
        block = build_series(
            session,
            disease_codes=codes,
            level=rule.level,
            granularity=rule.granularity,
            as_of=as_of,
            history_days=history_days,
            regions=touched_regions,
            series_of=series_of,
        )
        if not block.keys:
            continue
        T = block.counts.shape[0]
        n_eval = max(1, math.ceil(days / period))
        eval_idx = np.arange(T - min(n_eval, T), T, dtype=np.int64)
        disease_zh = {code: names[code][0] for code in names}
        result = run_method(
            rule, block.counts, eval_idx, series_params(rule, block.keys, disease_zh)
        )
        report.series += len(block.keys)
        alarm = np.asarray(result.alarm, dtype=bool).reshape(eval_idx.size, -1)
        observed = np.asarray(result.observed, dtype=np.float64).reshape(eval_idx.size, -1)
        cols = [int(x) for x in np.flatnonzero(alarm.any(axis=0))]
        if not cols:
            _quiet_old_signals(session, rule, as_of)
            continue
        # Thresholds over the chart's whole span, for the alarmed series only (few and cheap),
        # so each signal's chart shows the threshold line and not just its alarm days.
        chart_keys = [block.keys[s] for s in cols]
        chart_params = series_params(rule, chart_keys, disease_zh)
        chart_idx = np.arange(max(0, T - CHART_PERIODS - eval_idx.size), T, dtype=np.int64)
        try:
            chart = run_method(rule, block.counts[:, cols], chart_idx, chart_params)
        except ValueError:  # the method needs more history than the chart's first periods
            chart_idx = eval_idx
            chart = run_method(rule, block.counts[:, cols], chart_idx, chart_params)
        for j, s in enumerate(cols):
            disease_code, region_code = block.keys[s]
            dz, de = names.get(disease_code, (disease_code, disease_code))
            region_name = region_names.get(region_code, region_code)
            for i in (int(x) for x in np.flatnonzero(alarm[:, s])):
                t = int(eval_idx[i])
                obs = float(observed[i, s])
                exp = _value(result.expected, i, s)
                ub = _value(result.upperbound, i, s)
                report.alarms += 1
                created = _record_alarm(
                    session,
                    rule=rule,
                    run_id=run.id,
                    key=(disease_code, region_code),
                    day=block.period_end[t],
                    obs=obs,
                    exp=exp,
                    ub=ub,
                    explanation=_explain(
                        rule, dz, de, region_name, block.period_end[t], obs, exp, ub
                    ),
                    chart=_chart(block.period_end, chart, chart_idx, t, j),
                )
                if created:
                    report.signals_new += 1
                else:
                    report.signals_updated += 1
        _quiet_old_signals(session, rule, as_of)

    run.finished_at = utcnow()
    run.series = report.series
    run.alarms = report.alarms
    run.signals_new = report.signals_new
    run.signals_updated = report.signals_updated
    run.status = "finished"
    session.flush()
    return report


def _chart(
    period_end: list[date], result: DetectionResult, idx: NDArray[np.int64], t: int, j: int
) -> dict[str, Any]:
    """Observed values and thresholds of the periods up to ``t`` (column ``j`` of ``result``).

    The observed value is the one the method compares with its threshold (e.g. the 7-day
    count for the moving percentile method), so the two lines of the chart are comparable.
    """
    pos = {int(x): i for i, x in enumerate(idx)}
    span = [tt for tt in range(max(0, t - CHART_PERIODS + 1), t + 1) if tt in pos]
    obs = np.asarray(result.observed, dtype=np.float64).reshape(idx.size, -1)
    return {
        "dates": [period_end[tt].isoformat() for tt in span],
        "observed": [_value(obs, pos[tt], j) for tt in span],
        "upperbound": [_value(result.upperbound, pos[tt], j) for tt in span],
        "expected": [_value(result.expected, pos[tt], j) for tt in span],
    }


def _record_alarm(
    session: Session,
    *,
    rule: Rule,
    run_id: int,
    key: tuple[str, str],
    day: date,
    obs: float,
    exp: float | None,
    ub: float | None,
    explanation: tuple[str, str],
    chart: dict[str, Any],
) -> bool:
    """Open a signal for an alarm, or extend the open one; True when a new one was made."""
    disease_code, region_code = key
    period = PERIOD_DAYS[rule.granularity]
    same_key = (
        Signal.disease_code == disease_code,
        Signal.region_code == region_code,
        Signal.rule == rule.name,
    )
    seen = session.scalar(
        select(Signal.id)
        .where(*same_key, Signal.first_date <= day, Signal.last_date >= day)
        .limit(1)
    )
    if seen is not None:
        return False  # already recorded by an earlier run over the same days
    open_signal = session.scalars(
        select(Signal)
        .where(
            Signal.disease_code == disease_code,
            Signal.region_code == region_code,
            Signal.rule == rule.name,
            Signal.status == "open",
        )
        .order_by(Signal.last_date.desc())
        .limit(1)
    ).first()
    if open_signal is not None:
        if (day - open_signal.last_date).days <= period * rule.close_after:
            open_signal.last_date = day
            open_signal.alarm_periods += 1
            open_signal.observed, open_signal.expected, open_signal.upperbound = obs, exp, ub
            open_signal.cases_total += int(obs)
            open_signal.explanation_zh, open_signal.explanation_en = explanation
            open_signal.series = chart
            open_signal.run_id = run_id
            open_signal.version += 1
            return False
        open_signal.status = "quiet"
    session.add(
        Signal(
            disease_code=disease_code,
            region_code=region_code,
            region_level=rule.level,
            granularity=rule.granularity,
            rule=rule.name,
            method=rule.method,
            params=rule.params,
            first_date=day,
            last_date=day,
            observed=obs,
            expected=exp,
            upperbound=ub,
            cases_total=int(obs),
            explanation_zh=explanation[0],
            explanation_en=explanation[1],
            series=chart,
            run_id=run_id,
        )
    )
    session.flush()
    return True


def _quiet_old_signals(session: Session, rule: Rule, as_of: date) -> None:
    """Open signals of ``rule`` with no alarm for ``close_after`` periods become quiet."""
    horizon = as_of - timedelta(days=PERIOD_DAYS[rule.granularity] * rule.close_after)
    for sig in session.scalars(
        select(Signal).where(
            and_(Signal.rule == rule.name, Signal.status == "open", Signal.last_date < horizon)
        )
    ):
        sig.status = "quiet"
