"""Count-array generators: negative-binomial baselines with trend and Fourier seasonality.

Every endemic series in the simulator is drawn from the same model, the one Noufaily et al.
(2013, Stat Med 32:1206–1222) used for their simulation study::

    Y_t ~ NegBin(mean μ_t, variance φ·μ_t),   φ ≥ 1 (φ = 1 is Poisson)
    log μ_t = θ + β·t + Σ_j [γ1_j cos(2πjt/P) + γ2_j sin(2πjt/P)]

with ``P`` the period (52 weeks, or 365.25 days for daily series). With variance φ·μ the
negative binomial has size r = μ/(φ−1) and success probability p = 1/φ, constant over time;
sums of such counts with the same φ are again of this form, so a city total built from
township series keeps the configured variance-to-mean ratio.

For the city the seasonal terms are written as harmonics with an amplitude and a peak day
(``A·cos(2πj(t − t_peak)/P)``), which is the same Fourier term read more easily, and the
seasonal factor is normalised to mean 1 over the year so that a configured annual rate per
100,000 is what the simulator delivers on average.

Counts are drawn by inversion of the negative binomial's distribution function (a
sequential search from P(0), Devroye 1986, *Non-Uniform Random Variate Generation*, ch. X.1),
compiled with numba: one uniform and about μ + 1 multiplications per count, against a gamma
and a Poisson variate for the gamma–Poisson mixture numpy would use. The distribution is the
same; means so large that P(0) underflows (several hundred a day) fall back to the mixture.

The national-scale generator (:func:`national_chunks`) produces counties × diseases × days
in chunks of counties, so memory stays bounded whatever the size; each count is drawn from
μ = level × season without materialising the chunk's array of means.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

DAYS_PER_YEAR = 365.25


def negative_binomial(rng: np.random.Generator, mu: ArrayLike, phi: ArrayLike) -> NDArray[np.int64]:
    """Draw counts with mean ``mu`` and variance ``phi·mu`` (``phi`` ≥ 1; 1 means Poisson).

    ``mu`` and ``phi`` broadcast. Means of 0 give 0. Drawn by inversion of the negative
    binomial's distribution function with size r = μ/(φ−1) and p = 1/φ (see
    :func:`_nb_draw`), which is exact and needs no gamma variate; ``rng`` seeds the
    sampler, so the same generator state gives the same counts.
    """
    mu_a = np.asarray(mu, dtype=np.float64)
    phi_a = np.asarray(phi, dtype=np.float64)
    shape = np.broadcast_shapes(mu_a.shape, phi_a.shape)
    mu_b = np.broadcast_to(mu_a, shape)
    phi_b = np.broadcast_to(phi_a, shape)
    if np.any(phi_b < 1.0) or not np.all(np.isfinite(phi_b)):
        raise ValueError("phi (variance/mean) must be finite and >= 1")
    if np.any(mu_b < 0) or not np.all(np.isfinite(mu_b)):
        raise ValueError("mu must be finite and >= 0")
    flat_mu = np.ascontiguousarray(mu_b, dtype=np.float64).reshape(-1)
    flat_phi = np.ascontiguousarray(phi_b, dtype=np.float64).reshape(-1)
    out = np.empty(flat_mu.shape[0], dtype=np.int64)
    _nb_fill(flat_mu, flat_phi, _numba_seed(rng), out)
    _fill_far_tail(rng, flat_mu, flat_phi, out)
    return out.reshape(shape)


def _numba_seed(rng: np.random.Generator) -> int:
    """A seed for numba's generator taken from ``rng`` (one draw: reproducible)."""
    return int(rng.integers(0, 2**32 - 1))


# P(Y = 0) = exp(log_p0) below exp(-700) underflows; such cells (means of several hundred
# and more) are drawn as the gamma–Poisson mixture instead, which is the same distribution.
_LOG_P0_FLOOR = -700.0


