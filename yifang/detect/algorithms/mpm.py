"""Moving percentile method (移动百分位数法), CIDARS's temporal early-warning model.

References:
    Yang W, Li Z, Lan Y, et al. A nationwide web-based automated system for early outbreak
    detection and rapid response in China. Western Pac Surveill Response J 2011;2(1):10-15.
    doi:10.5365/wpsar.2010.1.1.009
    Zhang H, Li Z, Lai S, et al. Evaluation of the performance of a dengue outbreak detection
    tool for China. PLoS One 2014;9(8):e106144. doi:10.1371/journal.pone.0106144
    The national evaluation of CIDARS thresholds, 2008-07..2010-06 (Zhonghua Liu Xing Bing
    Xue Za Zhi, 2011): optimal percentile per disease (:data:`CIDARS_MPM_PERCENTILES`).

The method as published by China CDC: each day, for each county, the number of cases in the
current observation period (the most recent 7 days, moved forward one day at a time) is
compared with a percentile of the historical baseline of the same county, made of the
counts of the same 7-day period and of the periods just before and after it in each of the
previous years; a signal is raised when the current count reaches the threshold.

With y the daily counts, P the period length (7 days), Y the year length (365 days), b the
years back (3) and w the periods on each side (2):

    X_t = y_{t-P+1} + ... + y_t                         (current observation period)
    baseline(t) = { X_{t - iY + jP} : i = 1..b, j = -w..w }   (b(2w+1) = 15 values)
    threshold_t = Px(baseline(t)),   signal when X_t >= threshold_t and X_t >= min_cases.

No reference implementation is public. The 7-day observation period moved daily and the
comparison with a percentile of historical same-period counts are confirmed by the sources
above; the exact baseline geometry (3 years x 5 periods), the comparison (">=", from
"达到预警阈值") and the percentile definition (linear interpolation, R type 7) are the
commonly described CIDARS settings but could not be confirmed in a primary source, so every
one of them is a parameter. ``min_cases`` (default 1) keeps an all-zero baseline from
signalling on zero cases. A weekly variant (e.g. Songjiang's "5 weeks x 5 years", BMC
Public Health 2017, doi:10.1186/s12889-017-4488-0) is ``period_length=1, year_length=52,
years_back=5`` on weekly counts.

``observed`` in the result is X_t (cases in the current period), the value compared with
``upperbound`` (the percentile); ``expected`` is the baseline median.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from yifang.detect.algorithms.result import DetectionResult, as_counts, as_range, squeeze

__all__ = ["CIDARS_MPM_PERCENTILES", "mpm"]

#: Optimal national MPM thresholds (percentile of the baseline) per disease from the
#: 2008-07..2010-06 CIDARS evaluation (Zhonghua Liu Xing Bing Xue Za Zhi 2011); diseases not
#: listed (e.g. 手足口病, 水痘) have no national recommendation: P50 is the pilot default.
CIDARS_MPM_PERCENTILES: Mapping[str, float] = {
    "细菌性和阿米巴性痢疾": 50,
    "其他感染性腹泻病": 60,
    "流行性腮腺炎": 60,
    "甲型肝炎": 70,
    "流行性感冒": 70,
    "风疹": 70,
    "流行性乙型脑炎": 80,
    "猩红热": 90,
    "伤寒和副伤寒": 90,
    "戊型肝炎": 90,
    "急性出血性结膜炎": 90,
    "疟疾": 90,
    "流行性出血热": 90,
    "流行性脑脊髓膜炎": 90,
    "钩端螺旋体病": 90,
    "登革热": 90,
    "流行性和地方性斑疹伤寒": 90,
    "丙型肝炎": 90,
    "麻疹": 90,
}

_CHUNK_VALUES = 4_000_000  # baseline values gathered at once (bounds memory)


def _period_sums(y: NDArray[np.float64], P: int) -> NDArray[np.float64]:
    """X_t = sum of the P days ending on t; NaN where a day is missing or t < P - 1."""
    T, S = y.shape
    present = ~np.isnan(y)
    zero = np.zeros((1, S))
    c = np.concatenate([zero, np.cumsum(np.where(present, y, 0.0), axis=0)])
    m = np.concatenate([zero, np.cumsum(~present, axis=0)])
    X = np.full((T, S), np.nan)
    X[P - 1 :] = c[P:] - c[:-P]
    X[P - 1 :][(m[P:] - m[:-P]) > 0] = np.nan
    return X


def _type7(ordered: NDArray[np.float64], q: NDArray[np.float64]) -> NDArray[np.float64]:
    """Percentile q[s] (R type 7, linear) of sorted ordered[:, s, :]."""
    n = ordered.shape[2]
    h = (n - 1) * q / 100.0
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    series = np.arange(ordered.shape[1])
    v_lo = ordered[:, series, lo]
    return v_lo + (h - lo) * (ordered[:, series, hi] - v_lo)


def _percentiles(
    values: NDArray[np.float64], q: NDArray[np.float64], method: str
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Percentile q[s] and median of values[:, s, k] over k, for every row and series; NaN
    where a baseline value is missing."""
    missing = np.isnan(values).any(axis=2)
    ordered = np.sort(values, axis=2)
    median = _type7(ordered, np.full(values.shape[1], 50.0))
    if method == "linear":
        out = _type7(ordered, q)
    else:
        out = np.empty(values.shape[:2])
        for qv in np.unique(q):
            cols = np.flatnonzero(q == qv)
            out[:, cols] = np.percentile(ordered[:, cols], qv, axis=2, method=method)  # type: ignore[call-overload]
    out[missing] = np.nan
    median[missing] = np.nan
    return out, median


