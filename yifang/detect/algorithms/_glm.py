"""Many small quasi-Poisson log-linear GLMs fitted at once by IRLS, the way R's ``glm.fit`` does.

The Farrington family of detectors fits one GLM per (time point, series): a few dozen to a
few hundred baseline counts, a log link, an intercept per seasonal block (one block for the
original method, ``no_periods`` blocks for Noufaily et al. 2013), optionally a linear time
trend and an offset. Fitting hundreds of thousands of them one by one is what makes R slow.

Here ``F`` fits with the same rows and block layout share one ``(F, n)`` array per quantity.
The design matrix is never formed: with one-hot block columns and a time column, ``X'WX`` is
an arrowhead matrix, so weighted least squares reduces to a weighted within-block
regression (block means of the working response, plus the slope of the working response on
time centred within each block). That is exact, O(n) per fit, and better conditioned than
normal equations with raw time values.

The iteration copies R's ``glm.fit`` (R 4.x, ``stats`` package) step by step, because the
fitted values that the detectors use are those of the iteration at which R stops, and R's
covariance and hat values use the working weights of that last iteration's start:

* start ``eta = log(y + 0.1)`` (the Poisson ``initialize``), ``mu = max(exp(eta), DBL_EPS)``;
* working response ``z = eta - offset + (y - mu) / mu``, working weights ``W = prior * mu``;
* stop when ``|dev - dev_old| / (|dev| + 0.1) < 1e-8``, at most 25 iterations;
* ``W`` (hence the covariance, hat values and dispersion) comes from the start of the last
  iteration, the fitted ``mu`` from its end.

Deliberate differences from R: R's step halving (only reached when ``exp(eta)`` overflows)
is not implemented, such fits are reported as not converged; a time column that is constant
within every block (R: aliased coefficient, an error downstream) gives NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import special

DBL_EPS = float(np.finfo(np.float64).eps)
"""R's ``.Machine$double.eps``: the log link's lower bound on ``mu``."""

_LOG_EPS = float(np.log(DBL_EPS))

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]


@dataclass
class GLMFits:
    """State of ``F`` fitted quasi-Poisson GLMs (rows are fits, columns baseline rows).

    ``W`` are the working weights used in the last weighted least-squares step, ``mu`` the
    fitted means after it. ``W_block``, ``t_bar`` and ``s_tt`` (the within-block weighted sum
    of squares of time) describe that step's ``X'WX``; ``z_bar`` and ``beta_t`` its solution
    (block means of the working response and the time slope, 0 without trend).
    """

    prior: FloatArray
    mu: FloatArray
    W: FloatArray
    W_block: FloatArray
    z_bar: FloatArray
    t_bar: FloatArray
    s_tt: FloatArray
    beta_t: FloatArray
    trend: BoolArray
    converged: BoolArray
    offset: FloatArray | None


def _deviance(y: FloatArray, mu: FloatArray, prior: FloatArray) -> FloatArray:
    """Poisson deviance per fit: ``2 * sum(prior * (y log(y/mu) - (y - mu)))`` (``mu`` if y=0)."""
    pos = y > 0
    ratio = np.where(pos, y / mu, 1.0)
    r = np.where(pos, y * np.log(ratio) - (y - mu), mu)
    return 2.0 * np.sum(prior * r, axis=1)


def _block_summer(level: IntArray, n_levels: int) -> Callable[[FloatArray], FloatArray]:
    """Row-wise sums over the columns of each block; ``level`` must be sorted (blocks are
    contiguous column ranges, summed with ``np.add.reduceat``, which needs no BLAS)."""
    level = np.asarray(level)
    if level.size and np.any(np.diff(level) < 0):
        raise ValueError("baseline rows must be ordered by block")
    if n_levels == 1:
        return lambda A: A.sum(axis=1, keepdims=True)
    present = np.flatnonzero(np.bincount(level, minlength=n_levels) > 0)
    starts = np.searchsorted(level, present)

    def block_sum(A: FloatArray) -> FloatArray:
        sums = np.add.reduceat(A, starts, axis=1)
        if present.size == n_levels:
            return sums
        out = np.zeros((A.shape[0], n_levels))
        out[:, present] = sums
        return out

    return block_sum


def _deviance_fast(
    dev_const: FloatArray, y: FloatArray, eta: FloatArray, mu: FloatArray, prior: FloatArray
) -> FloatArray:
    """:func:`_deviance` from precomputed ``y log y - y``, with ``log mu = max(eta, log eps)``
    (equal to R's ``log(y/mu)`` form up to rounding)."""
    log_mu = np.maximum(eta, _LOG_EPS)
    return 2.0 * np.sum(prior * (dev_const - y * log_mu + mu), axis=1)


def fit_quasipoisson(
    y: FloatArray,
    prior: FloatArray,
    level: IntArray,
    n_levels: int,
    t: FloatArray,
    trend: BoolArray,
    offset: FloatArray | None = None,
    *,
    maxit: int = 25,
    epsilon: float = 1e-8,
    engine: str = "numba",
) -> GLMFits:
    """Fit ``F`` log-linear quasi-Poisson GLMs ``log mu = a[level] + beta_t * t + offset``.

    ``y`` (F, n) are the counts (any value where ``prior`` is 0, e.g. missing), ``prior``
    (F, n) the prior weights (0 drops a row, as R's ``na.omit`` or a zero weight), ``level``
    (n,) the seasonal block of each row (0 .. n_levels-1), ``t`` (n,) or (F, n) the time of
    each row in the units of the trend, ``trend`` (F,) whether the fit has the time term.
    Rows must be ordered by ``level``. ``engine`` ``"numba"`` runs the compiled loop of
    :mod:`._glm_kernels`, ``"numpy"`` the array version below (same iteration).
    """
    if engine == "numba":
        return _fit_compiled(y, prior, level, n_levels, t, trend, offset, maxit, epsilon)
    if engine != "numpy":
        raise ValueError(f"engine must be 'numba' or 'numpy', got {engine!r}")
    F, n = y.shape
    y = np.where(prior > 0, y, 0.0)
    block_sum = _block_summer(level, n_levels)
    one_block = n_levels == 1
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1:
        raise ValueError("t must hold one time per baseline row, shape (n,)")

    out_mu = np.empty((F, n))
    out_W = np.empty((F, n))
    out_Wl = np.empty((F, n_levels))
    out_zbar = np.empty((F, n_levels))
    out_tbar = np.zeros((F, n_levels))
    out_s = np.zeros(F)
    out_bt = np.zeros(F)
    out_conv = np.zeros(F, dtype=bool)

    act = np.arange(F)
    ya, pa, tr, off = y, prior, trend, offset
    with np.errstate(divide="ignore"):
        # deviance terms that do not depend on mu: y log y - y (0 log 0 = 0)
        dev_const = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0) - y
        eta = np.log(y + 0.1)  # R's start: mustart = y + 0.1, eta = log(mustart)
    lin = eta if off is None else eta - off  # linear predictor without the offset
    mu = np.maximum(np.exp(eta), DBL_EPS)
    dev_old = _deviance_fast(dev_const, ya, eta, mu, pa)
    for it in range(1, maxit + 1):
        W = pa * mu
        z = lin + (ya - mu) / mu
        Wl = block_sum(W)
        any_trend = bool(tr.any())
        with np.errstate(invalid="ignore", divide="ignore"):
            z_bar = np.where(Wl > 0, block_sum(W * z) / Wl, 0.0)
            fitted = z_bar if one_block else z_bar[:, level]
            if any_trend:
                t_bar = np.where(Wl > 0, block_sum(W * t) / Wl, 0.0)
                dt = t - (t_bar if one_block else t_bar[:, level])
                Wdt = W * dt
                s = np.sum(Wdt * dt, axis=1)
                bt = np.where(tr, np.sum(Wdt * (z - fitted), axis=1) / s, 0.0)
                lin = fitted + dt * bt[:, None]
            else:
                t_bar = np.zeros_like(z_bar)
                s = np.zeros(len(act))
                bt = s
                lin = np.broadcast_to(fitted, W.shape)
        eta = lin if off is None else lin + off
        with np.errstate(over="ignore"):
            mu = np.maximum(np.exp(eta), DBL_EPS)
        dev = _deviance_fast(dev_const, ya, eta, mu, pa)
        with np.errstate(invalid="ignore"):
            done = np.abs(dev - dev_old) / (np.abs(dev) + 0.1) < epsilon
        finite = np.isfinite(dev)
        stop = done | ~finite if it < maxit else np.ones(len(act), dtype=bool)
        if stop.any():
            idx = act[stop]
            out_mu[idx] = mu[stop]
            out_W[idx] = W[stop]
            out_Wl[idx] = Wl[stop]
            out_zbar[idx] = z_bar[stop]
            out_tbar[idx] = t_bar[stop]
            out_s[idx] = s[stop]
            out_bt[idx] = bt[stop]
            out_conv[idx] = done[stop] & finite[stop]
            keep = ~stop
            if not keep.any():
                break
            act = act[keep]
            ya, pa, tr, dev_const = ya[keep], pa[keep], tr[keep], dev_const[keep]
            lin, mu, dev = lin[keep], mu[keep], dev[keep]
            if off is not None:
                off = off[keep]
        dev_old = dev
    return GLMFits(
        prior=prior,
        mu=out_mu,
        W=out_W,
        W_block=out_Wl,
        z_bar=out_zbar,
        t_bar=out_tbar,
        s_tt=out_s,
        beta_t=out_bt,
        trend=trend.copy(),
        converged=out_conv,
        offset=offset,
    )


