"""The count generators: moments, seasonality, determinism, the national chunks."""

from __future__ import annotations

import numpy as np
import pytest

from yifang.simulate.counts import (
    Harmonic,
    national_chunks,
    negative_binomial,
    seasonal_factor,
    weekly_mean,
    write_national_npy,
)


@pytest.mark.parametrize(("mu", "phi"), [(0.3, 1.0), (4.0, 1.0), (2.0, 3.0), (25.0, 1.5)])
def test_negative_binomial_mean_and_variance_ratio(mu: float, phi: float) -> None:
    rng = np.random.default_rng(1)
    y = negative_binomial(rng, np.full(200_000, mu), phi)
    # mean within 4 standard errors; variance/mean within 5 %
    se = np.sqrt(phi * mu / y.size)
    assert abs(y.mean() - mu) < 4 * se
    assert y.var() / y.mean() == pytest.approx(phi, rel=0.05)


def test_negative_binomial_zero_mean_and_bad_input() -> None:
    rng = np.random.default_rng(0)
    assert negative_binomial(rng, np.zeros(10), 2.0).sum() == 0
    with pytest.raises(ValueError, match="phi"):
        negative_binomial(rng, np.ones(3), 0.5)
    with pytest.raises(ValueError, match="mu"):
        negative_binomial(rng, np.array([1.0, -1.0]), 1.0)


def test_seasonal_factor_has_mean_one_and_peaks_where_configured() -> None:
    days = np.arange(0, 365.25, 0.25)
    s = seasonal_factor(days, [Harmonic(0.8, 150.0)])
    assert s.mean() == pytest.approx(1.0, rel=1e-6)
    assert abs(days[np.argmax(s)] - 150.0) <= 0.25
    two = seasonal_factor(days, [Harmonic(0.5, 30.0, order=2)])
    second = seasonal_factor(np.array([30.0 + 365.25 / 2]), [Harmonic(0.5, 30.0, order=2)])
    assert second[0] == pytest.approx(two.max(), rel=1e-9)


def test_weekly_mean_is_the_noufaily_linear_predictor() -> None:
    t = np.array([1.0, 13.0, 26.0])
    expected = np.exp(
        1.5 + 0.003 * t + 0.2 * np.cos(2 * np.pi * t / 52) - 0.4 * np.sin(2 * np.pi * t / 52)
    )
    assert weekly_mean(t, 1.5, 0.003, (0.2,), (-0.4,)) == pytest.approx(expected)


def test_national_chunks_shape_determinism_and_rates() -> None:
    kw = {"n_counties": 50, "n_diseases": 6, "n_days": 730, "seed": 3, "chunk_counties": 16}
    a = list(national_chunks(**kw))
    b = list(national_chunks(**kw))
    assert [c.start for c in a] == [0, 16, 32, 48]
    full = np.concatenate([c.counts for c in a])
    assert full.shape == (50, 6, 730)
    assert np.array_equal(full, np.concatenate([c.counts for c in b]))
    assert full.dtype == np.int32 and full.min() >= 0
    other = np.concatenate([c.counts for c in national_chunks(**{**kw, "seed": 4})])
    assert not np.array_equal(full, other)


def test_write_national_npy(tmp_path) -> None:
    path = tmp_path / "national.npy"
    shape = write_national_npy(
        path, n_counties=10, n_diseases=3, n_days=40, seed=1, chunk_counties=4
    )
    arr = np.load(path)
    assert arr.shape == shape == (10, 3, 40)
    again = np.concatenate(
        [
            c.counts
            for c in national_chunks(
                n_counties=10, n_diseases=3, n_days=40, seed=1, chunk_counties=4
            )
        ]
    )
    assert np.array_equal(arr, again)


@pytest.mark.parametrize(
    ("mu", "phi"), [(0.05, 2.0), (0.8, 1.0), (3.0, 3.0), (12.0, 1.5), (40.0, 4.0), (900.0, 1.2)]
)
def test_negative_binomial_follows_the_nb_distribution(mu: float, phi: float) -> None:
    """Chi-square goodness of fit against scipy's NB(r = μ/(φ−1), p = 1/φ) (Poisson if φ = 1)."""
    from scipy import stats

    rng = np.random.default_rng(11)
    n = 100_000
    y = negative_binomial(rng, np.full(n, mu), phi)
    dist = stats.poisson(mu) if phi == 1.0 else stats.nbinom(mu / (phi - 1.0), 1.0 / phi)
    # bins with an expected count of at least 20, tails pooled
    lo, hi = int(dist.ppf(1e-6)), int(dist.ppf(1 - 1e-6)) + 1
    ks = np.arange(lo, hi + 1)
    expected = dist.pmf(ks) * n
    keep = expected >= 20
    edges = ks[keep]
    observed = np.array([np.sum(y == k) for k in edges], dtype=float)
    exp_in = expected[keep]
    rest_obs = n - observed.sum()
    rest_exp = n - exp_in.sum()
    obs_all = np.append(observed, rest_obs)
    exp_all = np.append(exp_in, rest_exp)
    if rest_exp < 5:  # nothing left to pool
        obs_all, exp_all = observed, exp_in * observed.sum() / exp_in.sum()
    stat, p = stats.chisquare(obs_all, exp_all)
    assert p > 1e-4, (mu, phi, stat)


def test_negative_binomial_far_tail_uses_the_mixture_with_the_same_moments() -> None:
    rng = np.random.default_rng(2)
    y = negative_binomial(rng, np.full(50_000, 5000.0), 1.5)  # P(0) underflows
    assert abs(y.mean() - 5000.0) < 4 * np.sqrt(1.5 * 5000.0 / y.size)
    assert y.var() / y.mean() == pytest.approx(1.5, rel=0.05)


def test_negative_binomial_broadcasts_and_is_reproducible() -> None:
    mu = np.array([[0.5, 2.0, 8.0]])
    phi = np.array([[1.0], [2.5]])
    a = negative_binomial(np.random.default_rng(5), mu, phi)
    b = negative_binomial(np.random.default_rng(5), mu, phi)
    assert a.shape == (2, 3) and a.dtype == np.int64
    assert np.array_equal(a, b)


def test_national_counts_have_the_configured_variance_to_mean_ratio() -> None:
    """Counties of one chunk share μ's shape: pool (count − μ)² / μ by disease."""
    from yifang.simulate.counts import NationalProfile

    d = 3
    prof = NationalProfile(
        rate=np.array([500.0, 2000.0, 5000.0]),
        amplitude=np.zeros(d),
        peak_day=np.zeros(d),
        trend=np.zeros(d),
        phi=np.array([1.0, 2.0, 3.5]),
        county_sd=np.zeros(d),
    )
    pop = np.full(200, 400_000.0)
    counts = np.concatenate(
        [c.counts for c in national_chunks(200, d, 365, seed=4, profiles=prof, populations=pop)]
    ).astype(float)
    weekday = np.array([1.08, 1.06, 1.04, 1.02, 1.0, 0.92, 0.88])
    weekday = weekday / weekday.mean()
    mu = (pop[0] * prof.rate / 1e5 / 365.25)[:, None] * weekday[np.arange(365) % 7][None, :]
    for j in range(d):
        y = counts[:, j, :]
        assert y.mean() == pytest.approx(mu[j].mean(), rel=0.01)
        ratio = ((y - mu[j]) ** 2).sum() / (mu[j].sum() * y.shape[0])
        assert ratio == pytest.approx(prof.phi[j], rel=0.03), j
