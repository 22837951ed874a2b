"""The Farrington outbreak-detection algorithm and its flexible (Noufaily) variant.

For each time point ``t0`` to evaluate, a quasi-Poisson log-linear GLM is fitted to the
counts of the same season in the previous ``b`` years (the ``2w+1`` weeks around ``t0``
one, two, … years back), optionally with a linear time trend, after down-weighting past
outbreaks by their Anscombe residuals. The upper limit of the prediction interval for the
count at ``t0`` is the alarm threshold.

References
----------
* Farrington CP, Andrews NJ, Beale AD, Catchpole MA (1996). A statistical algorithm for the
  early detection of outbreaks of infectious disease. J R Stat Soc A 159(3):547–563.
* Noufaily A, Enki DG, Farrington P, Garthwaite P, Andrews N, Charlett A (2013). An improved
  algorithm for outbreak detection in multiple surveillance systems. Stat Med
  32(7):1206–1222.
* Salmon M, Schumacher D, Höhle M (2016). Monitoring count time series in R: aberration
  detection in public health surveillance. J Stat Softw 70(10).

Reference implementation: R package ``surveillance`` 1.20.3 (Debian ``r-cran-surveillance``),
functions ``algo.farrington`` (here :func:`farrington`) and ``farringtonFlexible`` (here
:func:`farrington_flexible`). Results match it to floating-point rounding (tests compare with
fixtures written by R, ``tests/detect/fixtures/make_farrington.R``). Parameters keep R's
names in snake_case and R's defaults; time indices are 0-based.

Notation (as in the papers and R): ``b`` years back, half-window ``w``, ``mu0`` the predicted
mean at ``t0``, ``phi`` the dispersion (at least 1), ``tau = phi + var(mu0_hat)/mu0``, the
power transformation ``h(y) = y^e`` with ``e`` in {1, 1/2, 2/3}, ``alpha`` the error level.

R rules reproduced on purpose, including R's quirks (so results agree):

* ``farrington`` (``algo.farrington``): two-sided ``qnorm(1 - alpha/2)`` limit; default range
  starts at ``freq*b - w`` (1-based), so the first baselines are incomplete (missing weeks are
  dropped); trend kept only if significant at 5 %, ``b >= 3`` and the trend prediction does
  not exceed the largest baseline count; with fewer than ``limit54[0]`` cases in the last
  ``limit54[1]`` weeks the upper bound is 0 (not NA) and there is no alarm; the prediction
  s.e. uses ``phi``.
* ``farrington_flexible`` (``farringtonFlexible``): one-sided ``qnorm(1 - alpha)``; default
  range starts at ``freq*b + w`` (0-based); ``no_periods`` seasonal blocks (Noufaily's
  factor), the latest ``past_weeks_not_included`` weeks (default ``w``) left out of the
  baseline; the prediction s.e. and the trend test use ``summary.glm``'s dispersion, not
  ``phi`` (R passes ``dispersion`` inside ``newdata``), and after reweighting that
  dispersion is ``sum(omega * r^2) / df`` with working residuals ``r = (y - mu)/mu``
  (R overwrites ``model$weights`` with the prior weights ``omega``), which differs from
  ``phi``'s Pearson statistic; with ``nbPlugin``/``muan`` the exceedance score
  is computed against the linear predictor (R's ``pred$fit`` on the link scale) and
  ``mu0Vector`` for ``delta`` is ``exp`` of a quantile on the response scale; with dates,
  the prediction time is measured from the first *non-missing* baseline date while the
  baseline times are measured from the first baseline date (they differ only when the first
  baseline count is missing); an upper bound is NaN where fewer than ``limit54[0]`` cases
  were seen or the fit failed; where the GLM does not converge (with and without trend)
  ``expected`` is 0, the value R leaves there, and everything else NaN.
* Both: a missing count in the last ``limit54[1]`` points gives NaN (R's NA) and no alarm;
  the GLM follows ``glm.fit`` iteration by iteration (start ``log(y + 0.1)``, at most 25
  iterations, relative deviance change below 1e-8), so non-convergence happens where R's
  does (e.g. long all-zero baselines).

Deliberate differences from R (none changes a result that R computes):

* Where R stops with an error for one time point (all baseline counts missing, a seasonal
  block with no counts at the predicted block, a non-convergent refit after dropping the
  trend, ``NaN`` weights, ``algo.farrington.fitGLM.fast`` meeting a missing baseline count)
  we return NaN (and no alarm) for that point and keep the others.
* Negative time indices inside R's window arithmetic (only reachable with ``range`` or
  ``limit54`` windows that start before the series) raise :class:`ValueError` instead of R's
  subscript errors; the ``limit54`` window is clipped at the start of the series.
* R's IRLS step halving (only reached when ``exp(eta)`` overflows) is not implemented; such
  fits count as not converged.
* ``farrington`` drops missing baseline counts (R's ``algo.farrington`` stops on them).
* Where the exact time slope is 0 (sparse counts placed symmetrically in time) its computed
  value is rounding noise, in R and here; with ``p_threshold_trend = 1`` R keeps such a
  trend unless its t value is below ~1e-16, so the ``trend`` flag may then differ from R's
  (thresholds do not: the slope is 0 either way).

Original vs improved settings: :data:`ORIGINAL_FARRINGTON` and :data:`NOUFAILY_2013` are
keyword sets for :func:`farrington_flexible` (as in Salmon et al. 2016, §3.2)::

    farrington_flexible(counts, **NOUFAILY_2013)
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats

from yifang.detect.algorithms._glm import (
    DBL_EPS,
    GLMFits,
    dispersion,
    fit_quasipoisson,
    hat_values,
    predict_link,
    trend_pvalue,
)
from yifang.detect.algorithms.result import DetectionResult, as_counts, as_range, squeeze

__all__ = ["NOUFAILY_2013", "ORIGINAL_FARRINGTON", "farrington", "farrington_flexible"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]

ORIGINAL_FARRINGTON: dict[str, Any] = {
    "no_periods": 1,
    "weights_threshold": 1.0,
    "past_weeks_not_included": None,
    "p_threshold_trend": 0.05,
    "trend": True,
    "threshold_method": "delta",
    "power_trans": "2/3",
}
"""Farrington et al. (1996) in ``farrington_flexible``: reweighting at Anscombe residual 1."""

NOUFAILY_2013: dict[str, Any] = {
    "no_periods": 10,
    "weights_threshold": 2.58,
    "past_weeks_not_included": 26,
    "p_threshold_trend": 1.0,
    "trend": True,
    "threshold_method": "nbPlugin",
}
"""Noufaily et al. (2013): 10 seasonal blocks, last 26 weeks left out, trend always kept,
residuals above 2.58 down-weighted, negative-binomial quantile threshold."""

_EXPONENT = {"none": 1.0, "1/2": 0.5, "2/3": 2.0 / 3.0}
_EPOCH_UNIT = {12: "month", 52: "week", 365: "day"}
_FIT_FUNS = (
    "algo.farrington.fitGLM.fast",
    "algo.farrington.fitGLM",
    "algo.farrington.fitGLM.populationOffset",
)
_CHUNK_ELEMENTS = 1 << 18
"""Fits are processed in chunks of about this many (fit, baseline row) cells (memory bound)."""


# --------------------------------------------------------------------------------------------
# Calendar arithmetic as R's seq.Date (days since 1970-01-01)
# --------------------------------------------------------------------------------------------


def _as_epoch_days(epoch: ArrayLike, T: int) -> NDArray[np.int64]:
    """Dates of the T time points as days since 1970-01-01 (dates, datetime64 or integers)."""
    arr = np.asarray(epoch)
    if arr.dtype.kind in "iu":
        days = arr.astype(np.int64)
    else:
        try:
            days = arr.astype("datetime64[D]").astype(np.int64)
        except (TypeError, ValueError) as exc:
            raise ValueError("epoch must hold dates (datetime64, date or ISO strings)") from exc
    if days.shape != (T,):
        raise ValueError(f"epoch must have one date per time point ({T}), got {days.shape}")
    if T > 1 and np.any(np.diff(days) <= 0):
        raise ValueError("epoch must be strictly increasing")
    return days


def _add_months(days: NDArray[np.int64], months: int) -> NDArray[np.int64]:
    """Shift dates by whole months as R's ``seq(by="month")``: an overflowing day rolls on
    into the next month (29 Feb minus one year is 1 March)."""
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    month_start = d.astype("datetime64[M]")
    day_of_month = (d - month_start.astype("datetime64[D]")).astype(np.int64)
    shifted = (month_start + months).astype("datetime64[D]").astype(np.int64)
    return shifted + day_of_month


def _weekday(days: NDArray[np.int64]) -> NDArray[np.int64]:
    """R's ``format(x, "%w")``: 0 = Sunday … 6 = Saturday."""
    return (np.asarray(days, dtype=np.int64) + 4) % 7


