"""Time-varying reproduction number R_t from incidence and the serial interval.

Reference:
    Cori A, Ferguson NM, Fraser C, Cauchemez S. A new framework and software to estimate
    time-varying reproduction numbers during epidemics. Am J Epidemiol 2013;178:1505-1512.

The reference implementation is R ``EpiEstim::estimate_R`` (version 2.2.4) with
``method = "parametric_si"`` (or ``"non_parametric_si"`` when ``si_distr`` is given), whose
results this module reproduces. With incidence I_t (all cases on day 0 imported), the
discretised serial interval w_s and the total infectiousness

    Lambda_t = sum_{s=0..t} w_s * I_{t-s}      (local plus imported cases),

R over the window [t_start, t_end] has, under a Gamma(a, b) prior (shape a = (mean /
sd)^2, scale b = sd^2 / mean; mean 5, sd 5 by default), the Gamma posterior

    shape a + sum_{t in window} I_t^local,   scale 1 / (1/b + sum_{t in window} Lambda_t).

Windows ending no later than the mean of the serial interval give NaN, as in the reference.
The serial interval is Cori's discretisation of a gamma distribution shifted by one day
(``discr_si``).

Deliberate differences from ``estimate_R``: windows are 0-based inclusive day indices
(R's t_start = 2 is ``t_start = 1`` here); several series are estimated at once (columns of
``incid``); the warning about the posterior coefficient of variation is not raised; the
uncertain-SI and SI-from-data methods (Monte Carlo / MCMC) are not provided.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.linalg import toeplitz
from scipy.special import gammainc, gammaincinv

from yifang.detect.algorithms.result import as_counts, squeeze

__all__ = ["ReproductionEstimate", "discr_si", "estimate_r"]

_QUANTILES = {
    "quantile_0_025": 0.025,
    "quantile_0_05": 0.05,
    "quantile_0_25": 0.25,
    "median": 0.5,
    "quantile_0_75": 0.75,
    "quantile_0_95": 0.95,
    "quantile_0_975": 0.975,
}


@dataclass(frozen=True)
class ReproductionEstimate:
    """Posterior of R per window, as EpiEstim's ``R`` table.

    ``t_start``/``t_end`` have shape (W,) (0-based inclusive days); every other table column
    has shape (W,) for one series or (W, S). NaN where the window ends too early.
    """

    t_start: NDArray[np.int64]
    t_end: NDArray[np.int64]
    mean: NDArray[np.float64]
    std: NDArray[np.float64]
    quantile_0_025: NDArray[np.float64]
    quantile_0_05: NDArray[np.float64]
    quantile_0_25: NDArray[np.float64]
    median: NDArray[np.float64]
    quantile_0_75: NDArray[np.float64]
    quantile_0_95: NDArray[np.float64]
    quantile_0_975: NDArray[np.float64]
    si_distr: NDArray[np.float64]
    si_mean: float
    si_std: float
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, NDArray[Any]]:
        """The table columns by name (t_start, t_end, mean, std, quantiles, median)."""
        names = ["t_start", "t_end", "mean", "std", *_QUANTILES]
        return {name: getattr(self, name) for name in names}


def _gamma_cdf(x: NDArray[np.float64], a: float, b: float) -> NDArray[np.float64]:
    """CDF of the gamma distribution with shape a and scale b (0 for x <= 0)."""
    return np.where(x > 0, gammainc(a, np.maximum(x, 0.0) / b), 0.0)


def discr_si(k: ArrayLike, mu: float, sigma: float) -> NDArray[np.float64]:
    """Cori's discretised serial interval at days ``k`` for a gamma distribution of mean
    ``mu`` and standard deviation ``sigma`` (days) shifted by one day (EpiEstim ``discr_si``).
    """
    if sigma < 0:
        raise ValueError("std_si (sigma) must be >= 0")
    if mu <= 1:
        raise ValueError("mean_si (mu) must be > 1 day")
    kk = np.asarray(k, dtype=np.float64)
    if np.any(kk < 0):
        raise ValueError("all serial-interval days k must be >= 0")
    a = ((mu - 1) / sigma) ** 2
    b = sigma**2 / (mu - 1)
    res = (
        kk * _gamma_cdf(kk, a, b)
        + (kk - 2) * _gamma_cdf(kk - 2, a, b)
        - 2 * (kk - 1) * _gamma_cdf(kk - 1, a, b)
    )
    res = res + a * b * (
        2 * _gamma_cdf(kk - 1, a + 1, b) - _gamma_cdf(kk - 2, a + 1, b) - _gamma_cdf(kk, a + 1, b)
    )
    return np.maximum(0.0, res)


def _check_si_distr(si_distr: NDArray[np.float64]) -> None:
    if si_distr.ndim != 1 or si_distr.size == 0:
        raise ValueError("si_distr must be a non-empty 1-D array")
    if si_distr[0] != 0:
        raise ValueError("si_distr[0] must be 0 (no transmission on the day of onset)")
    if np.any(si_distr < 0) or np.any(np.isnan(si_distr)):
        raise ValueError("si_distr must be non-negative")
    if abs(si_distr.sum() - 1) > 0.01:
        raise ValueError("si_distr must sum to 1")


def _windows(
    t_start: Sequence[int] | NDArray[np.integer] | None,
    t_end: Sequence[int] | NDArray[np.integer] | None,
    T: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Validated 0-based inclusive windows; default weekly windows sliding by one day."""
    if t_start is None or t_end is None:
        if T < 8:
            raise ValueError(f"the default weekly windows need at least 8 days, got T={T}")
        return np.arange(1, T - 6, dtype=np.int64), np.arange(7, T, dtype=np.int64)
    raw_s = np.asarray(t_start, dtype=np.float64).ravel()
    raw_e = np.asarray(t_end, dtype=np.float64).ravel()
    if raw_s.size != raw_e.size:
        raise ValueError("t_start and t_end must have the same length")
    for name, raw in (("t_start", raw_s), ("t_end", raw_e)):
        if np.any(raw % 1 != 0) or np.any(raw < 1) or np.any(raw > T - 1):
            raise ValueError(f"{name} must hold whole day indices between 1 and {T - 1}")
    s, e = raw_s.astype(np.int64), raw_e.astype(np.int64)
    if np.any(s > e):
        raise ValueError("t_start[i] must be <= t_end[i] for every window")
    return s, e


