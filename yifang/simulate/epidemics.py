"""Outbreak shapes as daily onset counts: renewal-equation spread, point sources, clusters.

Propagated outbreaks follow the renewal equation (Fraser 2007, PLoS ONE 2(8):e758; as used
by Cori et al. 2013, Am J Epidemiol 178:1505–1512 to estimate R_t)::

    I_t ~ Poisson( R_t · Σ_{s≥1} w_s · I_{t−s} )

with ``w_s`` the serial interval discretised from a gamma distribution with the disease's
mean and SD (the mass of (s−½, s+½], renormalised over s ≥ 1, as in Cori et al.'s
``discr_si``). In a closed institution (a kindergarten class, a school) R_t = R_0 · S_t / N,
so the outbreak burns out as susceptibles are used up (a discrete-time SIR in renewal form).
Superspreading, if wanted, replaces the Poisson by a negative binomial with dispersion k
(Lloyd-Smith et al. 2005, Nature 438:355–359).

A point-source (food-borne) outbreak is a single exposure day plus individual incubation
periods drawn from a log-normal distribution (Sartwell 1950, Am J Hyg 51:310–318).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats


def discretised_serial_interval(
    mean_days: float, sd_days: float, max_days: int | None = None
) -> NDArray[np.float64]:
    """w_s for s = 0..S (w_0 = 0) from a gamma with the given mean and SD, in days."""
    if mean_days <= 0 or sd_days <= 0:
        raise ValueError("serial interval mean and SD must be > 0 days")
    shape = (mean_days / sd_days) ** 2
    scale = sd_days**2 / mean_days
    s_max = max_days or int(np.ceil(mean_days + 6 * sd_days)) + 1
    edges = np.arange(s_max + 1) + 0.5
    cdf = stats.gamma.cdf(edges, shape, scale=scale)
    w = np.empty(s_max + 1)
    w[0] = 0.0
    w[1:] = np.diff(cdf)
    w[1] += cdf[0]  # the mass below ½ day goes to day 1: no same-day transmission
    return np.asarray(w / w.sum(), dtype=np.float64)


@dataclass(frozen=True)
class EpidemicCurve:
    """Daily onsets from day 0 (the first case) on; ``total`` = onsets.sum()."""

    onsets: NDArray[np.int64]

    @property
    def total(self) -> int:
        return int(self.onsets.sum())

    @property
    def duration(self) -> int:
        nz = np.flatnonzero(self.onsets)
        return int(nz[-1] + 1) if nz.size else 0


def renewal_outbreak(
    rng: np.random.Generator,
    r0: float,
    serial_interval: NDArray[np.float64],
    seed_cases: int = 1,
    population: int | None = None,
    max_days: int = 180,
    max_cases: int = 5000,
    dispersion_k: float | None = None,
    min_cases: int = 1,
    tries: int = 50,
) -> EpidemicCurve:
    """Simulate onsets by the renewal equation; retry (up to ``tries``) until ≥ ``min_cases``.

    ``population`` closes the population (susceptible depletion, everyone susceptible at
    the start); ``None`` means an open population with constant R. ``dispersion_k`` makes
    offspring negative-binomial (superspreading). Generation stops after ``max_days`` or
    when ``max_cases`` is reached (the last day is truncated to fit).
    """
    if r0 < 0 or seed_cases < 1:
        raise ValueError("r0 must be >= 0 and seed_cases >= 1")
    w = serial_interval
    curve = np.zeros(0, dtype=np.int64)
    for _ in range(max(tries, 1)):
        curve = _renewal_once(rng, r0, w, seed_cases, population, max_days, max_cases, dispersion_k)
        if curve.sum() >= min_cases:
            break
    return EpidemicCurve(curve)


def _renewal_once(
    rng: np.random.Generator,
    r0: float,
    w: NDArray[np.float64],
    seed_cases: int,
    population: int | None,
    max_days: int,
    max_cases: int,
    k: float | None,
) -> NDArray[np.int64]:
    incidence = np.zeros(max_days, dtype=np.int64)
    incidence[0] = seed_cases
    total = seed_cases
    s_max = w.shape[0] - 1
    for t in range(1, max_days):
        lo = max(0, t - s_max)
        past = incidence[lo:t][::-1]  # I_{t-1}, I_{t-2}, ...
        force = float(np.dot(w[1 : 1 + past.shape[0]], past))
        if force == 0.0 and t - lo >= s_max:
            break
        r_t = r0
        if population is not None:
            r_t = r0 * max(population - total, 0) / population
        lam = r_t * force
        if lam <= 0:
            continue
        if k is not None and k > 0:
            lam = rng.gamma(k, lam / k)
        new = int(rng.poisson(lam))
        if population is not None:
            new = min(new, population - total)
        if total + new >= max_cases:
            incidence[t] = max_cases - total
            total = max_cases
            break
        incidence[t] = new
        total += new
    nz = np.flatnonzero(incidence)
    return incidence[: nz[-1] + 1] if nz.size else incidence[:1]


def point_source_outbreak(
    rng: np.random.Generator,
    size: int,
    incubation_median_days: float,
    incubation_dispersion: float = 1.5,
) -> EpidemicCurve:
    """Onsets of ``size`` people exposed on day 0: log-normal incubation (median, dispersion).

    ``incubation_dispersion`` is the geometric SD (Sartwell's dispersion factor). Onsets are
    counted by day after exposure; the exposure day itself is day 0.
    """
    if size < 0 or incubation_median_days <= 0 or incubation_dispersion < 1:
        raise ValueError("size >= 0, median > 0 and dispersion >= 1 are required")
    days = rng.lognormal(np.log(incubation_median_days), np.log(incubation_dispersion), size)
    idx = np.floor(days).astype(np.int64)
    return EpidemicCurve(np.bincount(idx, minlength=1).astype(np.int64))


def excess_counts(
    rng: np.random.Generator, daily_mean: NDArray[np.float64], phi: float = 1.0
) -> NDArray[np.int64]:
    """Extra onsets over a period with the given expected daily excess (spatial clusters)."""
    from yifang.simulate.counts import negative_binomial

    return negative_binomial(rng, daily_mean, phi)