def _day_of_month(days: NDArray[np.int64]) -> NDArray[np.int64]:
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    return (d - d.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1


# --------------------------------------------------------------------------------------------
# Baseline construction: which rows (time points) feed the GLM for time point k
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Baseline:
    """The GLM rows for one time point: 0-based rows (``-1`` = does not exist), their seasonal
    block (0-based), their time relative to the predicted point, and the predicted block."""

    rows: IntArray
    level: IntArray
    t: FloatArray
    level0: int
    n_levels: int
    date_shift: bool  # flexible with dates: prediction time counted from first non-NA date

    def key(self, k: int) -> tuple[bytes, bytes, bytes, int, int, bool]:
        rel = np.where(self.rows >= 0, self.rows - k, np.iinfo(np.intp).min)
        return (
            rel.tobytes(),
            self.level.tobytes(),
            self.t.tobytes(),
            self.level0,
            self.n_levels,
            self.date_shift,
        )


def _r_seq(a: int, b: int) -> IntArray:
    """R's ``a:b`` (descending when ``a > b``)."""
    step = 1 if a <= b else -1
    return np.arange(a, b + step, step, dtype=np.intp)


def _r_assign(vec: FloatArray, idx: IntArray, value: float, what: str) -> None:
    """``vec[idx] <- value`` with R's 1-based indices on a length-(T+1) array (0 ignored)."""
    T = len(vec) - 1
    if idx.size and (idx.min() < 0 or idx.max() > T):
        raise ValueError(
            f"the {what} reaches outside the series (1..{T}); decrease b or w, or start range later"
        )
    vec[idx[idx > 0]] = value


def _reference_points_flexible(
    k1: int, b: int, freq: int, dates: NDArray[np.int64] | None, unit: str
) -> NDArray[np.int64]:
    """``algo.farrington.referencetimepoints``: t0 and the same time 1..b years back
    (1-based indices without dates; days with dates, moved to t0's weekday for weekly data)."""
    if dates is None:
        return np.array([k1 - freq * j for j in range(b + 1)], dtype=np.int64)
    day = dates[k1 - 1]
    ref = np.array([_add_months(np.array([day]), -12 * j)[0] for j in range(b + 1)])
    if unit == "week":
        a = ref - (_weekday(ref) - _weekday(np.array([day]))[0])
        other = a + np.where(a > ref, -7, 7)
        ref = np.where(np.abs(a - ref) > np.abs(other - ref), other, a)
    return ref


def _flexible_baseline(
    k: int,
    T: int,
    freq: int,
    b: int,
    w: int,
    no_periods: int,
    past_weeks_not_included: int,
    dates: NDArray[np.int64] | None,
) -> tuple[_Baseline, FloatArray]:
    """Rows, seasonal blocks and times of ``algo.farrington.data.glm`` for 0-based ``k``.

    Returns the baseline and the absolute time (wtime in R's units) of its rows.
    """
    k1 = k + 1
    unit = _EPOCH_UNIT.get(freq, "none") if dates is not None else "none"
    refs = _reference_points_flexible(k1, b, freq, dates, unit)
    positions = np.arange(1, T + 1) if dates is None else dates
    found = np.isin(refs, positions)
    if not found.all():
        raise ValueError(
            f"time point {k}: some reference time points did not exist; decrease b or "
            "postpone range"
        )
    p = no_periods
    blocks = np.full(T + 1, np.nan)  # 1-based
    ref_weeks = np.flatnonzero(np.isin(positions, refs))[::-1] + 1
    _r_assign(blocks, _r_seq(k1 - w, k1), p, "current window")
    for i in range(1, b + 1):
        ref_week = int(ref_weeks[i])
        _r_assign(blocks, _r_seq(ref_week - w, ref_week + w), p, "reference window")
        if p != 1:
            period = int(ref_weeks[i - 1]) - 2 * w - 1 - ref_week
            if period < p - (2 * w + 1):
                raise ValueError("no_periods is too large for freq and w")
            lengths = np.full(p - 1, period // (p - 1), dtype=np.intp)
            lengths[: period % (p - 1)] += 1
            cs = np.concatenate([[0], np.cumsum(lengths)])
            for j in range(1, p):
                seg = _r_seq(ref_week + w + 1 + int(cs[j - 1]), ref_week + w + 1 + int(cs[j]) - 1)
                _r_assign(blocks, seg, j, "seasonal block")
    blocks_id = blocks.copy()
    _r_assign(blocks_id, _r_seq(k1 - past_weeks_not_included, k1), np.nan, "excluded weeks")
    rows1 = np.flatnonzero(~np.isnan(blocks_id[1:])) + 1
    labels = blocks[rows1].astype(np.intp)
    if dates is None:
        wtime = rows1.astype(np.float64)
        t0 = float(k1)
    else:
        step = float(dates[1] - dates[0])
        wtime = (dates[rows1 - 1] - dates[rows1[0] - 1]) / step
        t0 = float(dates[k] - dates[rows1[0] - 1]) / step
    n_levels = p if p != 1 else 1
    level = labels - 1 if p != 1 else np.zeros(len(rows1), dtype=np.intp)
    order = np.argsort(level, kind="stable")  # the GLM wants rows grouped by block
    rows1, level, wtime = rows1[order], level[order], wtime[order]
    base = _Baseline(
        rows=rows1 - 1,
        level=level,
        t=wtime - t0,
        level0=n_levels - 1,
        n_levels=n_levels,
        date_shift=dates is not None,
    )
    return base, wtime


def _flexible_baselines(
    idx: NDArray[np.int64],
    T: int,
    freq: int,
    b: int,
    w: int,
    no_periods: int,
    past_weeks_not_included: int,
    dates: NDArray[np.int64] | None,
) -> list[_Baseline]:
    """Baselines of all points in ``idx``. Without dates the layout only shifts with k, and
    R's index errors can only occur at the first or last point, so two are built."""
    args = (T, freq, b, w, no_periods, past_weeks_not_included, dates)
    if dates is not None:
        return [_flexible_baseline(int(k), *args)[0] for k in idx]
    if idx.size == 0:
        return []
    k_lo, k_hi = int(idx.min()), int(idx.max())
    first, _ = _flexible_baseline(k_lo, *args)
    _flexible_baseline(k_hi, *args)
    return [replace(first, rows=first.rows + (int(k) - k_lo)) for k in idx]


def _farrington_baseline(
    k: int, T: int, freq: int, b: int, w: int, dates: NDArray[np.int64] | None
) -> _Baseline:
    """Reference rows of ``algo.farrington`` for 0-based ``k``: windows of ``2w+1`` points
    around ``k`` minus 1..b years; points before the series are dropped."""
    k1 = k + 1
    if dates is None:
        rows1 = np.concatenate(
            [np.arange(k1 - freq * i - w, k1 - freq * i + w + 1) for i in range(b, 0, -1)]
        )
        rows1 = rows1[rows1 > 0]
        rows1 = np.where(rows1 <= T, rows1, 0)
    else:
        unit = _EPOCH_UNIT.get(freq)
        if unit is None:
            raise ValueError("with epoch dates, freq must be 12, 52 or 365")
        t0 = np.array([dates[k]])
        parts = []
        for j in range(1, b + 1):
            ref = _add_months(t0, -12 * j)
            if unit == "month":
                back = [_add_months(ref, -m)[0] for m in range(w, -1, -1)]
                fwd = [_add_months(ref, m)[0] for m in range(1, w + 1)]
            else:
                step = 7 if unit == "week" else 1
                back = [ref[0] - step * m for m in range(w, -1, -1)]
                fwd = [ref[0] + step * m for m in range(1, w + 1)]
            parts.append(np.array(back + fwd, dtype=np.int64))
        ref_days = np.concatenate(parts)
        if unit == "week":
            wd0 = _weekday(t0)[0]
            fwd_d = (wd0 - _weekday(ref_days)) % 7
            bwd_d = (_weekday(ref_days) - wd0) % 7
            ref_days = ref_days + np.where(fwd_d < bwd_d, fwd_d, -bwd_d)
        elif unit == "month":
            ref_days = ref_days - (_day_of_month(ref_days) - _day_of_month(t0)[0])
        pos = np.searchsorted(dates, ref_days)
        pos_c = np.minimum(pos, T - 1)
        hit = dates[pos_c] == ref_days
        rows1 = (pos_c + 1)[hit]
    rows = np.where(rows1 > 0, rows1 - 1, -1)
    return _Baseline(
        rows=rows.astype(np.intp),
        level=np.zeros(len(rows), dtype=np.intp),
        t=(rows1 - k1).astype(np.float64),
        level0=0,
        n_levels=1,
        date_shift=False,
    )


# --------------------------------------------------------------------------------------------
# The GLM step shared by both methods (algo.farrington.fitGLM* and algo.farrington.glm)
# --------------------------------------------------------------------------------------------


@dataclass
class _Settings:
    reweight: bool
    weights_threshold: float
    trend: bool
    p_threshold_trend: float
    b: int
    fit_fun: str  # "flexible" or one of _FIT_FUNS


def _anscombe_weights(
    y: FloatArray, fits: GLMFits, phi: FloatArray, level: IntArray, t: FloatArray, thr: float
) -> tuple[FloatArray, BoolArray]:
    """Farrington's weights from standardised Anscombe residuals ``s``: ``gamma * s^-2`` where
    ``s > thr``, ``gamma`` elsewhere, ``gamma`` making the weights sum to the row count.

    Returns the weights and which fits had undefined residuals (R stops there).
    """
    ok = fits.prior > 0
    mu = fits.mu
    h = hat_values(fits, level, t)
    with np.errstate(invalid="ignore", divide="ignore"):
        # y^(2/3) mu^(-1/6) - mu^(1/2), with cube roots (pow is several times slower)
        cbrt_y = np.cbrt(np.where(ok, y, 0.0))
        root_mu = np.sqrt(mu)
        a = 1.5 * (cbrt_y * cbrt_y / np.sqrt(np.cbrt(mu)) - root_mu)
        s = a / np.sqrt(phi[:, None] * (1.0 - h))
    return _weights(s, ok, thr)


def _weights(s: FloatArray, ok: BoolArray, thr: float) -> tuple[FloatArray, BoolArray]:
    """``algo.farrington.assign.weights`` row-wise over the rows where ``ok``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        high = ok & (s > thr)
        inv = np.where(high, 1.0 / (s * s), 1.0)
        gamma = np.sum(ok, axis=1) / np.sum(np.where(ok, inv, 0.0), axis=1)
        omega = np.where(ok, gamma[:, None] * inv, 0.0)
    bad = np.any(ok & np.isnan(s), axis=1) | ~np.isfinite(gamma)
    return np.where(bad[:, None], 0.0, omega), bad


def _take(fits: GLMFits, idx: IntArray) -> GLMFits:
    return GLMFits(
        prior=fits.prior[idx],
        mu=fits.mu[idx],
        W=fits.W[idx],
        W_block=fits.W_block[idx],
        z_bar=fits.z_bar[idx],
        t_bar=fits.t_bar[idx],
        s_tt=fits.s_tt[idx],
        beta_t=fits.beta_t[idx],
        trend=fits.trend[idx],
        converged=fits.converged[idx],
        offset=None if fits.offset is None else fits.offset[idx],
    )


def _put(dst: GLMFits, idx: IntArray, src: GLMFits) -> None:
    for name in ("prior", "mu", "W", "W_block", "z_bar", "t_bar", "s_tt", "beta_t"):
        getattr(dst, name)[idx] = getattr(src, name)
    dst.trend[idx] = src.trend
    dst.converged[idx] = src.converged
    if dst.offset is not None:
        dst.offset[idx] = 0.0 if src.offset is None else src.offset


@dataclass
class _Model:
    fits: GLMFits
    disp: FloatArray  # summary.glm dispersion of the final fit
    phi: FloatArray  # max(disp, 1)
    failed: BoolArray  # R returns NULL (or stops) for this fit
    disp_summary: FloatArray  # what summary.glm later reports for the returned model


def _fit_glm(
    y: FloatArray,
    mask: BoolArray,
    level: IntArray,
    n_levels: int,
    t: FloatArray,
    trend: BoolArray,
    offset: FloatArray | None,
    cfg: _Settings,
) -> _Model:
    """One call of R's fit function: initial fit (retried without trend if it does not
    converge), dispersion, optional reweighting by Anscombe residuals and refit."""
    prior = mask.astype(np.float64)
    fits = fit_quasipoisson(y, prior, level, n_levels, t, trend, offset)
    retry = np.flatnonzero(~fits.converged & fits.trend)
    drop_offset = cfg.fit_fun == "algo.farrington.fitGLM.populationOffset"
    if retry.size:
        off_r = None if (offset is None or drop_offset) else offset[retry]
        if offset is not None and fits.offset is not None:
            fits.offset = fits.offset.copy()
        again = fit_quasipoisson(
            y[retry], prior[retry], level, n_levels, t, np.zeros(retry.size, bool), off_r
        )
        _put(fits, retry, again)
    failed = ~fits.converged
    if cfg.fit_fun == "algo.farrington.fitGLM.fast":
        failed = np.zeros_like(failed)  # R carries on with the non-converged fit
    disp = dispersion(fits, y)
    phi = np.where(np.isnan(disp), np.nan, np.maximum(disp, 1.0))
    if cfg.reweight:
        omega, bad = _anscombe_weights(y, fits, phi, level, t, cfg.weights_threshold)
        failed = failed | bad
        trend_rw = fits.trend
        off_rw = fits.offset
        if drop_offset:  # R refits its original formula here, even after the fallback
            trend_rw, off_rw = trend, offset
        fits = fit_quasipoisson(y, omega, level, n_levels, t, trend_rw.copy(), off_rw)
        disp = dispersion(fits, y)
        phi = np.where(np.isnan(disp), np.nan, np.maximum(disp, 1.0))
        if cfg.fit_fun == "flexible":
            # farringtonFlexible stores the prior weights in model$weights, so summary.glm
            # (the trend test, predict's s.e.) sees sum(omega * r^2) / df with working
            # residuals r = (y - mu) / mu instead of the Pearson dispersion.
            return _Model(fits, disp, phi, failed, dispersion(fits, y, weights=omega))
    return _Model(fits=fits, disp=disp, phi=phi, failed=failed, disp_summary=disp)


def _fit_with_trend_check(
    y: FloatArray,
    mask: BoolArray,
    base: _Baseline,
    t0: FloatArray,
    offset: FloatArray | None,
    offset0: FloatArray | None,
    cfg: _Settings,
) -> tuple[_Model, BoolArray]:
    """Fit, then keep the trend only if significant, ``b >= 3`` and not extrapolating above
    the largest baseline count; otherwise refit without it.

    Returns the model and whether the trend was kept (a failed no-trend refit is marked in
    ``model.failed``).
    """
    F = y.shape[0]
    model = _fit_glm(y, mask, base.level, base.n_levels, base.t, np.full(F, cfg.trend), offset, cfg)
    keep = model.fits.trend.copy()
    has = np.flatnonzero(model.fits.trend)
    if has.size:
        sub = _take(model.fits, has)
        p = trend_pvalue(sub, model.disp_summary[has])
        eta0, _ = predict_link(sub, base.level0, t0[has], None if offset0 is None else offset0[has])
        with np.errstate(over="ignore"):
            mu_hat = np.maximum(np.exp(eta0), DBL_EPS)
        y_max = np.max(np.where(mask[has], y[has], -np.inf), axis=1)
        ok = (cfg.b >= 3) & (p < cfg.p_threshold_trend) & (mu_hat <= y_max)
        keep[has] = ok
        redo = has[~ok]
        if redo.size:
            again = _fit_glm(
                y[redo],
                mask[redo],
                base.level,
                base.n_levels,
                base.t,
                np.zeros(redo.size, bool),
                None if offset is None else offset[redo],
                cfg,
            )
            if model.fits.offset is not None:
                model.fits.offset = model.fits.offset.copy()
            _put(model.fits, redo, again.fits)
            model.disp[redo] = again.disp
            model.phi[redo] = again.phi
            model.disp_summary[redo] = again.disp_summary
            model.failed[redo] = again.failed
    return model, keep


# --------------------------------------------------------------------------------------------
# Thresholds
# --------------------------------------------------------------------------------------------


def _delta_threshold(
    mu0: FloatArray, se_fit: FloatArray, phi: FloatArray, exponent: float, z: float
) -> tuple[FloatArray, FloatArray]:
    """Upper limit of Farrington's prediction interval on the power-transformed scale, and
    the s.d. of the transformed prediction error (``algo.farrington.threshold``)."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        tau = phi + se_fit**2 / mu0
        if exponent == 1.0:
            se = np.sqrt(mu0 * tau)
        elif exponent == 0.5:
            se = np.sqrt(0.25 * tau)
        else:
            se = np.sqrt(4.0 / 9.0 * mu0 ** (1.0 / 3.0) * tau)
        upper = (mu0**exponent + z * se) ** (1.0 / exponent)
    return upper, se


def _noufaily_threshold(
    mu0q: FloatArray, phi: FloatArray, y: FloatArray, alpha: float
) -> tuple[FloatArray, FloatArray]:
    """Negative-binomial (Poisson if ``phi == 1``) ``1 - alpha`` quantile with mean ``mu0q``
    and variance ``phi * mu0q``, and ``P(Y >= y)`` (``algo.farrington.threshold.noufaily``)."""
    upper = np.full(mu0q.shape, np.nan)
    prob = np.full(mu0q.shape, np.nan)
    ok = np.isfinite(mu0q) & ~np.isnan(phi)
    nb = ok & (phi > 1)
    po = ok & (phi <= 1)
    if nb.any():
        size = mu0q[nb] / (phi[nb] - 1.0)
        pr = 1.0 / phi[nb]
        q = stats.nbinom.ppf(1.0 - alpha, size, pr)
        upper[nb] = np.where(size == 0, 0.0, q)
        prob[nb] = np.where(size == 0, (y[nb] <= 0) * 1.0, stats.nbinom.sf(y[nb] - 1.0, size, pr))
        prob[nb] = np.where(np.isnan(y[nb]), np.nan, prob[nb])
    if po.any():
        upper[po] = stats.poisson.ppf(1.0 - alpha, mu0q[po])
        prob[po] = stats.poisson.sf(y[po] - 1.0, mu0q[po])
    return upper, prob


# --------------------------------------------------------------------------------------------
# Driver: group time points with the same baseline layout, fit all (time, series) at once
# --------------------------------------------------------------------------------------------


@dataclass
class _Job:
    base: _Baseline
    ks: IntArray  # 0-based time points
    pos: IntArray  # their rows in the output


def _group(bases: Sequence[_Baseline], ks: IntArray) -> list[_Job]:
    groups: dict[tuple[bytes, bytes, bytes, int, int, bool], list[int]] = {}
    for i, (base, k) in enumerate(zip(bases, ks, strict=True)):
        groups.setdefault(base.key(int(k)), []).append(i)
    jobs = []
    for members in groups.values():
        idx = np.asarray(members, dtype=np.intp)
        jobs.append(_Job(base=bases[members[0]], ks=ks[idx], pos=idx))
    return jobs


def _chunks(job: _Job, S: int) -> list[tuple[_Job, IntArray]]:
    """Split a job's (time point, series) fits into index ranges of bounded size."""
    F = len(job.ks) * S
    n = max(len(job.base.rows), 1)
    size = max(_CHUNK_ELEMENTS // n, 64)
    return [(job, np.arange(a, min(a + size, F))) for a in range(0, F, size)]


def _gather(
    job: _Job, fidx: IntArray, obs: FloatArray, pop: FloatArray | None, S: int
) -> tuple[IntArray, IntArray, FloatArray, BoolArray, FloatArray | None, FloatArray | None]:
    """Baseline counts (F, n), their mask, offsets and the point's time/series indices."""
    T = obs.shape[0]
    k = job.ks[fidx // S]
    s = fidx % S
    rel = job.base.rows  # rows for job.ks[0]; shift to each k
    rows = np.where(rel >= 0, rel[None, :] - job.ks[0] + k[:, None], -1)
    valid = (rows >= 0) & (rows < T)
    rows_c = np.clip(rows, 0, T - 1)
    y = obs[rows_c, s[:, None]]
    mask = valid & ~np.isnan(y)
    y = np.where(mask, y, 0.0)
    offset = offset0 = None
    if pop is not None:
        with np.errstate(divide="ignore"):
            offset = np.log(pop[rows_c, s[:, None]])
            offset0 = np.log(pop[k, s])
    return k, s, y, mask, offset, offset0


def _prediction_time(job: _Job, mask: BoolArray) -> FloatArray:
    """Time of the predicted point on the baseline's scale (0), or R's value measured from the
    first non-missing baseline date (flexible method with dates)."""
    F = mask.shape[0]
    if not job.base.date_shift:
        return np.zeros(F)
    t = job.base.t
    first = np.min(np.where(mask, t, np.inf), axis=1)
    return -(first - t.min())


def _limit54_sum(obs: FloatArray, k: IntArray, s: IntArray, span: int) -> FloatArray:
    """Cases in the ``span`` time points ending at k (NaN if any is missing)."""
    zero = np.zeros((1, obs.shape[1]))
    c = np.concatenate([zero, np.cumsum(np.nan_to_num(obs, nan=0.0), axis=0)])
    m = np.concatenate([zero, np.cumsum(np.isnan(obs), axis=0)])
    lo = np.maximum(k - span + 1, 0)
    return np.where(m[k + 1, s] - m[lo, s] > 0, np.nan, c[k + 1, s] - c[lo, s])


def _run(
    jobs: list[_Job],
    S: int,
    n_jobs: int,
    work: Any,
) -> None:
    tasks = [c for job in jobs for c in _chunks(job, S)]
    if n_jobs == 1 or len(tasks) == 1:
        for task in tasks:
            work(*task)
        return
    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        list(pool.map(lambda task: work(*task), tasks))


def _check_common(b: int, w: int, limit54: Sequence[int], power_trans: str, alpha: float) -> None:
    if b < 1:
        raise ValueError("b (years back) must be at least 1")
    if w < 0:
        raise ValueError("w (half window) must be non-negative")
    if len(limit54) != 2 or not (limit54[0] >= 0 and limit54[1] > 0):
        raise ValueError("limit54 must be (cases >= 0, period > 0)")
    if power_trans not in _EXPONENT:
        raise ValueError(f"power_trans must be one of {sorted(_EXPONENT)}, got {power_trans!r}")
    if not 0 < alpha < 1:
        raise ValueError("alpha must lie in (0, 1)")


def _as_population(population: ArrayLike | None, shape: tuple[int, int]) -> FloatArray | None:
    if population is None:
        return None
    pop = np.asarray(population, dtype=np.float64)
    if pop.ndim == 1:
        pop = pop[:, None]
    if pop.shape[0] != shape[0] or pop.shape[1] not in (1, shape[1]):
        raise ValueError(f"population must have shape (T,) or (T, S) = {shape}, got {pop.shape}")
    return np.ascontiguousarray(np.broadcast_to(pop, shape))


def farrington_flexible(
    observed: ArrayLike,
    *,
    range: Sequence[int] | NDArray[np.integer] | None = None,
    freq: int = 52,
    b: int = 5,
    w: int = 3,
    reweight: bool = True,
    weights_threshold: float = 2.58,
    trend: bool = True,
    p_threshold_trend: float = 0.05,
    limit54: Sequence[int] = (5, 4),
    power_trans: Literal["none", "1/2", "2/3"] = "2/3",
    alpha: float = 0.05,
    no_periods: int = 1,
    past_weeks_not_included: int | None = None,
    threshold_method: Literal["delta", "nbPlugin", "muan"] = "delta",
    population_offset: bool = False,
    population: ArrayLike | None = None,
    epoch: ArrayLike | None = None,
    n_jobs: int = 1,
) -> DetectionResult:
    """R ``surveillance::farringtonFlexible`` over counts of shape (T,) or (T, S).

    ``freq`` time points per year (52 weekly, 12 monthly, 365 daily); ``b`` years back;
    ``w`` half-window (time points); ``weights_threshold`` the Anscombe residual above which
    past counts are down-weighted; ``p_threshold_trend`` the significance needed to keep the
    time trend; ``limit54 = (c, d)`` no alarm unless ``c`` cases in the last ``d`` points;
    ``power_trans`` the transformation of the ``delta`` threshold; ``alpha`` one-sided;
    ``no_periods`` seasonal blocks per year (1 = only the reference windows, as Farrington
    1996; 10 as Noufaily 2013); ``past_weeks_not_included`` recent time points left out of
    the baseline (default ``w``); ``threshold_method`` ``'delta'`` (Farrington),
    ``'nbPlugin'`` or ``'muan'`` (Noufaily); ``population_offset`` adds ``log(population)``
    as an offset (``population`` (T,) or (T, S)); ``epoch`` dates of the time points (R's
    ``epochAsDate``: reference weeks found by calendar date instead of ``freq`` steps);
    ``n_jobs`` threads.

    Returns ``upperbound``, ``alarm``, ``expected`` and in ``extra`` R's control output:
    ``score``, ``pvalue``, ``trend`` (1 kept, 0 not, NaN failed), ``trend_vector`` (slope per
    time unit), ``mu0`` (``mu0Vector``), ``phi`` (``phiVector``).
    """
    obs, one_d = as_counts(observed)
    T, S = obs.shape
    _check_common(b, w, limit54, power_trans, alpha)
    if threshold_method not in ("delta", "nbPlugin", "muan"):
        raise ValueError("threshold_method must be 'delta', 'nbPlugin' or 'muan'")
    if no_periods < 1:
        raise ValueError("no_periods must be at least 1")
    pw = w if past_weeks_not_included is None else int(past_weeks_not_included)
    if pw < 0:
        raise ValueError("past_weeks_not_included must be non-negative")
    dates = None if epoch is None else _as_epoch_days(epoch, T)
    if dates is not None and freq not in _EPOCH_UNIT:
        raise ValueError("with epoch dates, freq must be 12, 52 or 365")
    pop = _as_population(population, (T, S)) if population_offset else None
    if population_offset and pop is None:
        pop = np.ones((T, S))
    idx = as_range(range, T, freq * b + w)
    if np.any(np.nan_to_num(obs, nan=0.0) < 0):
        raise ValueError("observed counts must be non-negative")

    bases = _flexible_baselines(idx, T, freq, b, w, no_periods, pw, dates)
    jobs = _group(bases, idx)
    cfg = _Settings(
        reweight=reweight,
        weights_threshold=float(weights_threshold),
        trend=trend,
        p_threshold_trend=float(p_threshold_trend),
        b=b,
        fit_fun="flexible",
    )
    R = len(idx)
    out = {
        name: np.full((R, S), np.nan)
        for name in (
            "upperbound",
            "expected",
            "score",
            "pvalue",
            "trend",
            "trend_vector",
            "mu0",
            "phi",
        )
    }
    alarm = np.zeros((R, S), dtype=bool)
    exponent = _EXPONENT[power_trans]
    z = float(special.ndtri(1.0 - alpha))

    def work(job: _Job, fidx: IntArray) -> None:
        k, s, y, mask, offset, offset0 = _gather(job, fidx, obs, pop, S)
        t0 = _prediction_time(job, mask)
        model, keep = _fit_with_trend_check(y, mask, job.base, t0, offset, offset0, cfg)
        failed = model.failed | ~mask.any(axis=1) | ~(model.fits.W_block[:, job.base.level0] > 0)
        eta0, v = predict_link(model.fits, job.base.level0, t0, offset0)
        se_link = np.sqrt(model.disp_summary * v)
        y0 = obs[k, s]
        phi = model.phi
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if threshold_method == "delta":
                fit = np.maximum(np.exp(eta0), DBL_EPS)
                se = se_link * fit
                upper, se_tr = _delta_threshold(fit, se, phi, exponent, z)
                prob = special.ndtr(-(y0**exponent - fit**exponent) / se_tr)
                expected = fit
                mu0 = np.exp(fit + z * se)
            else:
                fit, se = eta0, se_link
                mu0q = np.exp(eta0) if threshold_method == "nbPlugin" else np.exp(eta0 + z * se)
                upper, prob = _noufaily_threshold(mu0q, phi, y0, alpha)
                expected = np.exp(eta0)
                mu0 = np.exp(eta0) if threshold_method == "nbPlugin" else np.exp(eta0 + z * se)
            score = (y0 - fit) / (upper - fit)
        recent = _limit54_sum(obs, k, s, int(limit54[1]))
        enough_ok = ~np.isnan(recent) & (recent >= limit54[0])
        no_fit = failed
        row = job.pos[fidx // S]
        ub = np.where(enough_ok, upper, np.nan)
        exp_out = np.where(enough_ok & ~np.isnan(upper), expected, np.nan)
        al = enough_ok & ~np.isnan(score) & (score > 1) & (y0 != 0)
        tr = np.where(keep, 1.0, 0.0)
        tv = np.where(keep, model.fits.beta_t, np.nan)
        values = {
            "upperbound": ub,
            "expected": exp_out,
            "score": score,
            "pvalue": prob,
            "trend": tr,
            "trend_vector": tv,
            "mu0": mu0,
            "phi": phi,
        }
        for name, val in values.items():
            out[name][row, s] = np.where(no_fit, np.nan, val)
        # R leaves ``expected`` at its initial 0 where the GLM did not converge
        out["expected"][row, s] = np.where(model.failed, 0.0, out["expected"][row, s])
        alarm[row, s] = al & ~no_fit

    _run(jobs, S, n_jobs, work)
    extra = {
        name: squeeze(out[name], one_d)
        for name in ("score", "pvalue", "trend", "trend_vector", "mu0", "phi")
    }
    params = {
        "freq": freq,
        "b": b,
        "w": w,
        "reweight": reweight,
        "weights_threshold": weights_threshold,
        "trend": trend,
        "p_threshold_trend": p_threshold_trend,
        "limit54": tuple(limit54),
        "power_trans": power_trans,
        "alpha": alpha,
        "no_periods": no_periods,
        "past_weeks_not_included": pw,
        "threshold_method": threshold_method,
        "population_offset": population_offset,
    }
    return DetectionResult(
        range=idx,
        observed=squeeze(obs[idx], one_d),
        upperbound=squeeze(out["upperbound"], one_d),
        alarm=squeeze(alarm, one_d),
        expected=squeeze(out["expected"], one_d),
        extra=extra,
        method="farrington_flexible",
        params=params,
    )


def farrington(
    observed: ArrayLike,
    *,
    range: Sequence[int] | NDArray[np.integer] | None = None,
    freq: int = 52,
    b: int = 5,
    w: int = 3,
    reweight: bool = True,
    verbose: bool = False,
    alpha: float = 0.05,
    trend: bool = True,
    limit54: Sequence[int] = (5, 4),
    power_trans: Literal["none", "1/2", "2/3"] = "2/3",
    fit_fun: str = "algo.farrington.fitGLM.fast",
    population: ArrayLike | None = None,
    epoch: ArrayLike | None = None,
    n_jobs: int = 1,
) -> DetectionResult:
    """R ``surveillance::algo.farrington`` (Farrington et al. 1996) over counts (T,) or (T, S).

    ``freq`` time points per year; ``b`` years back; ``w`` half-window; ``alpha`` two-sided
    (the limit is the ``1 - alpha/2`` quantile); ``limit54 = (c, d)``: upper bound 0 and no
    alarm unless ``c`` cases in the last ``d`` points; ``fit_fun`` as R's (the ``populationOffset``
    one uses ``population``); ``epoch`` dates of the time points (R's ``epochAsDate``);
    ``verbose`` is accepted for R compatibility and ignored.

    Returns ``upperbound``, ``alarm``, ``expected`` (the fitted mean ``mu0``, equal to R's
    predictive median ``control$pd[,2]``) and in ``extra``: ``trend`` (1/0), ``score`` (the
    exceedance score, 0 below ``limit54``), ``predictive_prob`` (R's ``control$pd[,1]``,
    ``P(Y <= y)`` under the normal approximation on the transformed scale) and ``median``.
    With ``fit_fun="algo.farrington.fitGLM"`` a GLM that does not converge makes R drop the
    whole series: all its values are NaN.
    """
    del verbose
    obs, one_d = as_counts(observed)
    T, S = obs.shape
    _check_common(b, w, limit54, power_trans, alpha)
    if fit_fun not in _FIT_FUNS:
        raise ValueError(f"fit_fun must be one of {_FIT_FUNS}")
    dates = None if epoch is None else _as_epoch_days(epoch, T)
    pop = None
    if fit_fun == "algo.farrington.fitGLM.populationOffset":
        pop = _as_population(population, (T, S)) if population is not None else np.ones((T, S))
    idx = as_range(range, T, freq * b - w - 1)
    if np.any(np.nan_to_num(obs, nan=0.0) < 0):
        raise ValueError("observed counts must be non-negative")

    bases = [_farrington_baseline(int(k), T, freq, b, w, dates) for k in idx]
    jobs = _group(bases, idx)
    cfg = _Settings(
        reweight=reweight,
        weights_threshold=1.0,
        trend=trend,
        p_threshold_trend=0.05,
        b=b,
        fit_fun=fit_fun,
    )
    R = len(idx)
    out = {
        name: np.full((R, S), np.nan)
        for name in ("upperbound", "expected", "score", "predictive_prob", "median", "trend")
    }
    alarm = np.zeros((R, S), dtype=bool)
    series_failed = np.zeros(S, dtype=bool)
    exponent = _EXPONENT[power_trans]
    z = float(special.ndtri(1.0 - alpha / 2.0))

    def work(job: _Job, fidx: IntArray) -> None:
        k, s, y, mask, offset, offset0 = _gather(job, fidx, obs, pop, S)
        t0 = np.zeros(len(fidx))
        model, keep = _fit_with_trend_check(y, mask, job.base, t0, offset, offset0, cfg)
        failed = model.failed | ~mask.any(axis=1)
        series_failed[s[model.failed]] = fit_fun == "algo.farrington.fitGLM"
        eta0, v = predict_link(model.fits, 0, t0, offset0)
        y0 = obs[k, s]
        phi = model.phi
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            mu0 = np.maximum(np.exp(eta0), DBL_EPS)
            se = np.sqrt(phi * v) * mu0
            upper, se_tr = _delta_threshold(mu0, se, phi, exponent, z)
            prob = special.ndtr((y0**exponent - mu0**exponent) / se_tr)
            median = (mu0**exponent) ** (1.0 / exponent)
            recent = _limit54_sum(obs, k, s, int(limit54[1]))
            enough = recent >= limit54[0]
            score = np.where(enough, (y0 - mu0) / (upper - mu0), 0.0)
        known = ~np.isnan(recent)
        row = job.pos[fidx // S]
        values = {
            "upperbound": np.where(known, np.where(enough, upper, 0.0), np.nan),
            "expected": mu0,
            "score": np.where(known, score, np.nan),
            "predictive_prob": prob,
            "median": median,
            "trend": keep.astype(np.float64),
        }
        for name, val in values.items():
            out[name][row, s] = np.where(failed, np.nan, val)
        alarm[row, s] = known & (score > 1) & ~failed

    _run(jobs, S, n_jobs, work)
    if series_failed.any():
        for arr in out.values():
            arr[:, series_failed] = np.nan
        alarm[:, series_failed] = False
    extra = {
        name: squeeze(out[name], one_d) for name in ("trend", "score", "predictive_prob", "median")
    }
    params = {
        "freq": freq,
        "b": b,
        "w": w,
        "reweight": reweight,
        "alpha": alpha,
        "trend": trend,
        "limit54": tuple(limit54),
        "power_trans": power_trans,
        "fit_fun": fit_fun,
    }
    return DetectionResult(
        range=idx,
        observed=squeeze(obs[idx], one_d),
        upperbound=squeeze(out["upperbound"], one_d),
        alarm=squeeze(alarm, one_d),
        expected=squeeze(out["expected"], one_d),
        extra=extra,
        method="farrington",
        params=params,
    )