def mpm(
    observed: ArrayLike,
    *,
    percentile: float | ArrayLike = 50.0,
    period_length: int = 7,
    years_back: int = 3,
    periods_each_side: int = 2,
    year_length: int = 365,
    min_cases: float = 1.0,
    inclusive: bool = True,
    percentile_method: str = "linear",
    range: Sequence[int] | NDArray[np.integer] | None = None,
) -> DetectionResult:
    """CIDARS moving percentile method on daily counts.

    Args:
        observed: daily counts of shape (T,) or (T, S) (one county per column).
        percentile: the threshold Px, 0-100; a number or one per series (shape (S,)), e.g.
            from :data:`CIDARS_MPM_PERCENTILES` per disease.
        period_length: days in the observation period (7).
        years_back: previous years in the baseline (3).
        periods_each_side: baseline periods before and after the same period (2).
        year_length: time steps in a year (365 days; 364 keeps weekdays aligned; 52 for
            weekly counts with ``period_length=1``).
        min_cases: no signal when the current period has fewer cases.
        inclusive: signal when X_t >= threshold ("reaches"); False for X_t > threshold.
        percentile_method: NumPy's percentile method ("linear" = R type 7, Excel).
        range: 0-based days to evaluate; default from the first day with a full baseline.
            Days without a full baseline get NaN and no signal.

    Returns:
        :class:`DetectionResult` with ``observed`` = X_t, ``upperbound`` = threshold,
        ``expected`` = baseline median and ``alarm``.
    """
    x, one_d = as_counts(observed)
    T, S = x.shape
    for name, value in (
        ("period_length", period_length),
        ("years_back", years_back),
        ("year_length", year_length),
    ):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive whole number")
    if int(periods_each_side) != periods_each_side or periods_each_side < 0:
        raise ValueError("periods_each_side must be a non-negative whole number")
    if year_length <= periods_each_side * period_length:
        raise ValueError("year_length must exceed periods_each_side * period_length")
    q = np.broadcast_to(np.asarray(percentile, dtype=np.float64), (S,)).copy()
    if np.any(np.isnan(q)) or np.any(q < 0) or np.any(q > 100):
        raise ValueError("percentile must lie between 0 and 100")

    P, Y, b, w = int(period_length), int(year_length), int(years_back), int(periods_each_side)
    years, periods = np.meshgrid(np.arange(1, b + 1), np.arange(-w, w + 1), indexing="ij")
    offsets = (years * Y - periods * P).ravel()
    first = b * Y + w * P + P - 1
    t = as_range(range, T, first)
    X = _period_sums(x, P)

    n_base = offsets.size
    threshold = np.full((t.size, S), np.nan)
    expected = np.full((t.size, S), np.nan)
    chunk = max(1, _CHUNK_VALUES // max(1, n_base * S))
    for lo in np.arange(0, t.size, chunk):
        tt = t[lo : lo + chunk]
        idx = tt[:, None] - offsets[None, :]
        valid = (idx >= P - 1).all(axis=1)
        base = np.ascontiguousarray(X[np.where(idx >= 0, idx, 0)].transpose(0, 2, 1))
        base[~valid] = np.nan
        threshold[lo : lo + chunk], expected[lo : lo + chunk] = _percentiles(
            base, q, percentile_method
        )

    current = X[t]
    reached = current >= threshold if inclusive else current > threshold
    alarm = reached & (current >= min_cases)
    params: dict[str, Any] = {
        "percentile": float(q[0]) if np.all(q == q[0]) else q.tolist(),
        "period_length": P,
        "years_back": b,
        "periods_each_side": w,
        "year_length": Y,
        "min_cases": min_cases,
        "inclusive": inclusive,
        "percentile_method": percentile_method,
    }
    return DetectionResult(
        range=t,
        observed=squeeze(current, one_d),
        upperbound=squeeze(threshold, one_d),
        alarm=squeeze(alarm, one_d),
        expected=squeeze(expected, one_d),
        method="MPM",
        params=params,
    )
