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
