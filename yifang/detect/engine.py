"""The early-warning engine: series of counts in batches, the configured algorithms over each
batch, and the signals their alarms raise.

A run takes an analysis date ``as_of`` and a number of ``days`` to evaluate (1 for the daily
job, more to back-fill). For every rule of ``data/methods.yaml`` it goes through three parts:

* a **series source** gives the rule's disease × region series (every disease the rule
  applies to × every region of the rule's level) as batches of at most ``batch_size``
  series, each a (T, S) array of counts per period (days, or 7-day blocks ending on
  ``as_of``). :class:`CardSource` counts the report cards in the database (one SQL
  ``GROUP BY`` per rule, kept sparse until a batch is made dense); :class:`CountArraySource`
  reads daily counts (regions × diseases × days) from an array or a memory-mapped ``.npy``
  file, for national-size sets. Series with no case in the window are left out: they cannot
  alarm.
* the **batch runner** (:func:`evaluate_batch`) evaluates one batch: a pure function of the
  batch, so it runs here one batch after another (the default runner, ``map``) or on a Dask
  cluster (:func:`yifang.detect.distributed.dask_runner`) with the same results. Series whose
  evaluated counts cannot reach an alarm (:func:`may_alarm`, e.g. no case in the current
  7-day window of the moving percentile method) are not fitted; the others are evaluated at
  once, and each alarm comes back with its chart data.
* the **signal writer** (:class:`SignalWriter`) turns alarms into signals. An alarm of the
  same disease, region and rule within ``close_after`` periods of the open signal's last
  alarm updates that signal rather than opening a new one; an alarm on a day an existing
  signal already covers (a re-run) changes nothing.

Memory is bounded by the batch (a (T, batch_size) array and the method's temporaries), not
by the number of series; the card source also holds the rule's non-zero cells.

Incremental runs (after an import) evaluate only the series the new data touch: the
(disease, region) pairs of the cards created or changed since the previous finished run.
"""

from __future__ import annotations

import inspect
import math
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import String, and_, func, or_, select
from sqlalchemy.orm import Session

from yifang.cases.models import Card
from yifang.catalog.models import Disease, Region
from yifang.core.db import utcnow
from yifang.detect import algorithms
from yifang.detect.algorithms.result import DetectionResult
from yifang.detect.config import (
    LEVEL_DIGITS,
    PERIOD_DAYS,
    MethodConfig,
    Rule,
    SeriesInfo,
    SourcesConfig,
    load_config,
    load_sources,
)
from yifang.detect.models import DetectionRun, Signal

#: Periods of counts kept in a signal for its chart.
CHART_PERIODS = 60
#: Methods that model the day of the week and so need the weekday of the first period.
WEEKDAY_METHODS = ("essence_switch", "adaptive_regression")
#: Series evaluated at once by default: a (T, 5,000) block of five years of days is ~75 MB.
DEFAULT_BATCH_SIZE = 5_000
Progress = Callable[[str, int, int], None]
#: Card states that are not (yet) reports: deleted cards, and drafts (a hospital front end's
#: pre-filled card waiting for the doctor) until the doctor submits them.
NOT_COUNTED = ("deleted", "draft")
#: (disease of the series, township code) of the cards an incremental run looks at.
Touched = set[tuple[str, str]]


# ---------------------------------------------------------------------------------------
# Series and batches
# ---------------------------------------------------------------------------------------


@dataclass
class SeriesBlock:
    """Counts of S series over T periods; ``period_end[t]`` is the last day of period t."""

    keys: list[tuple[str, str]]
    period_end: list[date]
    counts: NDArray[np.float64]


class SeriesBatch(Protocol):
    """A batch of series that can be made into a :class:`SeriesBlock` where it is evaluated.

    Batches are small and picklable (sparse cells, or a file name and a slice), so a runner
    can send them to other processes or machines and make them dense there.
    """

    def load(self) -> SeriesBlock:
        """The batch's counts as a dense block."""
        ...


class SeriesSource(Protocol):
    """Where series come from: the card table, an array of counts, a file, the syndrome
    counts and other streams (:mod:`yifang.detect.sources`)."""

    def supports(self, rule: Rule) -> bool:
        """Whether the source has series at the rule's region level."""
        ...

    def batches(
        self,
        rule: Rule,
        disease_codes: Collection[str],
        *,
        as_of: date,
        history_days: int,
        batch_size: int,
        touched: Touched | None = None,
    ) -> list[SeriesBatch]:
        """The rule's series in batches of at most ``batch_size``; with ``touched`` only the
        series holding a touched (disease, township) pair."""
        ...


class OtherSource(SeriesSource, Protocol):
    """A source of series other than the cards, which says what series it holds."""

    def codes(self) -> list[str]:
        """The series codes (syndromes, streams) the source holds."""
        ...

    def touched_since(self, since: datetime) -> Touched:
        """(code, region) of the data changed since ``since``."""
        ...