def estimate_r(
    incid: ArrayLike,
    *,
    mean_si: float | None = None,
    std_si: float | None = None,
    si_distr: ArrayLike | None = None,
    t_start: Sequence[int] | NDArray[np.integer] | None = None,
    t_end: Sequence[int] | NDArray[np.integer] | None = None,
    mean_prior: float = 5.0,
    std_prior: float = 5.0,
    imported: ArrayLike | None = None,
) -> ReproductionEstimate:
    """Instantaneous reproduction number per window, as R ``EpiEstim::estimate_R``.

    Args:
        incid: daily incidence (cases per day) of shape (T,) or (T, S); missing days count
            as 0. Without ``imported`` all cases of day 0 are taken as imported and the rest
            as local; with it, ``incid`` holds the local cases.
        mean_si, std_si: mean and standard deviation of the serial interval (days), for the
            parametric (shifted gamma) serial interval.
        si_distr: a discrete serial-interval distribution (w_0 = 0, summing to 1) instead of
            ``mean_si``/``std_si`` (EpiEstim's ``non_parametric_si``).
        t_start, t_end: 0-based inclusive windows (days >= 1); default weekly windows
            sliding by a day: (1, 7), (2, 8), ..., (T-7, T-1).
        mean_prior, std_prior: the Gamma prior on R.
        imported: imported cases per day, same shape as ``incid``.

    Returns:
        :class:`ReproductionEstimate`.
    """
    if mean_prior <= 0 or std_prior <= 0:
        raise ValueError("mean_prior and std_prior must be > 0")
    x, one_d = as_counts(incid)
    T, S = x.shape
    x = np.where(np.isnan(x), 0.0, x)
    if imported is None:
        local = x.copy()
        imp = np.zeros_like(x)
        imp[0] = x[0]
        local[0] = 0.0
    else:
        imp_arr, _ = as_counts(imported)
        if imp_arr.shape != x.shape:
            raise ValueError(f"imported must have the shape of incid {x.shape}")
        imp = np.where(np.isnan(imp_arr), 0.0, imp_arr)
        local = x.copy()
        imp[0] += local[0]  # cases on the first day are all imported, as in EpiEstim
        local[0] = 0.0
    if np.any(local < 0) or np.any(imp < 0):
        raise ValueError("incidence must be non-negative counts")

    if si_distr is not None:
        w = np.asarray(si_distr, dtype=np.float64).ravel()
        _check_si_distr(w)
    else:
        if mean_si is None or std_si is None:
            raise ValueError("give mean_si and std_si (parametric SI) or si_distr")
        if mean_si <= 1:
            raise ValueError("mean_si must be > 1 day")
        if std_si <= 0:
            raise ValueError("std_si must be > 0")
        w = discr_si(np.arange(T), mean_si, std_si)
    if w.size < T + 1:
        w = np.concatenate([w, np.zeros(T + 1 - w.size)])
    days = np.arange(w.size)
    si_mean = float(np.sum(w * days))
    si_std = float(np.sqrt(np.sum(w * days**2) - si_mean**2))

    s, e = _windows(t_start, t_end, T)

    # Lambda_t = sum_s w_s I_{t-s}: a lower-triangular Toeplitz product over all series.
    L = toeplitz(w[:T], np.zeros(T))
    Lambda = L @ (local + imp)
    Lambda[0] = 0.0  # undefined on day 0; windows start at day 1

    zero = np.zeros((1, S))
    cum_local = np.concatenate([zero, np.cumsum(local, axis=0)])
    cum_lambda = np.concatenate([zero, np.cumsum(Lambda, axis=0)])
    a_prior = (mean_prior / std_prior) ** 2
    b_prior = std_prior**2 / mean_prior
    a_post = a_prior + (cum_local[e + 1] - cum_local[s])
    b_post = 1.0 / (1.0 / b_prior + (cum_lambda[e + 1] - cum_lambda[s]))
    too_early = (e + 1) <= si_mean
    a_post[too_early] = np.nan
    b_post[too_early] = np.nan

    table: dict[str, NDArray[np.float64]] = {
        "mean": a_post * b_post,
        "std": np.sqrt(a_post) * b_post,
    }
    # Posterior shapes repeat (prior shape plus whole case counts), so invert the gamma CDF
    # once per distinct shape: the quantile with scale b is b times the unit-scale quantile.
    finite = ~np.isnan(a_post)
    shapes, where = np.unique(a_post[finite], return_inverse=True)
    for name, p in _QUANTILES.items():
        unit = np.full(a_post.shape, np.nan)
        unit[finite] = gammaincinv(shapes, p)[where]
        table[name] = unit * b_post
    return ReproductionEstimate(
        t_start=s,
        t_end=e,
        si_distr=w,
        si_mean=si_mean,
        si_std=si_std,
        extra={
            "a_posterior": squeeze(a_post, one_d),
            "b_posterior": squeeze(b_post, one_d),
            "lambda": squeeze(Lambda, one_d),
        },
        **{name: squeeze(arr, one_d) for name, arr in table.items()},
    )
