"""CUSUM for count data after a normalising transformation (Rossi et al.).

References:
    Rossi G, Lampugnani L, Marchi M. An approximate CUSUM procedure for surveillance of
    health events. Stat Med 1999;18:2111-2122.
    Page ES. Continuous inspection schemes. Biometrika 1954;41:100-115.

The reference implementation is R ``surveillance::algo.cusum`` (version 1.20.3), whose
results this module reproduces. With ``m`` the in-control mean, each count ``x_t`` in
``range`` is standardised to ``z_t`` by the chosen transformation and accumulated as

    C_t = max(0, C_{t-1} + z_t - k),   C_0 = 0 (the day before range[0]),

with an alarm when ``C_t >= h``. ``upperbound`` is the smallest count at t that would alarm,
given ``C_{t-1}`` (for ``trans="none"`` and ``"anscombeNegBin"`` it is ``h - C_t``, as in
the reference).

Transformations (``trans``): ``"standard"`` (x - m)/sqrt(m); ``"rossi"`` (x - 3m +
2 sqrt(xm))/(2 sqrt(m)); ``"anscombe"`` and ``"anscombe2nd"`` (Anscombe residuals for the
Poisson, first and second order); ``"pearsonNegBin"`` and ``"anscombeNegBin"`` (negative
binomial with dispersion ``alpha``, variance m + alpha m^2); ``"none"``.

``m`` is the mean of the counts before ``range[0]`` by default, a number or an array (one
value per evaluated time point, or per series), or ``"glm"``: a Poisson regression with one
annual harmonic, ``log m_t = b0 + b1 cos(2 pi t / freq) + b2 sin(2 pi t / freq)``, fitted to
the counts before ``range[0]`` (all series at once by iteratively reweighted least squares).

Reproduced quirks of the reference (kept so that results agree):

* ``"anscombe2nd"`` standardises with ``m^(2/3) - m^(-1/3)/9`` but its upper bound uses
  ``m^(2/3) - m^(1/3)/9``.
* ``"anscombeNegBin"`` evaluates the hypergeometric function 2F1(1/3, 2/3; 5/3; z) from the
  reference's table (nearest grid point, step 0.01, for -10 <= z <= 0; linear interpolation
  on a step-1 grid down to -100; NaN beyond).
* A missing or non-finite upper bound is reported as 0.
* When ``range`` starts at 0 the default ``m`` is the first count (R indexes
  ``observed[1:0]``).

Deliberate differences: ``range`` is 0-based; where R gives NA (a missing count makes the
CUSUM NA from then on) the alarm is False; ``"anscombeNegBin"`` with a vector ``m`` (or
``"glm"``) and missing counts work here, where R stops with an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import hyp2f1

from yifang.detect.algorithms.result import DetectionResult, as_counts, as_range, squeeze

__all__ = ["cusum"]

Trans = Literal[
    "standard", "rossi", "anscombe", "anscombe2nd", "pearsonNegBin", "anscombeNegBin", "none"
]
_TRANS = ("standard", "rossi", "anscombe", "anscombe2nd", "pearsonNegBin", "anscombeNegBin", "none")


@cache
def _hyp_table() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The reference's grid for 2F1(1/3, 2/3; 5/3; z): 0 to -10 by 0.01, then to -100 by 1."""
    z = np.concatenate([-np.arange(1001) / 100.0, -np.arange(11.0, 101.0)])
    return z, hyp2f1(1.0 / 3.0, 2.0 / 3.0, 5.0 / 3.0, z)