@numba.njit(cache=True, inline="always")
def _nb_draw(mu: float, phi: float) -> int:
    """One negative-binomial count by sequential search of the distribution function.

    P(0) = p^r = exp(−μ·ln φ/(φ−1)) and P(k)/P(k−1) = (k−1+r)·q/k with q = 1 − 1/φ (for
    φ = 1 the Poisson limits exp(−μ) and μ/k). A uniform u is compared with the running
    sum; the expected number of steps is μ + 1. Returns −1 where P(0) would underflow.
    """
    if mu <= 0.0:
        return 0
    log_p0 = -mu if phi == 1.0 else -mu * math.log(phi) / (phi - 1.0)
    if log_p0 < _LOG_P0_FLOOR:
        return -1
    u = np.random.random()
    pk = math.exp(log_p0)
    cdf = pk
    k = 0
    if phi == 1.0:
        while u > cdf:
            k += 1
            pk *= mu / k
            if pk == 0.0:
                break
            cdf += pk
    else:
        r = mu / (phi - 1.0)
        q = 1.0 - 1.0 / phi
        while u > cdf:
            k += 1
            pk *= (k - 1.0 + r) * q / k
            if pk == 0.0:
                break
            cdf += pk
    return k


@numba.njit(cache=True)
def _nb_fill(
    mu: NDArray[np.float64], phi: NDArray[np.float64], seed: int, out: NDArray[np.int64]
) -> None:
    np.random.seed(seed)
    for i in range(mu.shape[0]):
        out[i] = _nb_draw(mu[i], phi[i])


@numba.njit(cache=True)
def _nb_national(
    level: NDArray[np.float64],
    season: NDArray[np.float64],
    phi: NDArray[np.float64],
    seed: int,
    out: NDArray[np.int32],
) -> int:
    """out[c, d, t] ~ NB(level[c, d]·season[d, t], φ_d); returns how many cells were −1."""
    np.random.seed(seed)
    far = 0
    for c in range(level.shape[0]):
        for d in range(level.shape[1]):
            lv = level[c, d]
            ph = phi[d]
            for t in range(season.shape[1]):
                k = _nb_draw(lv * season[d, t], ph)
                out[c, d, t] = k
                if k < 0:
                    far += 1
    return far


def _fill_far_tail(
    rng: np.random.Generator,
    mu: NDArray[np.float64],
    phi: NDArray[np.float64],
    out: NDArray[np.int64] | NDArray[np.int32],
) -> None:
    """Draw the cells the sampler left at −1 (huge means) as a gamma–Poisson mixture."""
    far = np.flatnonzero(out < 0)
    if far.size == 0:
        return
    m, f = mu[far], phi[far]
    lam = m.copy()
    over = f > 1.0
    lam[over] = rng.gamma(m[over] / (f[over] - 1.0), f[over] - 1.0)
    out[far] = rng.poisson(lam)


def fourier_terms(
    t: ArrayLike, gamma1: Sequence[float], gamma2: Sequence[float], period: float
) -> NDArray[np.float64]:
    """Σ_j γ1_j cos(2πjt/P) + γ2_j sin(2πjt/P) for j = 1..len(gamma1), on the log scale."""
    t_a = np.asarray(t, dtype=np.float64)
    out = np.zeros_like(t_a)
    for j, (g1, g2) in enumerate(zip(gamma1, gamma2, strict=True), start=1):
        w = 2.0 * np.pi * j * t_a / period
        out += g1 * np.cos(w) + g2 * np.sin(w)
    return out


@dataclass(frozen=True)
class Harmonic:
    """One seasonal harmonic: ``amplitude`` on the log scale, peak at ``peak_day`` (day of year).

    ``order`` j = 1 is the annual cycle, 2 the half-year cycle (two peaks a year), ...
    """

    amplitude: float
    peak_day: float
    order: int = 1


