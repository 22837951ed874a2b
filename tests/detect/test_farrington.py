"""Unit checks of the Farrington methods, step by step as in R surveillance's own tests
(``tests/testthat/test-farringtonFlexible.R``), plus input handling and batching."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from yifang.detect import (
    NOUFAILY_2013,
    ORIGINAL_FARRINGTON,
    DetectionResult,
    farrington,
    farrington_flexible,
)
from yifang.detect.algorithms import _glm
from yifang.detect.algorithms.farrington import (
    _add_months,
    _delta_threshold,
    _flexible_baseline,
    _noufaily_threshold,
    _reference_points_flexible,
    _weights,
)


def _series(T: int = 420, S: int = 3, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None]
    mu = np.exp(1.5 + 0.5 * np.cos(2 * np.pi * t / 52) + 0.3 * np.arange(S)[None, :])
    return rng.negative_binomial(3, 3 / (3 + mu)).astype(float)


# --- threshold functions: R's hand-checked numbers -------------------------------------------


@pytest.mark.parametrize(
    ("power_trans", "upper", "prob", "score"),
    [
        ("none", 8.6926872, 0.0907246, 0.8124165),
        ("1/2", 9.3744842, 0.1189986, 0.6857951),
        ("2/3", 9.1154825, 0.1094727, 0.7289546),
    ],
)
def test_delta_threshold_matches_r_unit_test(power_trans, upper, prob, score):
    e = {"none": 1.0, "1/2": 0.5, "2/3": 2 / 3}[power_trans]
    mu0, se, phi, y = np.array([5.0]), np.array([0.2]), np.array([1.0]), 8.0
    ub, se_tr = _delta_threshold(mu0, se, phi, e, float(special.ndtri(0.95)))
    assert ub[0] == pytest.approx(upper, abs=1e-6)
    assert special.ndtr(-(y**e - 5.0**e) / se_tr[0]) == pytest.approx(prob, abs=1e-6)
    assert (y - 5.0) / (ub[0] - 5.0) == pytest.approx(score, abs=1e-6)


@pytest.mark.parametrize(
    ("method", "phi", "upper", "prob", "score"),
    [
        ("muan", 1.5, 24, 0.8597797, 0.4193982),
        ("muan", 1.0, 22, 0.9093099, 0.4605347),
        ("nbPlugin", 1.5, 10, 0.03763657, 1.11918153),
        ("nbPlugin", 1.0, 9, 0.01369527, 1.27061541),
    ],
)
def test_noufaily_threshold_matches_r_unit_test(method, phi, upper, prob, score):
    eta0, se, y, alpha = np.log(5.0), np.log(2.0), 11.0, 0.05
    mu0q = np.exp(eta0 + (special.ndtri(1 - alpha) * se if method == "muan" else 0.0))
    ub, p = _noufaily_threshold(np.array([mu0q]), np.array([phi]), np.array([y]), alpha)
    assert ub[0] == upper
    assert p[0] == pytest.approx(prob, abs=1e-6)
    assert (y - eta0) / (ub[0] - eta0) == pytest.approx(score, abs=1e-6)


# --- reference time points and seasonal blocks ----------------------------------------------


def test_reference_weeks_by_date_keep_the_weekday():
    days = np.arange(
        np.datetime64("1990-06-07"), np.datetime64("2015-01-01"), np.timedelta64(7, "D")
    ).astype(np.int64)
    k1 = int(np.flatnonzero(days == np.datetime64("2013-06-06").astype(np.int64))[0]) + 1
    refs = _reference_points_flexible(k1, 3, 52, days, "week").astype("datetime64[D]")
    expected = ["2013-06-06", "2012-06-07", "2011-06-09", "2010-06-03"]
    assert sorted(refs.astype(str)) == sorted(expected)


def test_reference_points_monthly_without_dates():
    assert _reference_points_flexible(48, 3, 12, None, "none").tolist() == [48, 36, 24, 12]


def test_a_year_back_from_29_february_is_1_march():
    d = np.array([np.datetime64("2016-02-29").astype(np.int64)])
    assert _add_months(d, -12).astype("datetime64[D]")[0] == np.datetime64("2015-03-01")


def test_blocks_have_the_windows_and_no_periods_levels():
    T, b, w = 1301, 3, 3
    base, _ = _flexible_baseline(1199, T, 52, b, w, 8, w, None)
    # reference windows (level p) hold b*(2w+1) rows; the current window is left out
    assert np.sum(base.level == 7) == b * (2 * w + 1)
    assert set(np.unique(base.level)) == set(range(8))
    sizes = np.bincount(base.level)[:-1]
    assert sizes.max() - sizes.min() <= b
    base1, _ = _flexible_baseline(1199, T, 52, b, w, 1, w, None)
    assert len(base1.rows) == b * (2 * w + 1)


def test_too_many_years_back_is_an_error():
    with pytest.raises(ValueError, match="reference time points did not exist"):
        farrington_flexible(_series(200, 1)[:, 0], range=[150], b=3)


# --- the GLM and the weights ----------------------------------------------------------------


def test_anscombe_weights_of_r_hand_checked_case():
    # R: s = c(0,0,0,0,0,2,2,2,2,2), threshold 0 -> 1.6 (first 5) and 0.4 (last 5)
    s = np.array([[0.0] * 5 + [2.0] * 5])
    ok = np.ones_like(s, dtype=bool)
    omega, bad = _weights(s, ok, 0.0)
    np.testing.assert_allclose(omega[0], [1.6] * 5 + [0.4] * 5)
    assert not bad[0]
    # everything at or below the threshold: all weights 1
    omega, _ = _weights(np.zeros((1, 10)), np.ones((1, 10), dtype=bool), 0.0)
    np.testing.assert_allclose(omega[0], 1.0)


def _dense_poisson_fit(y: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Newton-Raphson on the full design matrix, to machine precision (the textbook way)."""
    beta = np.linalg.lstsq(X, np.log(y + 0.5), rcond=None)[0]
    for _ in range(100):
        mu = np.exp(X @ beta)
        step = np.linalg.solve(X.T @ (mu[:, None] * X), X.T @ (y - mu))
        beta += step
        if np.max(np.abs(step)) < 1e-14:
            break
    return beta


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_irls_matches_a_dense_poisson_fit(engine):
    rng = np.random.default_rng(3)
    n = 40
    t = np.arange(n, dtype=float)
    level = np.repeat([0, 1], n // 2)
    y = rng.poisson(np.exp(1.0 + 0.02 * t + 0.5 * level)).astype(float)
    fits = _glm.fit_quasipoisson(
        y[None, :], np.ones((1, n)), level, 2, t, np.array([True]), None, engine=engine
    )
    beta = _dense_poisson_fit(y, np.column_stack([np.ones(n), level, t]))
    assert fits.converged[0]
    np.testing.assert_allclose(fits.beta_t[0], beta[2], rtol=1e-6)
    np.testing.assert_allclose(
        fits.mu[0], np.exp(np.column_stack([np.ones(n), level, t]) @ beta), rtol=1e-6
    )


def test_compiled_and_numpy_engines_agree():
    rng = np.random.default_rng(5)
    F, n, L = 50, 60, 3
    y = rng.negative_binomial(2, 0.3, (F, n)).astype(float)
    y[:5] = 0.0  # all-zero baselines: slow convergence
    prior = (rng.random((F, n)) > 0.1).astype(float)
    level = np.sort(rng.integers(0, L, n))
    t = np.arange(n, dtype=float) - n
    trend = rng.random(F) > 0.5
    offset = np.log(rng.uniform(1e4, 2e4, (F, n)))
    a = _glm.fit_quasipoisson(y, prior, level, L, t, trend, offset, engine="numba")
    b = _glm.fit_quasipoisson(y, prior, level, L, t, trend, offset, engine="numpy")
    np.testing.assert_array_equal(a.converged, b.converged)
    for name in ("mu", "W", "W_block", "z_bar", "beta_t"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-9, atol=1e-300)


# --- results: shapes, batching, invariants ---------------------------------------------------


def test_one_series_and_many_series_agree():
    y = _series()
    many = farrington_flexible(y, **NOUFAILY_2013)
    for j in range(y.shape[1]):
        one = farrington_flexible(y[:, j], **NOUFAILY_2013)
        np.testing.assert_allclose(one.upperbound, many.upperbound[:, j], rtol=1e-12)
        np.testing.assert_array_equal(one.alarm, many.alarm[:, j])


def test_threads_give_the_same_result():
    y = _series(S=5)
    a = farrington(y, range=np.arange(300, 420))
    b = farrington(y, range=np.arange(300, 420), n_jobs=2)
    np.testing.assert_array_equal(a.upperbound, b.upperbound)


def test_result_shapes_and_defaults():
    y = _series()
    res = farrington_flexible(y)
    assert isinstance(res, DetectionResult)
    assert res.range[0] == 52 * 5 + 3  # R: (freq*b + w + 1):n, 1-based
    assert res.upperbound.shape == (len(res.range), 3)
    assert set(res.extra) == {"score", "pvalue", "trend", "trend_vector", "mu0", "phi"}
    old = farrington(y)
    assert old.range[0] == 52 * 5 - 3 - 1  # R: (freq*b - w):n, 1-based
    assert old.expected is not None


def test_alarm_is_observed_above_upperbound_and_never_at_zero():
    y = _series(S=4)
    y[350:353, 1] += 40
    y[360, 2] = 0
    for res in (
        farrington_flexible(y, **ORIGINAL_FARRINGTON),
        farrington_flexible(y, **NOUFAILY_2013),
    ):
        obs = res.observed
        ok = ~np.isnan(res.upperbound)
        np.testing.assert_array_equal(res.alarm[ok], obs[ok] > res.upperbound[ok])
        assert not res.alarm[~ok].any()
        assert not res.alarm[obs == 0].any()
        assert res.alarm[:, 1].any()


def test_missing_baseline_counts_are_left_out():
    y = _series(S=1)[:, 0]
    y_na = y.copy()
    y_na[[150, 200]] = np.nan
    res = farrington(y_na, range=[360, 400])
    assert np.isfinite(res.upperbound).all()
    flex = farrington_flexible(y_na, range=[360, 400], **NOUFAILY_2013)
    assert np.isfinite(flex.upperbound).all()


def test_missing_current_count_gives_nan_and_no_alarm():
    y = _series(S=1)[:, 0]
    y[400] = np.nan
    res = farrington_flexible(y, range=[400, 401])
    assert np.isnan(res.upperbound[0]) and not res.alarm[0]
    assert np.isnan(res.upperbound[1])  # NA inside the limit54 window, as in R


def test_all_zero_series_has_no_alarm():
    y = np.zeros(420)
    res = farrington(y)
    assert not res.alarm.any()
    np.testing.assert_array_equal(res.upperbound, 0.0)  # R's value below limit54
    flex = farrington_flexible(y)
    assert not flex.alarm.any() and np.isnan(flex.upperbound).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"power_trans": "2/88"}, "power_trans"),
        ({"threshold_method": "quantile"}, "threshold_method"),
        ({"limit54": (5, 0)}, "limit54"),
        ({"alpha": 1.5}, "alpha"),
        ({"range": [500]}, "range"),
        ({"epoch": np.arange(3)}, "epoch"),
    ],
)
def test_bad_parameters_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        farrington_flexible(_series(), **kwargs)


def test_negative_counts_are_rejected():
    y = _series(S=1)[:, 0]
    y[10] = -1
    with pytest.raises(ValueError, match="non-negative"):
        farrington(y)


def test_population_offset_scales_expected_with_population():
    y = _series(S=1)[:, 0]
    pop = np.full(420, 1e5)
    a = farrington_flexible(y, population_offset=True, population=pop, range=[400])
    b = farrington_flexible(y, range=[400])
    np.testing.assert_allclose(a.expected, b.expected, rtol=1e-9)
    pop2 = pop.copy()
    pop2[400] = 2e5  # twice the population in the evaluated week: twice the expectation
    c = farrington_flexible(y, population_offset=True, population=pop2, range=[400])
    np.testing.assert_allclose(c.expected, 2 * b.expected, rtol=1e-9)
