"""Fixed-threshold rules (固定阈值法): a signal as soon as the count reaches N.

Reference:
    Yang W, Li Z, Lan Y, et al. A nationwide web-based automated system for early outbreak
    detection and rapid response in China. Western Pac Surveill Response J 2011;2(1):10-15.
    doi:10.5365/wpsar.2010.1.1.009

CIDARS raises a signal in real time for every single case of the diseases in
:data:`CIDARS_SINGLE_CASE_DISEASES` (the 2008 launch list: plague, cholera, SARS, polio,
human highly pathogenic avian influenza, pulmonary anthrax, pneumonia of unknown cause); a
rule may also require N cases within a window of days (e.g. 3 cases of a disease in a
township within 7 days), configured per disease and region. For day t:

    X_t = y_{t-window+1} + ... + y_t,   signal when X_t >= threshold.

Missing days count as no cases (a missing day cannot take cases away), so a window with some
counts present still signals; a window with none present gives NaN and no signal. There is
no reference implementation to follow; the rule is the definition.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from yifang.detect.algorithms.result import DetectionResult, as_counts, as_range, squeeze

__all__ = ["CIDARS_SINGLE_CASE_DISEASES", "fixed_threshold"]

#: Diseases with a single-case real-time signal at the 2008 national launch of CIDARS (China
#: CDC notice); later lists vary by province, so the engine's configuration decides.
CIDARS_SINGLE_CASE_DISEASES: tuple[str, ...] = (
    "鼠疫",
    "霍乱",
    "传染性非典型肺炎",
    "脊髓灰质炎",
    "人感染高致病性禽流感",
    "肺炭疽",
    "不明原因肺炎",
)


def fixed_threshold(
    observed: ArrayLike,
    *,
    threshold: float | ArrayLike = 1.0,
    window: int = 1,
    range: Sequence[int] | NDArray[np.integer] | None = None,
) -> DetectionResult:
    """Signal where the cases in the last ``window`` days reach ``threshold``.

    Args:
        observed: daily counts of shape (T,) or (T, S).
        threshold: cases that trigger a signal (1 = every case); a number or one per series
            (shape (S,)), so each disease x region can have its own rule.
        window: days summed, ending on the evaluated day (1 = that day alone).
        range: 0-based days to evaluate; default every day from ``window - 1``.

    Returns:
        :class:`DetectionResult` with ``observed`` = cases in the window, ``upperbound`` =
        ``threshold`` and ``alarm`` = observed >= threshold.
    """
    x, one_d = as_counts(observed)
    T, S = x.shape
    if int(window) != window or window < 1:
        raise ValueError("window must be a positive whole number of days")
    window = int(window)
    try:
        n = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (S,))
    except ValueError as exc:
        raise ValueError(f"threshold must be a number or one value per series ({S})") from exc
    if np.any(np.isnan(n)) or np.any(n <= 0):
        raise ValueError("threshold must be positive")
    t = as_range(range, T, window - 1)

    present = ~np.isnan(x)
    zero = np.zeros((1, S))
    c = np.concatenate([zero, np.cumsum(np.where(present, x, 0.0), axis=0)])
    k = np.concatenate([zero, np.cumsum(present, axis=0)])
    lo = np.maximum(t - window + 1, 0)
    X = c[t + 1] - c[lo]
    X[(k[t + 1] - k[lo]) == 0] = np.nan
    X[t < window - 1] = np.nan
    upperbound = np.broadcast_to(n, X.shape).copy()
    alarm = upperbound <= X
    return DetectionResult(
        range=t,
        observed=squeeze(X, one_d),
        upperbound=squeeze(upperbound, one_d),
        alarm=squeeze(alarm, one_d),
        method="fixed threshold",
        params={"threshold": n.tolist() if S > 1 else float(n[0]), "window": window},
    )
