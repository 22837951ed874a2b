"""Scoring detection against known outbreaks, the way the literature scores it.

Two levels:

* :func:`score_series` — alarms over count series with a known outbreak mask, as in
  Noufaily et al. (2013, Stat Med 32:1206–1222): the false-positive rate (FPR) is the share
  of evaluated periods without outbreak cases that alarm; the probability of detection
  (POD) is the share of outbreaks with at least one alarm in a period holding its cases;
  sensitivity is the share of outbreak periods that alarm; the delay is the number of
  periods from an outbreak's first period to its first alarm.
* :func:`score_signals` — the engine's signals against an outbreak ground truth (disease,
  regions, start and end dates), reported as POD, false signals per 100 region-weeks and
  days from outbreak start to the first signal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class SeriesScore:
    """Scores of one method over many series (see the module docstring)."""

    fpr: float
    pod: float
    sensitivity: float
    mean_delay: float
    outbreaks: int
    periods: int


def score_series(
    alarm: NDArray[np.bool_],
    in_outbreak: NDArray[np.bool_],
    outbreak_id: NDArray[np.int64] | None = None,
) -> SeriesScore:
    """Score alarms (R, S) against the outbreak mask (R, S) of the same evaluated periods.

    ``outbreak_id`` (R, S) numbers the outbreak each outbreak period belongs to (0 = none;
    ids are per series); without it each contiguous run of outbreak periods counts as one.
    NaN thresholds must already be turned into ``alarm = False``.
    """
    alarm = np.asarray(alarm, dtype=bool)
    mask = np.asarray(in_outbreak, dtype=bool)
    if alarm.shape != mask.shape:
        raise ValueError(f"alarm {alarm.shape} and in_outbreak {mask.shape} differ in shape")
    if alarm.ndim == 1:
        alarm, mask = alarm[:, None], mask[:, None]
    if outbreak_id is None:
        starts = mask & ~np.vstack([np.zeros((1, mask.shape[1]), bool), mask[:-1]])
        ids = np.cumsum(starts, axis=0) * mask
    else:
        ids = np.asarray(outbreak_id, dtype=np.int64).reshape(mask.shape) * mask
    quiet = ~mask
    fpr = float((alarm & quiet).sum() / max(quiet.sum(), 1))
    sens = float((alarm & mask).sum() / max(mask.sum(), 1))
    detected = 0
    total = 0
    delays: list[int] = []
    for s in range(mask.shape[1]):
        col_ids = ids[:, s]
        for k in np.unique(col_ids[col_ids > 0]):
            rows = np.flatnonzero(col_ids == k)
            total += 1
            hits = rows[alarm[rows, s]]
            if hits.size:
                detected += 1
                delays.append(int(hits[0] - rows[0]))
    return SeriesScore(
        fpr=fpr,
        pod=detected / total if total else float("nan"),
        sensitivity=sens,
        mean_delay=float(np.mean(delays)) if delays else float("nan"),
        outbreaks=total,
        periods=int(mask.size),
    )


@dataclass(frozen=True)
class TrueOutbreak:
    """One outbreak of the ground truth: disease, the regions it touched, its dates."""

    disease_code: str
    region_codes: tuple[str, ...]
    start: date
    end: date


@dataclass(frozen=True)
class RaisedSignal:
    """What scoring needs of a signal."""

    disease_code: str
    region_code: str
    first_date: date


@dataclass(frozen=True)
class SignalScore:
    """Scores of the engine's signals against a ground truth."""

    pod: float
    detected: int
    outbreaks: int
    false_signals: int
    signals: int
    false_per_100_region_weeks: float
    median_days_to_signal: float


def _related(a: str, b: str) -> bool:
    """Whether two region codes nest (one is the other's ancestor or the same)."""
    return a.startswith(b) or b.startswith(a)


def score_signals(
    signals: Sequence[RaisedSignal],
    outbreaks: Sequence[TrueOutbreak],
    *,
    region_weeks: float,
    grace_days: int = 7,
) -> SignalScore:
    """Match signals to outbreaks of the same disease in nesting regions.

    A signal detects an outbreak when it first alarms between the outbreak's start and
    ``grace_days`` after its end; a signal that detects none is false. ``region_weeks`` is
    the number of region × week units watched (for the false-signal rate).
    """
    matched_signals: set[int] = set()
    days: list[int] = []
    detected = 0
    for ob in outbreaks:
        first: int | None = None
        for i, sig in enumerate(signals):
            if sig.disease_code != ob.disease_code:
                continue
            if not any(_related(sig.region_code, r) for r in ob.region_codes):
                continue
            if ob.start <= sig.first_date <= ob.end + timedelta(days=grace_days):
                matched_signals.add(i)
                lag = (sig.first_date - ob.start).days
                first = lag if first is None else min(first, lag)
        if first is not None:
            detected += 1
            days.append(first)
    false = len(signals) - len(matched_signals)
    return SignalScore(
        pod=detected / len(outbreaks) if outbreaks else float("nan"),
        detected=detected,
        outbreaks=len(outbreaks),
        false_signals=false,
        signals=len(signals),
        false_per_100_region_weeks=100.0 * false / region_weeks if region_weeks else float("nan"),
        median_days_to_signal=float(np.median(days)) if days else float("nan"),
    )