def _hypgeom2f1_special(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Table look-up of 2F1(1/3, 2/3; 5/3; x) for x <= 0, as the reference does it."""
    z, hyp = _hyp_table()
    x = np.asarray(x, dtype=np.float64)
    out = np.full(x.shape, np.nan)
    ok = np.isfinite(x)
    fine = ok & (x >= -10)
    idx = np.clip(np.rint(-x[fine] * 100.0), 0, 1000).astype(np.int64)
    out[fine] = hyp[idx]
    coarse = ok & (x < -10)
    xc = x[coarse]
    nearest = np.where(xc > -10.5, 1000, np.rint(-xc).astype(np.int64) + 990)
    below = (xc - z[np.minimum(nearest, z.size - 1)]) < 0
    low = np.where(below, nearest + 1, nearest)
    up = np.where(below, nearest, nearest - 1)
    valid = low < z.size
    vals = np.full(xc.shape, np.nan)
    lo, hi = low[valid], up[valid]
    vals[valid] = hyp[lo] + (hyp[hi] - hyp[lo]) * (xc[valid] - z[lo])
    out[coarse] = vals
    return out


def _anscombe_nb(
    x: NDArray[np.float64], m: NDArray[np.float64], alpha: float
) -> NDArray[np.float64]:
    """Anscombe residual of x under a negative binomial with mean m and dispersion alpha."""
    with np.errstate(invalid="ignore", divide="ignore"):
        hyp_m = 1.5 * m ** (2.0 / 3.0) * _hypgeom2f1_special(-alpha * m)
        up = 1.5 * x ** (2.0 / 3.0) * _hypgeom2f1_special(-alpha * x) - hyp_m
        return up / (m + alpha * m**2) ** (1.0 / 6.0)


def _standardise(
    x: NDArray[np.float64], m: NDArray[np.float64], trans: str, alpha: float
) -> NDArray[np.float64]:
    """The transformation z_t of the count x_t given the in-control mean m."""
    if trans == "rossi":
        return (x - 3 * m + 2 * np.sqrt(x * m)) / (2 * np.sqrt(m))
    if trans == "standard":
        return (x - m) / np.sqrt(m)
    if trans == "anscombe":
        return 1.5 * (x ** (2 / 3) - m ** (2 / 3)) / m ** (1 / 6)
    if trans == "anscombe2nd":
        return (x ** (2 / 3) - (m ** (2 / 3) - m ** (-1 / 3) / 9)) / (2 / 3 * m ** (1 / 6))
    if trans == "pearsonNegBin":
        return (x - m) / np.sqrt(m + alpha * m**2)
    if trans == "anscombeNegBin":
        return _anscombe_nb(x, m, alpha)
    return x.copy()


def _upperbound(
    m: NDArray[np.float64],
    C_prev: NDArray[np.float64],
    C: NDArray[np.float64],
    h: float,
    k: float,
    trans: str,
    alpha: float,
) -> NDArray[np.float64]:
    """The count at t that would bring the CUSUM to h, per the reference's formulas."""
    d = h + k - C_prev
    if trans == "rossi":
        s = np.sqrt(m)
        m32 = m**1.5
        ub = (
            2 * h * s
            + 2 * k * s
            - 2 * C_prev * s
            + 5 * m
            - 2 * np.sqrt(4 * m**2 + 2 * m32 * h + 2 * m32 * k - 2 * m32 * C_prev)
        )
    elif trans == "standard":
        ub = np.ceil(np.sqrt(m) * d + m)
    elif trans in ("anscombe", "anscombe2nd"):
        centre = m ** (2 / 3) if trans == "anscombe" else m ** (2 / 3) - m ** (1 / 3) / 9
        base = (2 / 3) * m ** (1 / 6) * d + centre
        ub = np.where(base < 0, 0.0, np.abs(base) ** 1.5)
        ub = np.where(np.isnan(base), np.nan, ub)
    elif trans == "pearsonNegBin":
        ub = np.sqrt(m + alpha * m**2) * d + m
    else:  # "anscombeNegBin" and "none": the reference gives h minus the current CUSUM
        ub = h - C
    ub = np.where(np.isnan(ub) | (ub < 0), 0.0, ub)
    return ub


def _poisson_harmonic_fit(
    y: NDArray[np.float64], t: NDArray[np.float64], t_new: NDArray[np.float64], freq: float
) -> NDArray[np.float64]:
    """Fit log mu = b0 + b1 cos(2 pi t/freq) + b2 sin(2 pi t/freq) by IRLS to every column
    of ``y`` (missing counts dropped) and return the fitted means at ``t_new``.

    Follows R's ``glm.fit`` for the Poisson family so that fits which do not converge (e.g. a
    single case in the in-control period) stop where R stops: start at mu = y + 0.1, the
    inverse link bounded below by machine epsilon, at most 25 iterations, convergence when
    the relative change in deviance is below 1e-8 (each series on its own).
    """
    eps = np.finfo(np.float64).eps
    omega = 2 * np.pi / freq
    X = np.column_stack([np.ones_like(t), np.cos(omega * t), np.sin(omega * t)])
    X_new = np.column_stack([np.ones_like(t_new), np.cos(omega * t_new), np.sin(omega * t_new)])
    present = ~np.isnan(y)
    yy = np.where(present, y, 0.0)
    w_obs = present.astype(np.float64)

    def deviance(mu: NDArray[np.float64]) -> NDArray[np.float64]:
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.where(yy > 0, yy * np.log(yy / mu), 0.0) - (yy - mu)
        return 2 * np.sum(w_obs * term, axis=0)

    mu = yy + 0.1
    eta = np.log(mu)
    S = y.shape[1]
    beta = np.zeros((3, S))
    dev_old = deviance(mu)
    active = np.ones(S, dtype=bool)
    for _ in range(25):
        a = np.flatnonzero(active)
        if a.size == 0:
            break
        mu_eta = np.maximum(np.exp(eta[:, a]), eps)
        z = eta[:, a] + (yy[:, a] - mu[:, a]) / mu_eta
        W = w_obs[:, a] * mu_eta**2 / mu[:, a]
        XtWX = np.einsum("ti,ts,tj->sij", X, W, X)
        XtWz = np.einsum("ti,ts->si", X, W * z)
        beta[:, a] = np.linalg.solve(XtWX, XtWz[..., None])[..., 0].T
        eta[:, a] = X @ beta[:, a]
        mu[:, a] = np.maximum(np.exp(eta[:, a]), eps)
        dev = deviance(mu)
        converged = np.abs(dev - dev_old) / (np.abs(dev) + 0.1) < 1e-8
        active &= ~converged
        dev_old = dev
    return np.maximum(np.exp(X_new @ beta), eps)


def cusum(
    observed: ArrayLike,
    *,
    k: float = 1.04,
    h: float = 2.26,
    m: float | ArrayLike | Literal["glm"] | None = None,
    trans: Trans = "standard",
    alpha: float = 0.1,
    freq: int = 52,
    start: int = 1,
    range: Sequence[int] | NDArray[np.integer] | None = None,
) -> DetectionResult:
    """CUSUM of transformed counts, as R ``surveillance::algo.cusum``.

    Args:
        observed: counts of shape (T,) or (T, S), one row per period (week or day).
        k: reference value (allowance), in standardised units.
        h: decision interval: alarm when the CUSUM reaches ``h``.
        m: in-control mean: None for the mean of the counts before ``range[0]``, a number,
            an array of shape (len(range),), (S,) or (len(range), S), or ``"glm"``.
        trans: the standardisation (see the module docstring).
        alpha: negative binomial dispersion for ``"pearsonNegBin"`` / ``"anscombeNegBin"``.
        freq: periods per year for ``m="glm"`` (52 for weeks).
        start: period number within the year of the first count (``sts`` start[2]), for
            ``m="glm"``.
        range: 0-based time points to monitor; the CUSUM starts at 0 the point before
            ``range[0]``. Required unless ``m`` is a number or array (then all points).

    Returns:
        :class:`DetectionResult` with ``upperbound``, ``alarm`` (CUSUM >= h), ``expected``
        (``m``) and ``extra["cusum"]``.
    """
    if trans not in _TRANS:
        raise ValueError(f"trans must be one of {', '.join(_TRANS)}; got {trans!r}")
    x, one_d = as_counts(observed)
    T, S = x.shape
    if range is None and (m is None or isinstance(m, str)):
        raise ValueError("cusum needs range: the counts before range[0] are the in-control period")
    t = as_range(range, T, 0)
    if t.size == 0:
        raise ValueError("range is empty")
    R = t.size
    t0 = int(t[0])

    if m is None:
        training = x[: max(t0, 1)]
        mean = training.mean(axis=0)  # NaN when a count is missing, as R's mean()
        m_arr = np.broadcast_to(mean, (R, S)).astype(np.float64)
    elif isinstance(m, str):
        if m != "glm":
            raise ValueError(f"m must be None, a number, an array or 'glm'; got {m!r}")
        if t0 < 1:
            raise ValueError("m='glm' needs at least one count before range[0]")
        t_train = start + np.arange(t0, dtype=np.float64)
        m_arr = _poisson_harmonic_fit(x[:t0], t_train, start + t.astype(np.float64), freq)
    else:
        m_in = np.asarray(m, dtype=np.float64)
        if m_in.ndim == 1 and m_in.size == R and (R != S or one_d):
            m_in = m_in[:, None]
        try:
            m_arr = np.broadcast_to(m_in, (R, S)).astype(np.float64)
        except ValueError as exc:
            raise ValueError(
                f"m must broadcast to (len(range), S) = ({R}, {S}); got shape {m_in.shape}"
            ) from exc

    y = x[t]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        z = _standardise(y, m_arr, trans, alpha)
        C = np.zeros((R + 1, S))
        for i in np.arange(R):
            C[i + 1] = np.maximum(0.0, C[i] + (z[i] - k))  # NaN propagates, as R's max()
        ub = _upperbound(m_arr, C[:-1], C[1:], h, k, trans, alpha)
        alarm = C[1:] >= h

    return DetectionResult(
        range=t,
        observed=squeeze(y, one_d),
        upperbound=squeeze(ub, one_d),
        alarm=squeeze(alarm, one_d),
        expected=squeeze(m_arr, one_d),
        extra={"cusum": squeeze(C[1:], one_d)},
        method=f"cusum: {trans}",
        params={
            "k": k,
            "h": h,
            "m": m if isinstance(m, str | None) else "given",
            "trans": trans,
            "alpha": alpha,
        },
    )