def _fit_compiled(
    y: FloatArray,
    prior: FloatArray,
    level: IntArray,
    n_levels: int,
    t: FloatArray,
    trend: BoolArray,
    offset: FloatArray | None,
    maxit: int,
    epsilon: float,
) -> GLMFits:
    from yifang.detect.algorithms import _glm_kernels  # compiled on first use

    level = np.asarray(level)
    if level.size and np.any(np.diff(level) < 0):
        raise ValueError("baseline rows must be ordered by block")
    F, n = y.shape
    starts = np.searchsorted(level, np.arange(n_levels + 1)).astype(np.int64)
    yc = np.ascontiguousarray(np.where(prior > 0, y, 0.0))
    pc = np.ascontiguousarray(prior, dtype=np.float64)
    off = np.zeros((1, 1)) if offset is None else np.ascontiguousarray(offset, dtype=np.float64)
    fits = GLMFits(
        prior=prior,
        mu=np.empty((F, n)),
        W=np.empty((F, n)),
        W_block=np.empty((F, n_levels)),
        z_bar=np.empty((F, n_levels)),
        t_bar=np.empty((F, n_levels)),
        s_tt=np.empty(F),
        beta_t=np.empty(F),
        trend=np.ascontiguousarray(trend, dtype=np.bool_).copy(),
        converged=np.empty(F, dtype=np.bool_),
        offset=offset,
    )
    _glm_kernels.irls(
        yc,
        pc,
        starts,
        np.ascontiguousarray(t, dtype=np.float64),
        fits.trend,
        off,
        offset is not None,
        maxit,
        epsilon,
        fits.mu,
        fits.W,
        fits.W_block,
        fits.z_bar,
        fits.t_bar,
        fits.s_tt,
        fits.beta_t,
        fits.converged,
    )
    return fits


