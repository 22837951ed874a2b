"""EARS C1, C2 and C3: the CDC's Early Aberration Reporting System detectors.

References:
    Hutwagner L, Thompson W, Seeman GM, Treadwell T. The bioterrorism preparedness and
    response Early Aberration Reporting System (EARS). J Urban Health 2003;80(2 Suppl 1):i89-96.
    Fricker RD, Hegler BL, Dunfee DA. Comparing syndromic surveillance detection methods:
    EARS' versus a CUSUM-based methodology. Stat Med 2008;27:3407-3429.

The reference implementation is R ``surveillance::earsC`` (version 1.20.3), whose results
this module reproduces. For day t with baseline length n (7 by default):

* C1: the baseline is the n days t-n .. t-1; mean ``Ybar`` and sample standard deviation
  ``S``; the threshold is ``Ybar + z_{1-alpha} * max(S, min_sigma)``.
* C2: the same with a two-day guard band, baseline t-n-2 .. t-3.
* C3: the C2 statistic ``C2(t) = (y_t - Ybar_t) / max(S_t, min_sigma)`` summed with the
  positive parts of ``C2(t-1) - 1`` and ``C2(t-2) - 1``; the threshold on ``y_t`` is
  ``max(0, y_t + S_t * (z - (max(0, C2(t-2)-1) + max(0, C2(t-1)-1))))`` with ``S_t`` the
  bounded C2 standard deviation at t.

Alarm where the observed count exceeds the threshold. ``alpha`` defaults to 0.001 for C1
and C2 and 0.025 for C3, as in the reference.

Deliberate differences from ``earsC``:

* ``range`` is 0-based; the default is the reference's (the first day with a full baseline).
* Where R gives NA (a missing value in the baseline or on the day, or 0/0 when the baseline
  is constant and ``min_sigma`` is 0), the threshold is NaN and there is no alarm (R: NA).
* For C3 with a non-contiguous ``range`` R recycles a vector of the wrong length; here each
  evaluated day uses its own two preceding days, which is what R computes for contiguous
  ranges.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import norm

from yifang.detect.algorithms.result import DetectionResult, as_counts, as_range, squeeze

__all__ = ["ears_c"]

_GUARD = {"C1": 0, "C2": 2, "C3": 2}
_DEFAULT_ALPHA = {"C1": 0.001, "C2": 0.001, "C3": 0.025}


def _rows(x: NDArray[np.float64], t: NDArray[np.int64], lag: int) -> NDArray[np.float64]:
    """x[t - lag]: a view when t is a run of consecutive days (the usual case), else a copy."""
    if t.size and t[-1] - t[0] == t.size - 1:
        return x[t[0] - lag : t[-1] - lag + 1]
    return x[t - lag]


def _baseline_moments(
    x: NDArray[np.float64], t: NDArray[np.int64], baseline: int, guard: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean and sample standard deviation of the ``baseline`` days ending ``guard + 1``
    days before each day in ``t`` (two-pass, as R's ``mean`` and ``sd``)."""
    lags = range(guard + 1, guard + baseline + 1)
    total = np.zeros((t.size, x.shape[1]))
    for lag in lags:
        total += _rows(x, t, lag)
    Ybar = total / baseline
    ss = np.zeros_like(Ybar)
    dev = np.empty_like(Ybar)
    for lag in lags:
        np.subtract(_rows(x, t, lag), Ybar, out=dev)
        dev *= dev
        ss += dev
    S = np.sqrt(ss / (baseline - 1))
    return Ybar, S


def ears_c(
    observed: ArrayLike,
    *,
    method: Literal["C1", "C2", "C3"] = "C1",
    baseline: int = 7,
    alpha: float | None = None,
    min_sigma: float = 0.0,
    range: Sequence[int] | NDArray[np.integer] | None = None,
) -> DetectionResult:
    """EARS C1/C2/C3 thresholds for daily counts, as R ``surveillance::earsC``.

    Args:
        observed: counts of shape (T,) or (T, S), one row per day; NaN for missing.
        method: ``"C1"``, ``"C2"`` or ``"C3"``.
        baseline: number of days in the baseline (at least 3; 7 in EARS).
        alpha: one-sided error probability; None means 0.001 (C1, C2) or 0.025 (C3).
        min_sigma: lower bound on the baseline standard deviation (cases per day), so that a
            constant baseline still gives a finite threshold.
        range: 0-based days to evaluate; default every day from the first with a full
            baseline (``baseline`` for C1, ``baseline + 2`` for C2, ``baseline + 4`` for C3).

    Returns:
        :class:`DetectionResult` with ``upperbound`` (cases per day), ``alarm``,
        ``expected`` (the baseline mean) and ``extra["sigma"]`` (the bounded standard
        deviation used).
    """
    if method not in _GUARD:
        raise ValueError(f"method must be 'C1', 'C2' or 'C3', got {method!r}")
    if min_sigma < 0:
        raise ValueError("min_sigma must be non-negative")
    if int(baseline) != baseline or baseline < 3:
        raise ValueError("baseline must be an integer of at least 3 days")
    baseline = int(baseline)
    if alpha is None:
        alpha = _DEFAULT_ALPHA[method]
    if not 0 < alpha < 1:
        raise ValueError("alpha must lie strictly between 0 and 1")

    x, one_d = as_counts(observed)
    T = x.shape[0]
    guard = _GUARD[method]
    max_lag = baseline + guard + (2 if method == "C3" else 0)
    t = np.sort(as_range(range, T, max_lag))
    if (t.size and t[0] < max_lag) or (range is None and max_lag >= T):
        raise ValueError(
            f"observed is too short: {method} with baseline={baseline} needs day index "
            f">= {max_lag} (T={T})"
        )
    z = float(norm.ppf(1.0 - alpha))

    y = x[t]
    contiguous = t.size > 0 and t[-1] - t[0] == t.size - 1
    if method == "C3" and contiguous:
        # One pass over days t0-2 .. t_end gives the C2 moments of t, t-1 and t-2.
        t_ext = np.arange(t[0] - 2, t[-1] + 1)
        Ybar_ext, S_ext = _baseline_moments(x, t_ext, baseline, guard)
        moments = {
            k: (Ybar_ext[2 - k : 2 - k + t.size], S_ext[2 - k : 2 - k + t.size]) for k in (0, 1, 2)
        }
    else:
        moments = {0: _baseline_moments(x, t, baseline, guard)}
        if method == "C3":
            moments.update({k: _baseline_moments(x, t - k, baseline, guard) for k in (1, 2)})
    Ybar, S = moments[0]
    sigma = np.maximum(S, min_sigma)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method in ("C1", "C2"):
            upperbound = Ybar + z * sigma
        else:
            lagged = []
            for k in (2, 1):
                Ybar_k, S_k = moments[k]
                C2_k = (_rows(x, t, k) - Ybar_k) / np.maximum(S_k, min_sigma)
                lagged.append(np.maximum(0.0, C2_k - 1.0))
            upperbound = np.maximum(0.0, y + sigma * (z - (lagged[0] + lagged[1])))
    alarm = y > upperbound  # False where either is NaN (R: NA)

    return DetectionResult(
        range=t,
        observed=squeeze(y, one_d),
        upperbound=squeeze(upperbound, one_d),
        alarm=squeeze(alarm, one_d),
        expected=squeeze(Ybar, one_d),
        extra={"sigma": squeeze(sigma, one_d)},
        method=f"EARS_{method}",
        params={"method": method, "baseline": baseline, "alpha": alpha, "min_sigma": min_sigma},
    )