def _window(as_of: date, granularity: str, history_days: int) -> tuple[int, int, date]:
    """Period length (days), number of periods and first day of the history window."""
    period = PERIOD_DAYS[granularity]
    n_periods = max(1, history_days // period)
    return period, n_periods, as_of - timedelta(days=n_periods * period - 1)


def _period_ends(as_of: date, period: int, n_periods: int) -> list[date]:
    return [as_of - timedelta(days=(n_periods - 1 - t) * period) for t in range(n_periods)]


def touched_keys(touched: Touched, level: str) -> set[tuple[str, str]]:
    """The series keys (disease, region at ``level``) holding the touched pairs."""
    digits = LEVEL_DIGITS[level]
    return {(d, r[:digits]) for d, r in touched}


def _chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    size = max(1, int(size))
    for lo in range(0, n, size):
        yield lo, min(lo + size, n)


def _date_column() -> Any:
    # date() exists in SQLite and PostgreSQL; untyped so each driver's own value comes back.
    return func.date(Card.diagnosis_time, type_=String)


@dataclass(frozen=True)
class _Cells:
    """Non-zero counts of a set of series: cell k adds ``n[k]`` to series ``s[k]`` at ``t[k]``."""

    keys: list[tuple[str, str]]
    t: NDArray[np.int64]
    s: NDArray[np.int64]
    n: NDArray[np.float64]


def _count_cells(
    session: Session,
    *,
    disease_codes: Iterable[str],
    level: str,
    as_of: date,
    period: int,
    n_periods: int,
    start: date,
    regions: Iterable[str] | None,
    series_of: Mapping[str, str] | None,
) -> _Cells:
    """Count reported cards (not deleted, not drafts) by series × period (one SQL GROUP BY);
    keys sorted."""
    digits = LEVEL_DIGITS[level]
    day = _date_column().label("day")
    region = func.substr(Card.address_code, 1, digits).label("region")
    stmt = (
        select(Card.disease_code, region, day, func.count())
        .where(
            Card.status.not_in(NOT_COUNTED),
            Card.disease_code.in_(list(disease_codes)),
            Card.diagnosis_time >= datetime.combine(start, datetime.min.time()),
            Card.diagnosis_time < datetime.combine(as_of + timedelta(days=1), datetime.min.time()),
        )
        .group_by(Card.disease_code, region, day)
    )
    if regions is not None:
        prefixes = sorted({r[:digits] for r in regions})
        stmt = stmt.where(or_(*[Card.address_code.startswith(p) for p in prefixes]))
    index: dict[tuple[str, str], int] = {}
    ts: list[int] = []
    ss: list[int] = []
    ns: list[int] = []
    for disease_code, region_code, day_value, n in session.execute(stmt):
        d = day_value if isinstance(day_value, date) else date.fromisoformat(str(day_value)[:10])
        t = n_periods - 1 - (as_of - d).days // period
        if not 0 <= t < n_periods:
            continue
        key = ((series_of or {}).get(disease_code, disease_code), str(region_code))
        ts.append(t)
        ss.append(index.setdefault(key, len(index)))
        ns.append(int(n))
    keys = sorted(index)
    rank = np.empty(len(index), dtype=np.int64)
    for new, key in enumerate(keys):
        rank[index[key]] = new
    s_arr = rank[np.asarray(ss, dtype=np.int64)] if ss else np.zeros(0, dtype=np.int64)
    return _Cells(
        keys=keys,
        t=np.asarray(ts, dtype=np.int64),
        s=s_arr,
        n=np.asarray(ns, dtype=np.float64),
    )


def _dense(cells: _Cells, n_periods: int) -> NDArray[np.float64]:
    counts = np.zeros((n_periods, len(cells.keys)), dtype=np.float64)
    np.add.at(counts, (cells.t, cells.s), cells.n)
    return counts


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
    (e.g. every pulmonary-TB sub-type into TB); unmapped codes are their own series. Keys are
    sorted. One block for all series: :class:`CardSource` makes batches of it instead.
    """
    period, n_periods, start = _window(as_of, granularity, history_days)
    cells = _count_cells(
        session,
        disease_codes=disease_codes,
        level=level,
        as_of=as_of,
        period=period,
        n_periods=n_periods,
        start=start,
        regions=regions,
        series_of=series_of,
    )
    return SeriesBlock(
        keys=cells.keys,
        period_end=_period_ends(as_of, period, n_periods),
        counts=_dense(cells, n_periods),
    )


@dataclass(frozen=True)
class CardBatch:
    """Some series of the card table, kept as their non-zero cells until loaded."""

    cells: _Cells
    period_end: list[date]

    def load(self) -> SeriesBlock:
        return SeriesBlock(
            keys=list(self.cells.keys),
            period_end=list(self.period_end),
            counts=_dense(self.cells, len(self.period_end)),
        )


@dataclass
class CardSource:
    """Series counted from the report cards (by date of diagnosis, deleted cards excluded).

    ``series_of`` folds sub-type diseases into the disease of their series.
    """

    session: Session
    series_of: Mapping[str, str] = field(default_factory=dict)

    def supports(self, rule: Rule) -> bool:
        return rule.level in LEVEL_DIGITS

    def touched_since(self, since: datetime) -> Touched:
        """(series disease, township) of the cards created or changed since ``since``."""
        return {(self.series_of.get(d, d), r) for d, r in touched_since(self.session, since)}

    def batches(
        self,
        rule: Rule,
        disease_codes: Collection[str],
        *,
        as_of: date,
        history_days: int,
        batch_size: int,
        touched: Touched | None = None,
    ) -> list[SeriesBatch]:
        period, n_periods, start = _window(as_of, rule.granularity, history_days)
        wanted = touched_keys(touched, rule.level) if touched is not None else None
        cells = _count_cells(
            self.session,
            disease_codes=disease_codes,
            level=rule.level,
            as_of=as_of,
            period=period,
            n_periods=n_periods,
            start=start,
            regions=None if wanted is None else [r for _, r in wanted],
            series_of=self.series_of,
        )
        keep = np.arange(len(cells.keys))
        if wanted is not None:
            keep = np.array([i for i, k in enumerate(cells.keys) if k in wanted], dtype=np.int64)
        period_end = _period_ends(as_of, period, n_periods)
        order = np.argsort(cells.s, kind="stable")
        s_sorted = cells.s[order]
        out: list[SeriesBatch] = []
        for lo, hi in _chunks(keep.size, batch_size):
            members = keep[lo:hi]
            local = np.full(len(cells.keys), -1, dtype=np.int64)
            local[members] = np.arange(members.size)
            # cells of the series from members[0] to members[-1], then those kept
            a, b = np.searchsorted(s_sorted, [members[0], members[-1] + 1])
            pick = order[a:b]
            pick = pick[local[cells.s[pick]] >= 0]
            out.append(
                CardBatch(
                    cells=_Cells(
                        keys=[cells.keys[i] for i in members],
                        t=cells.t[pick],
                        s=local[cells.s[pick]],
                        n=cells.n[pick],
                    ),
                    period_end=period_end,
                )
            )
        return out


@dataclass(frozen=True)
class ArrayBatch:
    """Some series of a daily count array (regions × diseases × days), loaded on demand.

    ``data`` is the array (or the part of it this batch reads) when it lives in memory;
    otherwise ``path`` names an ``.npy`` file that is memory-mapped on load, so a worker on
    another machine reads only its slice (the file must be reachable there).
    """

    keys: list[tuple[str, str]]
    region_idx: NDArray[np.int64]
    disease_idx: NDArray[np.int64]
    day_lo: int
    day_hi: int
    period: int
    period_end: list[date]
    data: NDArray[Any] | None = None
    path: str | None = None
    region_offset: int = 0

    def load(self) -> SeriesBlock:
        arr: NDArray[Any]
        if self.data is not None:  # rows from region ``region_offset`` on
            arr, r = self.data, self.region_idx - self.region_offset
        elif self.path is not None:
            arr, r = np.load(self.path, mmap_mode="r"), self.region_idx
        else:
            raise ValueError("an ArrayBatch needs data or a path")
        r0, r1 = int(r.min()), int(r.max()) + 1
        lo, hi = max(self.day_lo, 0), self.day_hi
        part = np.asarray(arr[r0:r1, :, lo:hi])
        daily = part[r - r0, self.disease_idx]  # (S, days), a copy of this batch only
        keys = list(self.keys)
        has_case = np.nansum(daily, axis=1) > 0
        if not has_case.all():  # no case in the window: cannot alarm, never made float
            keys = [keys[i] for i in np.flatnonzero(has_case)]
            daily = daily[has_case]
        n_periods, S = len(self.period_end), daily.shape[0]
        if self.day_lo >= 0 and np.issubdtype(daily.dtype, np.integer):
            if self.period > 1:  # 7-day blocks, summed before they are made float
                daily = daily.reshape(S, n_periods, self.period).sum(axis=2)
            x = np.asarray(daily, dtype=np.float64)
        else:
            x = np.asarray(daily, dtype=np.float64)
            if self.day_lo < 0:  # unknown (NaN) before the array's first day
                x = np.concatenate([np.full((S, -self.day_lo), np.nan), x], axis=1)
            if self.period > 1:  # 7-day blocks; a block with a missing day is missing
                x = x.reshape(S, n_periods, self.period).sum(axis=2)
        return SeriesBlock(keys=keys, period_end=list(self.period_end), counts=x.T)


@dataclass
class CountArraySource:
    """Daily counts of ``regions`` × ``diseases`` × days from ``first_day`` on.

    The counts are an array of shape (R, D, days) in memory, or an ``.npy`` file of that shape
    (see :meth:`from_npy`; e.g. ``yifang.simulate.counts.write_national_npy``), read a slice
    at a time through a memory map. The regions are at one ``level``; rules of other levels
    are not supported. Days before ``first_day`` are unknown (NaN), not zero.
    """

    diseases: Sequence[str]
    regions: Sequence[str]
    first_day: date
    level: str = "county"
    counts: NDArray[Any] | None = None
    path: Path | None = None

    def __post_init__(self) -> None:
        if self.level not in LEVEL_DIGITS:
            raise ValueError(f"level must be one of {sorted(LEVEL_DIGITS)}, got {self.level!r}")
        shape = self._shape()
        if len(shape) != 3 or shape[:2] != (len(self.regions), len(self.diseases)):
            raise ValueError(
                f"counts must have shape (regions={len(self.regions)}, "
                f"diseases={len(self.diseases)}, days), got {shape}"
            )

    @classmethod
    def from_npy(
        cls,
        path: Path | str,
        *,
        diseases: Sequence[str],
        regions: Sequence[str],
        first_day: date,
        level: str = "county",
    ) -> CountArraySource:
        """A source over an ``.npy`` file of shape (regions, diseases, days)."""
        return cls(diseases, regions, first_day, level, path=Path(path))

    def _shape(self) -> tuple[int, ...]:
        if self.counts is not None:
            return tuple(self.counts.shape)
        if self.path is None:
            raise ValueError("CountArraySource needs counts or a path")
        return tuple(np.load(self.path, mmap_mode="r").shape)

    def supports(self, rule: Rule) -> bool:
        return rule.level == self.level

    def batches(
        self,
        rule: Rule,
        disease_codes: Collection[str],
        *,
        as_of: date,
        history_days: int,
        batch_size: int,
        touched: Touched | None = None,
    ) -> list[SeriesBatch]:
        period, n_periods, start = _window(as_of, rule.granularity, history_days)
        n_days = self._shape()[2]
        day_hi = (as_of - self.first_day).days + 1
        if not 0 < day_hi <= n_days:
            last = self.first_day + timedelta(days=n_days - 1)
            raise ValueError(f"as_of {as_of} lies outside the counts ({self.first_day}..{last})")
        day_lo = (start - self.first_day).days
        codes = set(disease_codes)
        d_idx = [i for i, d in enumerate(self.diseases) if d in codes]
        pairs = [(r, d) for r in range(len(self.regions)) for d in d_idx]
        if touched is not None:
            wanted = touched_keys(touched, self.level)
            pairs = [(r, d) for r, d in pairs if (self.diseases[d], self.regions[r]) in wanted]
        period_end = _period_ends(as_of, period, n_periods)
        out: list[SeriesBatch] = []
        for lo, hi in _chunks(len(pairs), batch_size):
            r_idx = np.array([p[0] for p in pairs[lo:hi]], dtype=np.int64)
            data, offset = None, 0
            if self.counts is not None:
                offset = int(r_idx.min())
                data = self.counts[offset : int(r_idx.max()) + 1]
            out.append(
                ArrayBatch(
                    keys=[(self.diseases[d], self.regions[r]) for r, d in pairs[lo:hi]],
                    region_idx=r_idx,
                    disease_idx=np.array([p[1] for p in pairs[lo:hi]], dtype=np.int64),
                    day_lo=day_lo,
                    day_hi=day_hi,
                    period=period,
                    period_end=period_end,
                    data=data,
                    path=None if self.path is None else str(self.path),
                    region_offset=offset,
                )
            )
        return out


# ---------------------------------------------------------------------------------------
# Batch runner
# ---------------------------------------------------------------------------------------


def series_params(
    rule: Rule,
    keys: list[tuple[str, str]],
    disease_names: Mapping[str, str],
    first_day: date | None = None,
) -> dict[str, Any]:
    """The rule's parameters, with per-series values where the method takes them.

    The moving percentile method gets each disease's CIDARS percentile (by its Chinese
    name) unless the rule fixes one; ``default_percentile`` applies to the others. ESSENCE's
    regression gets the weekday of the first period (``first_day``) unless the rule fixes it.
    """
    params = dict(rule.params)
    if rule.method in WEEKDAY_METHODS and first_day is not None:
        params.setdefault("start_weekday", first_day.isoweekday())
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
    if "range" not in inspect.signature(fn).parameters:
        return _rows_of(fn(counts, **kwargs), eval_idx)
    result: DetectionResult = fn(counts, range=eval_idx, **kwargs)
    return result


def _rows_of(result: DetectionResult, eval_idx: NDArray[np.int64]) -> DetectionResult:
    """The evaluated periods of a result computed over every period (methods such as
    ESSENCE's that take no ``range``)."""
    where = {int(t): i for i, t in enumerate(np.asarray(result.range).ravel())}
    rows = np.array([where.get(int(t), -1) for t in eval_idx], dtype=np.int64)
    if (rows < 0).any():
        raise ValueError("the method gave no result for some evaluated periods")

    def pick(arr: Any) -> Any:
        return None if arr is None else np.asarray(arr)[rows]

    return DetectionResult(
        range=np.asarray(eval_idx),
        observed=pick(result.observed),
        upperbound=pick(result.upperbound),
        alarm=pick(result.alarm),
        expected=pick(result.expected),
        extra={},
        method=result.method,
        params=result.params,
    )


def _window_sums(
    counts: NDArray[np.float64], eval_idx: NDArray[np.int64], window: int
) -> NDArray[np.float64]:
    """Cases in the ``window`` periods ending on each evaluated period (missing as 0)."""
    window = max(1, int(window))
    lo = max(0, int(eval_idx.min()) - window + 1)
    seg = np.nan_to_num(counts[lo : int(eval_idx.max()) + 1], nan=0.0)
    c = np.concatenate([np.zeros((1, seg.shape[1])), np.cumsum(seg, axis=0)])
    start = np.maximum(eval_idx - window + 1, lo) - lo
    sums: NDArray[np.float64] = c[eval_idx - lo + 1] - c[start]
    return sums


def may_alarm(
    rule: Rule,
    counts: NDArray[np.float64],
    eval_idx: NDArray[np.int64],
    params: Mapping[str, Any],
) -> NDArray[np.bool_]:
    """Series that can alarm on an evaluated period; the others need no fit.

    Exact screens, from each method's alarm rule (a screened-out series never alarms):

    * ``mpm``: an alarm needs X_t >= ``min_cases`` (cases in the current ``period_length``
      days);
    * ``fixed_threshold``: an alarm needs the window's cases to reach ``threshold``;
    * ``farrington_flexible``: no alarm where the count is 0 (R's ``observed != 0``);
    * ``ears_c``: the threshold is at least 0 (C3) or the baseline mean plus a non-negative
      multiple of sigma (C1, C2 with ``alpha`` <= 0.5), so a count of 0 never exceeds it.

    Every other method evaluates every series.
    """
    S = counts.shape[1]
    everything = np.ones(S, dtype=bool)
    if eval_idx.size == 0:
        return everything
    method = rule.method
    if method == "mpm":
        floor = float(params.get("min_cases", 1.0))
        if floor <= 0:
            return everything
        X = _window_sums(counts, eval_idx, int(params.get("period_length", 7)))
        return np.asarray((floor <= X).any(axis=0), dtype=bool)
    if method == "fixed_threshold":
        n = float(np.min(np.asarray(params.get("threshold", 1.0), dtype=np.float64)))
        X = _window_sums(counts, eval_idx, int(params.get("window", 1)))
        return np.asarray((n <= X).any(axis=0), dtype=bool)
    nonzero = np.asarray((np.nan_to_num(counts[eval_idx], nan=0.0) != 0).any(axis=0), dtype=bool)
    if method == "farrington_flexible":
        return nonzero
    if method == "ears_c":
        alpha = params.get("alpha")
        if params.get("method", "C1") == "C3" or alpha is None or float(alpha) <= 0.5:
            return nonzero
    return everything


@dataclass(frozen=True)
class Alarm:
    """One series alarming on one period, with what the signal shows (``disease_code`` is
    the series code: the disease of card series, else the syndrome or stream)."""

    disease_code: str
    region_code: str
    day: date
    observed: float
    expected: float | None
    upperbound: float | None
    chart: dict[str, Any]


@dataclass
class BatchResult:
    """What one batch gave: series in it, series fitted, alarms in key then date order."""

    series: int = 0
    evaluated: int = 0
    alarms: list[Alarm] = field(default_factory=list)


@dataclass(frozen=True)
class BatchJob:
    """One batch to evaluate under one rule, with all it needs (picklable).

    ``periods`` is how many periods ending on the analysis day are evaluated;
    ``disease_names`` maps disease codes to Chinese names (for per-disease percentiles);
    ``screen`` False fits every series (same alarms, slower: a reference for benchmarks).
    """

    rule: Rule
    batch: SeriesBatch
    periods: int
    disease_names: Mapping[str, str] = field(default_factory=dict)
    screen: bool = True


def _value(arr: NDArray[np.float64] | None, i: int, s: int) -> float | None:
    if arr is None:
        return None
    v = float(arr[i, s] if arr.ndim == 2 else arr[i])
    return v if math.isfinite(v) else None


def _as_2d(arr: NDArray[Any] | None, rows: int) -> NDArray[Any] | None:
    return None if arr is None else np.asarray(arr).reshape(rows, -1)


def _observed_periods(
    block: SeriesBlock, eval_idx: NDArray[np.int64]
) -> tuple[SeriesBlock, NDArray[np.int64]]:
    """The block without the periods no series has a value for, and the evaluated periods
    that remain (renumbered)."""
    keep: NDArray[np.bool_] = np.asarray(~np.isnan(block.counts).all(axis=1), dtype=bool)
    if keep.all():
        return block, eval_idx
    new_index = np.cumsum(keep) - 1
    kept_eval = eval_idx[keep[eval_idx]]
    return (
        SeriesBlock(
            keys=block.keys,
            period_end=[d for d, k in zip(block.period_end, keep, strict=True) if k],
            counts=block.counts[keep],
        ),
        new_index[kept_eval].astype(np.int64),
    )


def evaluate_batch(job: BatchJob) -> BatchResult:
    """Run the rule's method on one batch and return its alarms with their chart data.

    Only the series :func:`may_alarm` keeps are fitted; the alarms are those a run over the
    whole batch would give. The chart of an alarmed series re-runs the method over the last
    :data:`CHART_PERIODS` periods of that series alone.
    """
    rule = job.rule
    block = job.batch.load()
    S = len(block.keys)
    if S == 0:
        return BatchResult()
    T = block.counts.shape[0]
    eval_idx = np.arange(T - min(max(1, job.periods), T), T, dtype=np.int64)
    if rule.skip_missing:
        block, eval_idx = _observed_periods(block, eval_idx)
        T = block.counts.shape[0]
        if eval_idx.size == 0:
            return BatchResult(series=S)
    first = block.period_end[0] if block.period_end else None
    params = series_params(rule, block.keys, job.disease_names, first)
    if job.screen:
        cand = np.flatnonzero(may_alarm(rule, block.counts, eval_idx, params))
    else:
        cand = np.arange(S)
    out = BatchResult(series=S, evaluated=int(cand.size))
    if cand.size == 0:
        return out
    counts = block.counts if cand.size == S else block.counts[:, cand]
    keys = block.keys if cand.size == S else [block.keys[s] for s in cand]
    result = run_method(rule, counts, eval_idx, series_params(rule, keys, job.disease_names, first))
    alarm = np.asarray(result.alarm, dtype=bool).reshape(eval_idx.size, -1)
    observed = np.asarray(result.observed, dtype=np.float64).reshape(eval_idx.size, -1)
    expected = _as_2d(result.expected, eval_idx.size)
    upper = _as_2d(result.upperbound, eval_idx.size)
    cols = [int(x) for x in np.flatnonzero(alarm.any(axis=0))]
    if not cols:
        return out
    # Thresholds over the chart's whole span, for the alarmed series only (few and cheap),
    # so each signal's chart shows the threshold line and not just its alarm days.
    chart_keys = [keys[s] for s in cols]
    chart_params = series_params(rule, chart_keys, job.disease_names, first)
    chart_idx = np.arange(max(0, T - CHART_PERIODS - eval_idx.size), T, dtype=np.int64)
    try:
        chart = run_method(rule, counts[:, cols], chart_idx, chart_params)
    except ValueError:  # the method needs more history than the chart's first periods
        chart_idx = eval_idx
        chart = run_method(rule, counts[:, cols], chart_idx, chart_params)
    charts = _ChartData(block.period_end, chart, chart_idx)
    for j, s in enumerate(cols):
        disease_code, region_code = keys[s]
        for i in (int(x) for x in np.flatnonzero(alarm[:, s])):
            t = int(eval_idx[i])
            out.alarms.append(
                Alarm(
                    disease_code=disease_code,
                    region_code=region_code,
                    day=block.period_end[t],
                    observed=float(observed[i, s]),
                    expected=_value(expected, i, s),
                    upperbound=_value(upper, i, s),
                    chart=charts.chart(t, j),
                )
            )
    return out


def _column_lists(arr: NDArray[np.float64] | None, rows: int) -> list[list[float | None]]:
    """Column j of a (rows, J) result array as a list, None where not finite."""
    if arr is None:
        return []
    a = np.asarray(arr, dtype=np.float64).reshape(rows, -1)
    return [[v if math.isfinite(v) else None for v in col] for col in a.T.tolist()]


class _ChartData:
    """The chart values of every alarmed series of a batch, as lists made once."""

    def __init__(
        self, period_end: list[date], result: DetectionResult, idx: NDArray[np.int64]
    ) -> None:
        self.period_end = period_end
        self.pos = {int(x): i for i, x in enumerate(idx)}
        self.observed = _column_lists(result.observed, idx.size)
        self.upperbound = _column_lists(result.upperbound, idx.size)
        self.expected = _column_lists(result.expected, idx.size)

    def chart(self, t: int, j: int) -> dict[str, Any]:
        """Observed values and thresholds of the periods up to ``t`` (alarmed series ``j``).

        The observed value is the one the method compares with its threshold (e.g. the 7-day
        count for the moving percentile method), so the two lines of the chart are comparable.
        """
        span = [tt for tt in range(max(0, t - CHART_PERIODS + 1), t + 1) if tt in self.pos]
        rows = [self.pos[tt] for tt in span]
        return {
            "dates": [self.period_end[tt].isoformat() for tt in span],
            "observed": [self.observed[j][i] for i in rows],
            "upperbound": [self.upperbound[j][i] for i in rows],
            "expected": [self.expected[j][i] if self.expected else None for i in rows],
        }


#: Runs a function over jobs and yields the results in the jobs' order: ``map`` runs them
#: here one after another; :func:`yifang.detect.distributed.dask_runner` on a Dask cluster.
Runner = Callable[[Callable[[BatchJob], BatchResult], Iterable[BatchJob]], Iterable[BatchResult]]


# ---------------------------------------------------------------------------------------
# Signal writer
# ---------------------------------------------------------------------------------------


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


def _explain_series(
    rule: Rule, info: SeriesInfo, region: str, day: date, a: Alarm
) -> tuple[str, str]:
    """The explanation of a syndrome or stream alarm, in the series' own measure."""
    unit_zh = "日" if rule.granularity == "day" else "周（截至该日的7天）"
    unit_en = "day" if rule.granularity == "day" else "7 days ending"
    kind_zh = "症状监测" if info.source == "syndrome" else "多源监测"
    kind_en = "syndromic surveillance" if info.source == "syndrome" else "surveillance stream"
    if info.measure in ("share", "rate"):
        value_zh = f"为 {a.observed:.1f}%"
        value_en = f"{a.observed:.1f}%"
        ub_txt, exp_txt = f"{_fmt(a.upperbound)}%", f"{_fmt(a.expected)}%"
    else:
        value_zh = f"计 {a.observed:.0f}"
        value_en = f"{a.observed:.0f}"
        ub_txt, exp_txt = _fmt(a.upperbound), _fmt(a.expected)
    zh = (
        f"{region}{info.name_zh}（{kind_zh}）：{day.isoformat()}{unit_zh}{value_zh}，"
        f"超过预警阈值 {ub_txt}（期望 {exp_txt}；方法 {rule.method}，规则 {rule.name}）。"
    )
    en = (
        f"{info.name_en} ({kind_en}) in {region}: {value_en} on the {unit_en} {day.isoformat()}, "
        f"above the threshold {ub_txt} (expected {exp_txt}; method {rule.method}, "
        f"rule {rule.name})."
    )
    return zh, en


class SignalWriter:
    """Records a run's alarms as signals, merging consecutive alarms into one signal.

    Each call of :meth:`write` takes the alarms of one batch (in key then date order), reads
    the signals they may touch in one query, and flushes once.
    """

    def __init__(
        self,
        session: Session,
        run_id: int,
        disease_names: Mapping[str, tuple[str, str]],
        region_names: Mapping[str, str],
        sources: SourcesConfig | None = None,
    ) -> None:
        self.session = session
        self.run_id = run_id
        self.disease_names = disease_names
        self.region_names = region_names
        self.sources = sources if sources is not None else SourcesConfig()

    def _existing(self, rule: Rule, alarms: Sequence[Alarm]) -> dict[tuple[str, str], list[Signal]]:
        """Signals of the alarms' keys that are open or reach the first alarm day."""
        first = min(a.day for a in alarms)
        codes = sorted({a.disease_code for a in alarms})
        # card signals are keyed by disease (older rows have no series code)
        code_col = Signal.disease_code if rule.source == "cards" else Signal.series_code
        rows = self.session.scalars(
            select(Signal).where(
                Signal.rule == rule.name,
                code_col.in_(codes),
                Signal.region_code.in_(sorted({a.region_code for a in alarms})),
                or_(Signal.status == "open", Signal.last_date >= first),
            )
        )
        index: dict[tuple[str, str], list[Signal]] = defaultdict(list)
        for sig in rows:
            code = sig.disease_code if rule.source == "cards" else sig.series_code
            index[(str(code), sig.region_code)].append(sig)
        return index

    def _label(self, rule: Rule, code: str) -> tuple[str, str]:
        if rule.source == "cards":
            return self.disease_names.get(code, (code, code))
        info = self.sources.info(rule.source, code)
        return info.name_zh, info.name_en

    def _cases(self, rule: Rule, a: Alarm) -> int:
        """Cases the alarm adds to the signal (none for shares and rates)."""
        if rule.source != "cards" and self.sources.info(rule.source, a.disease_code).measure in (
            "share",
            "rate",
        ):
            return 0
        return int(a.observed)

    def write(self, rule: Rule, alarms: Sequence[Alarm]) -> tuple[int, int]:
        """Record the alarms; returns (signals opened, signals extended).

        An alarm on a day an existing signal of the same key already covers changes nothing
        (re-running a day is idempotent); one within ``close_after`` periods of the open
        signal's last alarm extends it; otherwise the open signal becomes quiet and a new one
        opens.
        """
        if not alarms:
            return 0, 0
        index = self._existing(rule, alarms)
        period = PERIOD_DAYS[rule.granularity]
        new = updated = 0
        for a in alarms:
            sigs = index[(a.disease_code, a.region_code)]
            if any(s.first_date <= a.day <= s.last_date for s in sigs):
                continue
            explanation = self._explain(rule, a)
            open_sigs = [s for s in sigs if s.status == "open"]
            current = max(open_sigs, key=lambda s: s.last_date) if open_sigs else None
            if current is not None:
                if (a.day - current.last_date).days <= period * rule.close_after:
                    current.last_date = a.day
                    current.alarm_periods += 1
                    current.observed, current.expected = a.observed, a.expected
                    current.upperbound = a.upperbound
                    current.cases_total += self._cases(rule, a)
                    current.explanation_zh, current.explanation_en = explanation
                    current.series = a.chart
                    current.run_id = self.run_id
                    current.version += 1
                    updated += 1
                    continue
                current.status = "quiet"
            name_zh, name_en = self._label(rule, a.disease_code)
            sig = Signal(
                source=rule.source,
                series_code=a.disease_code,
                series_name_zh=name_zh[:100],
                series_name_en=name_en[:100],
                disease_code=a.disease_code if rule.source == "cards" else None,
                region_code=a.region_code,
                region_level=rule.level,
                granularity=rule.granularity,
                rule=rule.name,
                method=rule.method,
                params=rule.params,
                status="open",
                first_date=a.day,
                last_date=a.day,
                alarm_periods=1,
                observed=a.observed,
                expected=a.expected,
                upperbound=a.upperbound,
                cases_total=self._cases(rule, a),
                explanation_zh=explanation[0],
                explanation_en=explanation[1],
                series=a.chart,
                run_id=self.run_id,
                version=1,
            )
            self.session.add(sig)
            sigs.append(sig)
            new += 1
        self.session.flush()
        return new, updated

    def _explain(self, rule: Rule, a: Alarm) -> tuple[str, str]:
        region = self.region_names.get(a.region_code, a.region_code)
        if rule.source != "cards":
            info = self.sources.info(rule.source, a.disease_code)
            return _explain_series(rule, info, region, a.day, a)
        dz, de = self.disease_names.get(a.disease_code, (a.disease_code, a.disease_code))
        return _explain(rule, dz, de, region, a.day, a.observed, a.expected, a.upperbound)

    def quiet_old(self, rule: Rule, as_of: date) -> None:
        """Open signals of ``rule`` with no alarm for ``close_after`` periods become quiet."""
        horizon = as_of - timedelta(days=PERIOD_DAYS[rule.granularity] * rule.close_after)
        for sig in self.session.scalars(
            select(Signal).where(
                and_(Signal.rule == rule.name, Signal.status == "open", Signal.last_date < horizon)
            )
        ):
            sig.status = "quiet"


# ---------------------------------------------------------------------------------------
# A run
# ---------------------------------------------------------------------------------------


@dataclass
class RunReport:
    """What one run did: series with a case in the window, series fitted, batches."""

    run_id: int
    as_of: date
    series: int = 0
    evaluated: int = 0
    batches: int = 0
    alarms: int = 0
    signals_new: int = 0
    signals_updated: int = 0
    corroborated: int = 0
    skipped_rules: list[str] = field(default_factory=list)


def touched_since(session: Session, since: datetime) -> Touched:
    """(disease, township code) of the cards created or changed since ``since``."""
    rows = session.execute(
        select(Card.disease_code, func.substr(Card.address_code, 1, 9))
        .where(Card.updated_at >= since)
        .distinct()
    ).all()
    return {(str(d), str(r)) for d, r in rows}


def history_days(rule: Rule, days: int) -> int:
    """Days of counts read for a rule: its ``history_years``, eight weeks of margin for the
    baseline windows, the chart's :data:`CHART_PERIODS` and the ``days`` evaluated."""
    return 366 * rule.history_years + 7 * 8 + CHART_PERIODS * PERIOD_DAYS[rule.granularity] + days


def plan_rules(
    config: MethodConfig,
    diseases: Sequence[Disease],
    series_of: Mapping[str, str],
    touched: Touched | None = None,
) -> list[tuple[Rule, list[str]]]:
    """Each rule with the card disease codes it counts, in file order.

    A series disease counts all its sub-types (``series_of``); with ``touched`` only the
    series diseases of touched cards are planned (all their sub-types still counted).
    """
    by_code = {d.code: d for d in diseases}
    members: dict[str, list[str]] = defaultdict(list)
    for d in diseases:
        members[series_of.get(d.code, d.code)].append(d.code)
    heads = None if touched is None else {d for d, _ in touched}
    by_rule: dict[str, list[str]] = defaultdict(list)
    rules: dict[str, Rule] = {}
    for series_code, leaves in members.items():
        head = by_code.get(series_code)
        if head is None or (heads is not None and series_code not in heads):
            continue
        for rule in config.rules_for(head.code, head.disease_class, head.managed_as_class_a):
            by_rule[rule.name].extend(leaves)
            rules[rule.name] = rule
    order = [r.name for r in config.rules if r.name in rules]
    return [(rules[name], sorted(by_rule[name])) for name in dict.fromkeys(order)]


@dataclass(frozen=True)
class _Plan:
    """One rule to run: the series codes it watches, their source, the touched pairs."""

    rule: Rule
    codes: list[str]
    source: SeriesSource
    touched: Touched | None


def _other_plans(
    config: MethodConfig,
    sources: Mapping[str, OtherSource],
    since: datetime | None,
) -> list[_Plan]:
    """The rules of the syndrome and stream sources with the codes each watches (the
    rule's ``match`` codes that the source holds, or all it holds); with ``since`` only the
    series changed since then."""
    plans: list[_Plan] = []
    for name, src in sources.items():
        rules = config.rules_of(name)
        if not rules:
            continue
        touched = src.touched_since(since) if since is not None else None
        available = src.codes()
        if touched is not None:
            available = [c for c in available if c in {code for code, _ in touched}]
        for rule in rules:
            codes = [c for c in available if not rule.codes or c in rule.codes]
            if codes:
                plans.append(_Plan(rule, codes, src, touched))
    return plans


def run_detection(
    session: Session,
    *,
    as_of: date,
    days: int = 1,
    config: MethodConfig | None = None,
    incremental: bool = False,
    progress: Progress | None = None,
    source: SeriesSource | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    runner: Runner | None = None,
    sources: Mapping[str, OtherSource] | None = None,
    corroborate: bool = True,
) -> RunReport:
    """Run every rule for the ``days`` periods ending on ``as_of`` and record signals.

    ``source`` gives the card series (default: the card table); ``sources`` the series of
    the rules of other sources by name (default: the syndrome counts and the streams of the
    hospital front end, :func:`yifang.detect.sources.default_sources`); ``batch_size`` caps
    the series evaluated at once; ``runner`` evaluates the batches (default here, in turn;
    see :mod:`yifang.detect.distributed` for a Dask cluster). With ``incremental`` only the
    series touched by data changed since the last finished run are evaluated. After the
    rules, ``corroborate`` ranks the signals of the evaluated days by the other sources
    that confirm them (:mod:`yifang.detect.corroboration`). ``progress`` is called with
    (rule, batches done, batches of the rule). The caller commits.
    """
    from yifang.detect.corroboration import corroborate_signals
    from yifang.detect.sources import default_sources

    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    config = config or load_config()
    run = DetectionRun(as_of=as_of, incremental=incremental)
    session.add(run)
    session.flush()
    report = RunReport(run_id=run.id, as_of=as_of)

    diseases = session.scalars(select(Disease).where(Disease.active.is_(True))).all()
    series_of = {
        d.code: d.parent_code
        for d in diseases
        if d.parent_code and d.parent_code in config.aggregate_to_parent
    }
    touched: Touched | None = None
    last: datetime | None = None
    if incremental:
        last = session.scalar(
            select(func.max(DetectionRun.started_at)).where(
                DetectionRun.status == "finished", DetectionRun.id != run.id
            )
        )
    card_source = source if source is not None else CardSource(session, series_of)
    if last is not None:
        touched = {(series_of.get(d, d), r) for d, r in touched_since(session, last)}
    plans = [
        _Plan(rule, codes, card_source, touched)
        for rule, codes in plan_rules(config, diseases, series_of, touched)
    ]
    others = sources if sources is not None else default_sources(session)
    plans += _other_plans(config, others, last)
    run_batches: Runner = runner if runner is not None else map
    names = {d.code: (d.name_zh, d.name_en) for d in diseases}
    disease_zh = {code: zh for code, (zh, _) in names.items()}
    region_names: dict[str, str] = {
        code: name for code, name in session.execute(select(Region.code, Region.name))
    }
    writer = SignalWriter(session, run.id, names, region_names, load_sources())

    for plan in plans:
        rule = plan.rule
        if getattr(algorithms, rule.method, None) is None or not plan.source.supports(rule):
            report.skipped_rules.append(rule.name)
            continue
        period = PERIOD_DAYS[rule.granularity]
        batches = plan.source.batches(
            rule,
            plan.codes,
            as_of=as_of,
            history_days=history_days(rule, days),
            batch_size=batch_size,
            touched=plan.touched,
        )
        periods = max(1, math.ceil(days / period))
        jobs = (BatchJob(rule, b, periods, disease_zh) for b in batches)
        if progress:
            progress(rule.name, 0, len(batches))
        for k, result in enumerate(run_batches(evaluate_batch, jobs), start=1):
            report.batches += 1
            report.series += result.series
            report.evaluated += result.evaluated
            report.alarms += len(result.alarms)
            new, updated = writer.write(rule, result.alarms)
            report.signals_new += new
            report.signals_updated += updated
            if progress:
                progress(rule.name, k, len(batches))
        writer.quiet_old(rule, as_of)

    if corroborate:
        report.corroborated = corroborate_signals(
            session, start=as_of - timedelta(days=max(days, 1) - 1), end=as_of
        )
    run.finished_at = utcnow()
    run.series = report.series
    run.alarms = report.alarms
    run.signals_new = report.signals_new
    run.signals_updated = report.signals_updated
    run.status = "finished"
    session.flush()
    return report