def residual_df(fits: GLMFits) -> FloatArray:
    """R's ``df.residual``: rows with positive prior weight minus the rank of the design."""
    n_ok = np.sum(fits.prior > 0, axis=1)
    rank = np.sum(fits.W_block > 0, axis=1) + fits.trend
    return (n_ok - rank).astype(np.float64)


def dispersion(fits: GLMFits, y: FloatArray, weights: FloatArray | None = None) -> FloatArray:
    """``summary.glm``'s quasi-Poisson dispersion: ``sum(weights * r^2) / df`` with working
    residuals ``r = (y - mu) / mu``; the working weights by default (Pearson statistic)."""
    ok = fits.prior > 0
    r = np.where(ok, (np.where(ok, y, 0.0) - fits.mu) / fits.mu, 0.0)
    wts = fits.W if weights is None else weights
    df = residual_df(fits)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(df > 0, np.sum(np.where(wts > 0, wts * r * r, 0.0), axis=1) / df, np.nan)


def hat_values(fits: GLMFits, level: IntArray, t: FloatArray) -> FloatArray:
    """Diagonal of the hat matrix of the last weighted least-squares step (R's ``hatvalues``)."""
    Wl = fits.W_block[:, level]
    with np.errstate(invalid="ignore", divide="ignore"):
        h = fits.W / Wl
        dt = t - fits.t_bar[:, level]
        h = h + np.where(fits.trend[:, None], fits.W * dt * dt / fits.s_tt[:, None], 0.0)
    h[h > 1.0 - 10.0 * DBL_EPS] = 1.0
    return h


def predict_link(
    fits: GLMFits, level0: int, t0: FloatArray, offset0: FloatArray | None
) -> tuple[FloatArray, FloatArray]:
    """Linear predictor at block ``level0`` and time ``t0`` (F,), and ``x0' (X'WX)^-1 x0``.

    Multiply the second value by a dispersion to get the variance of the linear predictor.
    """
    Wl = fits.W_block[:, level0]
    dt0 = t0 - fits.t_bar[:, level0]
    eta0 = fits.z_bar[:, level0] + dt0 * fits.beta_t
    if offset0 is not None:
        eta0 = eta0 + offset0
    with np.errstate(invalid="ignore", divide="ignore"):
        v = 1.0 / Wl + np.where(fits.trend, dt0 * dt0 / fits.s_tt, 0.0)
        v = np.where(Wl > 0, v, np.nan)
    return eta0, v


def trend_pvalue(fits: GLMFits, disp: FloatArray) -> FloatArray:
    """Two-sided t-test p-value of the time slope, as ``summary.glm``'s coefficient table.

    A slope that is zero up to rounding (|t| < 1e-10, e.g. sparse counts placed
    symmetrically in time) gets p = 1: R computes such t values as ~1e-17, where its
    ``2 * pt(-|t|, df)`` is exactly 1, and ``p_threshold_trend = 1`` (Noufaily's setting)
    then drops the trend; our rounding noise differs from R's, so we decide on the value.
    """
    df = residual_df(fits)
    with np.errstate(invalid="ignore", divide="ignore"):
        tval = fits.beta_t / np.sqrt(disp / fits.s_tt)
        return np.asarray(2.0 * special.stdtr(df, -np.abs(tval)), dtype=np.float64)
