"""The Noufaily et al. (2013) design: the scenario table, baselines and outbreaks."""

from __future__ import annotations

import numpy as np
import pytest

from yifang.simulate.noufaily import (
    BASELINE_WEEKS,
    CURRENT_WEEKS,
    N_WEEKS,
    scenarios,
    simulate,
    simulate_many,
)


def test_scenario_table_order_and_values() -> None:
    rows = scenarios()
    assert len(rows) == 42
    assert len(scenarios(harmonics=(0, 1))) == 28
    s14 = rows[13]
    assert (s14.theta, s14.beta, s14.gamma1, s14.gamma2, s14.m, s14.phi) == (
        1.5,
        0.0,
        0.2,
        -0.4,
        1,
        1.0,
    )
    # within a set: trend off m=0,1,2 then trend on m=0,1,2
    assert [(r.trend, r.m) for r in rows[:6]] == [
        (False, 0),
        (False, 1),
        (False, 2),
        (True, 0),
        (True, 1),
        (True, 2),
    ]
    assert rows[0].gamma1 == 0.0 and rows[1].gamma1 == 0.6
    assert rows[41].theta == 5.0 and rows[41].beta == 0.0001 and rows[41].phi == 1.2
    assert [r.number for r in rows] == list(range(1, 43))


def test_simulate_is_reproducible_and_outbreaks_are_placed_as_designed() -> None:
    sc = scenarios()[13]
    a, b = simulate(sc, seed=7), simulate(sc, seed=7)
    assert np.array_equal(a.observed, b.observed)
    assert not np.array_equal(a.observed, simulate(sc, seed=7, replicate=1).observed)
    assert a.observed.shape == (N_WEEKS,)
    past = [o for o in a.outbreaks if not o.current]
    current = [o for o in a.outbreaks if o.current]
    assert len(past) == 4 and len(current) == 1
    for o in past:
        assert BASELINE_WEEKS[0] <= o.start <= BASELINE_WEEKS[1] and o.k in (2, 3, 5, 10)
    assert CURRENT_WEEKS[0] <= current[0].start <= CURRENT_WEEKS[1]
    assert current[0].weeks.max(initial=0) <= CURRENT_WEEKS[1]
    assert a.outbreak_cases.sum() == sum(int(o.cases.sum()) for o in a.outbreaks)
    assert np.array_equal(a.observed - a.baseline, a.outbreak_cases)


@pytest.mark.parametrize("number", [1, 14, 24, 30])
def test_baseline_mean_and_dispersion_match_the_scenario(number: int) -> None:
    sc = scenarios()[number - 1]
    runs = simulate_many(sc, n_series=200, seed=11)
    base = np.stack([r.baseline for r in runs])  # (200, 624)
    mu = sc.mean(np.arange(1, N_WEEKS + 1))
    # pooled over weeks: mean of (y - mu) ~ 0, and Σ(y-mu)² / Σmu ~ φ
    resid = base - mu[None, :]
    assert abs(resid.mean()) < 4 * np.sqrt(sc.phi * mu.mean() / base.size)
    assert (resid**2).sum() / (mu.sum() * base.shape[0]) == pytest.approx(sc.phi, rel=0.05)


def test_outbreak_size_scales_with_k_and_sd() -> None:
    sc = scenarios()[24]  # set 5, θ 2.5, φ 3
    sizes, expected = [], []
    for i in range(300):
        run = simulate(sc, seed=5, replicate=i)
        for o in run.outbreaks:
            if not o.current:
                sizes.append(o.size)
                expected.append(o.k * np.sqrt(sc.phi * sc.mean(np.array([o.start]))[0]))
    assert np.mean(sizes) == pytest.approx(np.mean(expected), rel=0.05)
