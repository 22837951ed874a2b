"""ESSENCE's daily detectors: EWMA, adaptive multiple regression, and the switch between them.

References:
    Burkom HS, Elbert Y, Magruder SF, Najmi AH, Peter W, Thompson MW. Developments in the
    roles, features, and evaluation of alerting algorithms for disease outbreak monitoring.
    Johns Hopkins APL Technical Digest 2008;27(4):313-331.
    Burkom HS, Murphy SP, Shmueli G. Automated time series forecasting for biosurveillance.
    Stat Med 2007;26:4202-4218.
    Lucas JM, Saccucci MS. Exponentially weighted moving average control schemes: properties
    and enhancements. Technometrics 1990;32:1-12.

The reference implementation is CDC's R package Rnssp (``alert_ewma``,
``alert_regression``, ``alert_switch``; github.com/CDCgov/Rnssp at commit 7f76909), whose
results this module reproduces. Days are consecutive calendar days; for day t (0-based):

* Baseline: the ``L = min(t - g, B)`` days ending ``g + 1`` days before t (a guard band of
  ``g`` days), at least 7 days for the EWMA and 11 for the regression.
* EWMA: two smoothed series ``Z_j(t) = w_j y_t + (1 - w_j) Z_j(t-1)`` (w1 = 0.4 for gradual,
  w2 = 0.9 for sudden rises) tested against the baseline mean with a standard error
  ``max(sigma_min_j, S * c_j + k_j)`` (``S`` the baseline standard deviation, ``c_j`` the
  EWMA variance correction for the guard band, ``k_j`` and ``sigma_min_j`` ESSENCE's
  small-count constants); a smoothed value beyond the 99% limit is pulled back to it so that
  one spike does not mask the next days. The smaller of the two one-sided Student-t
  p-values (L - 1 degrees of freedom) is reported.
* Regression: least squares on the baseline with a linear trend and six day-of-week
  indicators (Sunday the reference), forecast to day t (never below 0); test statistic
  ``(y_t - forecast) / sigma`` with ``sigma`` the bounded prediction standard error and
  L - 8 degrees of freedom. A red or yellow alert is withdrawn (made blue) when the count is
  below its 7-day moving average and, on Saturdays and Sundays, also below the mean of the
  last seven same weekdays.
* Switch: the regression where its adjusted R^2 >= 0.60, otherwise the EWMA.

Alert colours: red p < 0.01, yellow 0.01 <= p < 0.05, blue otherwise, grey where no test.
``alarm`` is red. ``upperbound`` is the count on day t at which the p-value would reach
0.01 (for the EWMA, the smaller over the two smoothers).

Deliberate differences from Rnssp:

* Several series at once (columns of ``observed``); the weekday of ``observed[0]`` is a
  parameter (``start_weekday``, ISO 1 = Monday .. 7 = Sunday) instead of a date column.
* Rnssp rescales a percentage series (all values < 1) by its median positive value before
  the EWMA and reports the baseline in those units; ``expected`` and ``upperbound`` here are
  in the units of ``observed`` (the statistics and p-values are the same). An all-zero series
  is not rescaled (Rnssp divides by NA and stops).
* A missing count gives no test that day (grey) and, while it is in a baseline, grey days;
  the EWMA carries its previous value over the missing day. Rnssp stops with an error.
* Rnssp's grouped data frames mark withdrawn regression alerts grey, ungrouped ones blue;
  here they are blue.
* The regression needs ``B >= 14`` (B a multiple of 7): Rnssp fails for B = 7.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import stdtr, stdtrit

from yifang.detect.algorithms.result import DetectionResult, as_counts, squeeze

__all__ = ["adaptive_regression", "essence_switch", "ewma"]

_EWMA_MIN_BASELINE = 7
_REG_MIN_BASELINE = 11
_R2_SWITCH = 0.60


@cache
def _t_quantile(p: float, df: int) -> float:
    """Quantile of Student's t with df degrees of freedom."""
    return float(stdtrit(df, p))


def _round5(x: float) -> float:
    return float(np.round(x, 5))


def _check(b: int, g: int, T: int, multiple_of_7: bool) -> None:
    if int(b) != b or b < 7:
        raise ValueError("baseline length b must be a whole number of at least 7 days")
    if multiple_of_7 and b % 7 != 0:
        raise ValueError("baseline length b must be a multiple of 7 days")
    if int(g) != g or g < 0:
        raise ValueError("guard band g must be a non-negative whole number of days")
    if b + g + 1 > T:
        raise ValueError(f"not enough historical data: need at least b + g + 1 = {b + g + 1} days")