def seasonal_factor(
    day_of_year: ArrayLike, harmonics: Sequence[Harmonic], normalise: bool = True
) -> NDArray[np.float64]:
    """exp(Σ A_j cos(2πj(t − t_peak_j)/365.25)), by default scaled to mean 1 over a year.

    ``day_of_year`` is 0-based (1 January = 0); fractional values are fine.
    """
    t = np.asarray(day_of_year, dtype=np.float64)
    log_s = np.zeros_like(t)
    for h in harmonics:
        log_s += h.amplitude * np.cos(2.0 * np.pi * h.order * (t - h.peak_day) / DAYS_PER_YEAR)
    s = np.exp(log_s)
    if normalise and harmonics:
        grid = np.arange(0.0, DAYS_PER_YEAR, 0.25)
        ref = np.zeros_like(grid)
        for h in harmonics:
            ref += h.amplitude * np.cos(2.0 * np.pi * h.order * (grid - h.peak_day) / DAYS_PER_YEAR)
        s /= float(np.exp(ref).mean())
    return s


def weekly_mean(
    t: ArrayLike,
    theta: float,
    beta: float = 0.0,
    gamma1: Sequence[float] = (),
    gamma2: Sequence[float] = (),
    period: float = 52.0,
) -> NDArray[np.float64]:
    """μ_t = exp(θ + βt + Fourier terms), Noufaily et al. (2013) eq. (the baseline model)."""
    t_a = np.asarray(t, dtype=np.float64)
    return np.exp(theta + beta * t_a + fourier_terms(t_a, gamma1, gamma2, period))


# ---------------------------------------------------------------------------------------
# National scale
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NationalProfile:
    """Per-disease parameters of the national generator (arrays of length D).

    ``rate`` is annual incidence per 100,000; ``amplitude``/``peak_day`` one annual
    harmonic; ``trend`` relative change per year (log scale); ``phi`` variance/mean;
    ``county_sd`` the SD of the log county effect (spatial heterogeneity).
    """

    rate: NDArray[np.float64]
    amplitude: NDArray[np.float64]
    peak_day: NDArray[np.float64]
    trend: NDArray[np.float64]
    phi: NDArray[np.float64]
    county_sd: NDArray[np.float64]

    @property
    def n_diseases(self) -> int:
        return int(self.rate.shape[0])


def synthetic_profiles(n_diseases: int, seed: int) -> NationalProfile:
    """Draw ``n_diseases`` plausible disease profiles (rates 0.01–1,000 per 100,000 a year)."""
    rng = np.random.default_rng([seed, 0xD15EA5E])
    return NationalProfile(
        rate=10.0 ** rng.uniform(-2.0, 3.0, n_diseases),
        amplitude=rng.uniform(0.0, 1.0, n_diseases),
        peak_day=rng.uniform(0.0, DAYS_PER_YEAR, n_diseases),
        trend=rng.normal(0.0, 0.05, n_diseases),
        phi=rng.uniform(1.0, 4.0, n_diseases),
        county_sd=rng.uniform(0.2, 0.8, n_diseases),
    )


def synthetic_county_populations(n_counties: int, seed: int) -> NDArray[np.float64]:
    """County populations, log-normal around 400,000 (China: ~1.41e9 over ~2,850 counties)."""
    rng = np.random.default_rng([seed, 0xC0047])
    draws = rng.normal(np.log(400_000.0), 0.6, n_counties)
    return np.round(np.exp(draws)).astype(np.float64)


@dataclass(frozen=True)
class CountChunk:
    """Daily counts of counties ``start .. start+counts.shape[0]-1``: shape (C, D, T)."""

    start: int
    counts: NDArray[np.int32]


def national_chunks(
    n_counties: int = 2900,
    n_diseases: int = 40,
    n_days: int = 3653,
    seed: int = 0,
    chunk_counties: int = 64,
    profiles: NationalProfile | None = None,
    populations: NDArray[np.float64] | None = None,
) -> Iterator[CountChunk]:
    """Yield daily NB counts for counties × diseases × days, ``chunk_counties`` at a time.

    Memory is O(chunk_counties × n_diseases × n_days). Each chunk draws from its own child
    of the seed sequence, so the output is fixed by (``seed``, ``chunk_counties``) and the
    chunks could be generated in parallel.
    """
    prof = profiles if profiles is not None else synthetic_profiles(n_diseases, seed)
    if prof.n_diseases != n_diseases:
        raise ValueError(f"profiles hold {prof.n_diseases} diseases, n_diseases={n_diseases}")
    pop = populations if populations is not None else synthetic_county_populations(n_counties, seed)
    if pop.shape != (n_counties,):
        raise ValueError(f"populations must have shape ({n_counties},)")
    t = np.arange(n_days, dtype=np.float64)
    doy = np.mod(t, DAYS_PER_YEAR)
    # (D, T): seasonality × trend × day-of-week reporting pattern (fewer on weekends)
    season = np.exp(
        prof.amplitude[:, None]
        * np.cos(2 * np.pi * (doy[None, :] - prof.peak_day[:, None]) / DAYS_PER_YEAR)
        + prof.trend[:, None] * (t[None, :] / DAYS_PER_YEAR)
    )
    season /= np.exp(
        prof.amplitude[:, None]
        * np.cos(
            2
            * np.pi
            * (np.arange(0, 365.25, 0.25)[None, :] - prof.peak_day[:, None])
            / DAYS_PER_YEAR
        )
    ).mean(axis=1, keepdims=True)
    weekday = np.array([1.08, 1.06, 1.04, 1.02, 1.0, 0.92, 0.88])
    weekday = weekday / weekday.mean()
    season *= weekday[np.arange(n_days) % 7][None, :]
    daily_rate = prof.rate / 1e5 / DAYS_PER_YEAR  # (D,)
    phi = np.ascontiguousarray(prof.phi, dtype=np.float64)
    if np.any(phi < 1.0):
        raise ValueError("phi (variance/mean) must be >= 1")
    season = np.ascontiguousarray(season)
    root = np.random.SeedSequence([seed, 0x4A710])
    children = root.spawn((n_counties + chunk_counties - 1) // chunk_counties)
    for k, start in enumerate(range(0, n_counties, chunk_counties)):
        stop = min(start + chunk_counties, n_counties)
        rng = np.random.default_rng(children[k])
        c = stop - start
        county_eff = np.exp(
            rng.normal(0.0, 1.0, (c, n_diseases)) * prof.county_sd[None, :]
            - 0.5 * prof.county_sd[None, :] ** 2
        )
        level = np.ascontiguousarray(pop[start:stop, None] * daily_rate[None, :] * county_eff)
        counts = np.empty((c, n_diseases, n_days), dtype=np.int32)
        # NB1 drawn cell by cell from μ = level × season (no (C, D, T) array of means)
        if _nb_national(level, season, phi, _numba_seed(rng), counts):
            mu = (level[:, :, None] * season[None, :, :]).reshape(-1)
            flat = counts.reshape(-1)
            _fill_far_tail(rng, mu, np.repeat(np.tile(phi, c), n_days), flat)
        yield CountChunk(start=start, counts=counts)


def write_national_npy(path: Path, **kwargs: int) -> tuple[int, ...]:
    """Write :func:`national_chunks` output to one ``.npy`` file (int32, C × D × T).

    The file is opened as a memory map and filled chunk by chunk, so memory stays bounded.
    Returns the array shape.
    """
    n_counties = int(kwargs.get("n_counties", 2900))
    n_diseases = int(kwargs.get("n_diseases", 40))
    n_days = int(kwargs.get("n_days", 3653))
    out = np.lib.format.open_memmap(
        path, mode="w+", dtype=np.int32, shape=(n_counties, n_diseases, n_days)
    )
    for chunk in national_chunks(**kwargs):  # type: ignore[arg-type]
        out[chunk.start : chunk.start + chunk.counts.shape[0]] = chunk.counts
    out.flush()
    del out
    return (n_counties, n_diseases, n_days)