def _colours(p: NDArray[np.float64]) -> NDArray[np.str_]:
    """ESSENCE's alert colours from p-values (grey where there is no test)."""
    out = np.full(p.shape, "grey", dtype="<U6")
    out[p >= 0.05] = "blue"
    out[(p >= 0.01) & (p < 0.05)] = "yellow"
    out[p < 0.01] = "red"
    return out


def _p_value(stat: NDArray[np.float64], df: int) -> NDArray[np.float64]:
    """One-sided p-value computed as Rnssp does (1 - pt(stat, df))."""
    return 1.0 - stdtr(df, stat)


def _weekday_scale(y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Rnssp's rescaling of percentage series: divide by the median positive value."""
    scale = np.ones(y.shape[1])
    for j in np.flatnonzero(np.nanmax(np.where(np.isnan(y), -np.inf, y), axis=0) < 1):
        col = y[:, j]
        positive = col[col > 0]
        if positive.size:
            scale[j] = float(np.median(positive))
    return scale


def _ewma_core(
    y: NDArray[np.float64], b: int, g: int, w1: float, w2: float
) -> dict[str, NDArray[Any]]:
    """The EWMA loop on (already rescaled) counts; arrays of shape (T, S)."""
    T, S = y.shape
    expected = np.full((T, S), np.nan)
    stat = np.full((T, S), np.nan)
    p_val = np.full((T, S), np.nan)
    bound = np.full((T, S), np.nan)
    weights = (w1, w2)
    Z = [np.full(S, np.nan), np.full(S, np.nan)]
    first = _EWMA_MIN_BASELINE + g
    for i in range(min(first, T)):
        for j, w in enumerate(weights):
            Z[j] = y[0].copy() if i == 0 else _ewma_step(Z[j], y[i], w)
    for i in range(first, T):
        L = min(i - g, b)
        base = y[i - g - L : i - g]
        mean = base.mean(axis=0)
        sd = base.std(axis=0, ddof=1)
        n_df = L - 1
        ucl_alert = _round5(_t_quantile(0.99, n_df))
        ucl_warning = _round5(_t_quantile(0.95, n_df))
        q99 = float(_t_quantile(0.99, n_df))
        best_p = np.full(S, np.nan)
        best_stat = np.full(S, np.nan)
        best_bound = np.full(S, np.inf)
        for j, w in enumerate(weights):
            correction = np.sqrt(
                w / (2 - w) + 1 / L - 2 * (1 - w) ** (g + 1) * ((1 - (1 - w) ** L) / L)
            )
            min_sigma = (w / ucl_warning) * (0.01 + 0.05 * (1 - w) ** 2)
            constant = (0.1289 - (0.2414 - 0.1826 * (1 - w) ** 4) * np.log(10 * 0.05)) * (
                w / ucl_warning
            )
            sigma = np.fmax(sd * correction + constant, min_sigma)
            sigma[np.isnan(sd)] = np.nan
            prev = Z[j]
            best_bound = np.fmin(best_bound, (mean + q99 * sigma - (1 - w) * prev) / w)
            z_new = _ewma_step(prev, y[i], w)
            s = np.where(np.isnan(y[i]), np.nan, (z_new - mean) / sigma)
            clip = np.abs(s) > ucl_alert
            z_new = np.where(clip, mean + np.sign(s) * ucl_alert * sigma, z_new)
            Z[j] = z_new
            p = _p_value(s, n_df)
            if j == 0:
                best_p, best_stat = p, s
            else:
                take2 = ~(best_p < p)  # Rnssp keeps the second smoother on ties
                best_p = np.where(take2, p, best_p)
                best_stat = np.where(take2, s, best_stat)
        expected[i] = mean
        stat[i] = best_stat
        p_val[i] = best_p
        bound[i] = np.where(np.isnan(best_p), np.nan, best_bound)
    return {"expected": expected, "test_statistic": stat, "p_value": p_val, "bound": bound}


def _ewma_step(prev: NDArray[np.float64], y: NDArray[np.float64], w: float) -> NDArray[np.float64]:
    """One EWMA update; a missing count carries the previous value over."""
    return np.where(np.isnan(y), prev, w * y + (1 - w) * prev)


def ewma(
    observed: ArrayLike,
    *,
    b: int = 28,
    g: int = 2,
    w1: float = 0.4,
    w2: float = 0.9,
) -> DetectionResult:
    """ESSENCE's EWMA detector on daily counts or percentages, as Rnssp ``alert_ewma``.

    Args:
        observed: daily values of shape (T,) or (T, S), T >= b + g + 1.
        b: maximum baseline length (days, >= 7).
        g: guard band between baseline and test day (days).
        w1: smoothing weight for gradual rises.
        w2: smoothing weight for sudden rises.

    Returns:
        :class:`DetectionResult` over every day (``range`` = 0 .. T-1, grey/NaN before day
        7 + g) with ``expected`` (baseline mean), ``upperbound``, ``alarm`` (red) and
        ``extra``: ``p_value``, ``test_statistic``, ``alert`` (colours), ``scale``.
    """
    x, one_d = as_counts(observed)
    T = x.shape[0]
    _check(b, g, T, multiple_of_7=False)
    scale = _weekday_scale(x)
    out = _ewma_core(x / scale, int(b), int(g), w1, w2)
    alert = _colours(out["p_value"])
    return DetectionResult(
        range=np.arange(T, dtype=np.int64),
        observed=squeeze(x, one_d),
        upperbound=squeeze(out["bound"] * scale, one_d),
        alarm=squeeze(alert == "red", one_d),
        expected=squeeze(out["expected"] * scale, one_d),
        extra={
            "p_value": squeeze(out["p_value"], one_d),
            "test_statistic": squeeze(out["test_statistic"], one_d),
            "alert": squeeze(alert, one_d),
            "scale": scale[0] if one_d else scale,
        },
        method="ESSENCE EWMA",
        params={"b": b, "g": g, "w1": w1, "w2": w2},
    )


@cache
def _regression_design(L: int, first_weekday: int) -> tuple[NDArray[np.float64], NDArray[Any]]:
    """Design matrix (intercept, time 1..L, Mon..Sat indicators) of a baseline whose first
    day has ISO weekday ``first_weekday``, and its pseudo-inverse."""
    weekday = (first_weekday - 1 + np.arange(L)) % 7 + 1
    X = np.zeros((L, 8))
    X[:, 0] = 1.0
    X[:, 1] = np.arange(1, L + 1)
    for d in range(1, 7):
        X[:, 1 + d] = weekday == d
    return X, np.linalg.pinv(X)


def _regression_core(
    y: NDArray[np.float64], b: int, g: int, start_weekday: int
) -> dict[str, NDArray[np.float64]]:
    """The adaptive regression loop; arrays of shape (T, S)."""
    T, S = y.shape
    names = ("expected", "test_statistic", "p_value", "sigma", "adjusted_r_squared", "bound")
    out = {name: np.full((T, S), np.nan) for name in names}
    min_sigma = {n_df: 0.01 / _round5(_t_quantile(0.95, n_df)) for n_df in range(1, b - 2)}
    for i in range(_REG_MIN_BASELINE + g, T):
        L = min(i - g, b)
        first = i - g - L
        X, P = _regression_design(L, (start_weekday - 1 + first) % 7 + 1)
        base = y[first : i - g]
        beta = P @ base
        fitted = X @ beta
        res = base - fitted
        n_df = L - 8
        rss = np.sum(res**2, axis=0)
        mss = np.sum((fitted - fitted.mean(axis=0)) ** 2, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            r2 = mss / (rss + mss)
            r2_adj = 1 - (1 - r2) * ((L - 1) / n_df)
        r2_adj = np.where(np.isnan(r2_adj) & ~np.isnan(rss), 0.0, r2_adj)
        se = np.sqrt(rss / n_df) * np.sqrt(((L + 7) * (L - 4)) / (L * (L - 7)))
        sigma = np.where(np.isnan(se), np.nan, np.fmax(se, min_sigma[n_df]))
        test_weekday = (start_weekday - 1 + i) % 7 + 1
        forecast = beta[0] + (L + g + 1) * beta[1]
        if test_weekday < 7:
            forecast = forecast + beta[1 + test_weekday]
        expected = np.where(np.isnan(forecast), np.nan, np.fmax(forecast, 0.0))
        stat = (y[i] - expected) / sigma
        out["expected"][i] = expected
        out["test_statistic"][i] = stat
        out["p_value"][i] = _p_value(stat, n_df)
        out["sigma"][i] = sigma
        out["adjusted_r_squared"][i] = r2_adj
        out["bound"][i] = expected + float(_t_quantile(0.99, n_df)) * sigma
    return out


def _rolling_mean(y: NDArray[np.float64], n: int, step: int) -> NDArray[np.float64]:
    """Mean of y[t], y[t-step], ..., y[t-(n-1)step]; NaN where incomplete or missing."""
    out = np.full(y.shape, np.nan)
    span = (n - 1) * step
    if y.shape[0] > span:
        acc = np.zeros((y.shape[0] - span, y.shape[1]))
        for k in range(n):
            acc += y[span - k * step : y.shape[0] - k * step]
        out[span:] = acc / n
    return out


def _withdraw_alerts(
    y: NDArray[np.float64], alert: NDArray[np.str_], start_weekday: int
) -> NDArray[np.str_]:
    """Rnssp's withdrawal of regression alerts on counts below their moving averages."""
    T = y.shape[0]
    weekday = (start_weekday - 1 + np.arange(T)) % 7 + 1
    weekend = (weekday >= 6)[:, None]
    below_ma7 = y < _rolling_mean(y, 7, 1)  # False where the average is missing
    remove = (alert != "blue") & below_ma7
    below_weekday_ma = y < _rolling_mean(y, 7, 7)
    remove_weekend = remove & below_weekday_ma
    withdrawn = remove & (~weekend | remove_weekend)
    return np.where(withdrawn, "blue", alert)


def adaptive_regression(
    observed: ArrayLike,
    *,
    b: int = 28,
    g: int = 2,
    start_weekday: int = 1,
) -> DetectionResult:
    """ESSENCE's adaptive multiple regression, as Rnssp ``alert_regression``.

    Args:
        observed: daily counts of shape (T,) or (T, S), T >= b + g + 1.
        b: maximum baseline length (days; a multiple of 7, at least 14).
        g: guard band (days).
        start_weekday: ISO weekday of ``observed[0]`` (1 = Monday .. 7 = Sunday).

    Returns:
        :class:`DetectionResult` over every day with ``expected`` (forecast),
        ``upperbound``, ``alarm`` (red after withdrawal) and ``extra``: ``p_value``,
        ``test_statistic``, ``sigma``, ``adjusted_r_squared``, ``alert``.
    """
    x, one_d = as_counts(observed)
    T = x.shape[0]
    _check(b, g, T, multiple_of_7=True)
    if b < 14:
        raise ValueError("the regression needs a baseline b of at least 14 days")
    if start_weekday not in range(1, 8):
        raise ValueError("start_weekday must be an ISO weekday 1 (Monday) .. 7 (Sunday)")
    out = _regression_core(x, int(b), int(g), start_weekday)
    alert = _withdraw_alerts(x, _colours(out["p_value"]), start_weekday)
    return DetectionResult(
        range=np.arange(T, dtype=np.int64),
        observed=squeeze(x, one_d),
        upperbound=squeeze(out["bound"], one_d),
        alarm=squeeze(alert == "red", one_d),
        expected=squeeze(out["expected"], one_d),
        extra={
            "p_value": squeeze(out["p_value"], one_d),
            "test_statistic": squeeze(out["test_statistic"], one_d),
            "sigma": squeeze(out["sigma"], one_d),
            "adjusted_r_squared": squeeze(out["adjusted_r_squared"], one_d),
            "alert": squeeze(alert, one_d),
        },
        method="ESSENCE adaptive regression",
        params={"b": b, "g": g, "start_weekday": start_weekday},
    )


def essence_switch(
    observed: ArrayLike,
    *,
    b: int = 28,
    g: int = 2,
    w1: float = 0.4,
    w2: float = 0.9,
    start_weekday: int = 1,
) -> DetectionResult:
    """ESSENCE's regression/EWMA switch, as Rnssp ``alert_switch``: per day the regression
    where its adjusted R^2 is at least 0.60, otherwise the EWMA.

    Arguments as :func:`ewma` and :func:`adaptive_regression`. ``extra["detector"]`` names
    the detector used per day (``"regression"``, ``"ewma"`` or ``""`` where neither tests).
    """
    reg = adaptive_regression(observed, b=b, g=g, start_weekday=start_weekday)
    ew = ewma(observed, b=b, g=g, w1=w1, w2=w2)
    use_reg = reg.extra["adjusted_r_squared"] >= _R2_SWITCH  # False where NaN

    def pick(a: NDArray[Any], c: NDArray[Any]) -> NDArray[Any]:
        return np.where(use_reg, a, c)

    assert reg.expected is not None and ew.expected is not None
    stat = pick(reg.extra["test_statistic"], ew.extra["test_statistic"])
    detector = np.where(use_reg, "regression", "ewma")
    detector = np.where(np.isnan(stat), "", detector)
    return DetectionResult(
        range=reg.range,
        observed=reg.observed,
        upperbound=pick(reg.upperbound, ew.upperbound),
        alarm=pick(reg.alarm, ew.alarm),
        expected=pick(reg.expected, ew.expected),
        extra={
            "p_value": pick(reg.extra["p_value"], ew.extra["p_value"]),
            "test_statistic": stat,
            "adjusted_r_squared": reg.extra["adjusted_r_squared"],
            "alert": pick(reg.extra["alert"], ew.extra["alert"]),
            "detector": detector,
        },
        method="ESSENCE regression/EWMA switch",
        params={"b": b, "g": g, "w1": w1, "w2": w2, "start_weekday": start_weekday},
    )
