"""stp_scan: the likelihood by hand, the scanning window's rules, invariances, injected
clusters, null behaviour, the detector adapter and bad input. SaTScan's own results are
compared in test_scan_satscan.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from yifang.detect import ScanResult, counts_from_cases, stp_scan
from yifang.detect.algorithms.scan import (
    _circles,
    _windows,
    lonlat_to_xyz,
    poisson_llr,
)

# ---------------------------------------------------------------------------------------------
# The likelihood and a tiny example worked by hand
# ---------------------------------------------------------------------------------------------

# days × locations; locations on a line at x = 0, 1, 10
TINY = np.array(
    [
        [1, 0, 2],
        [0, 1, 1],
        [1, 0, 2],
        [3, 2, 0],
    ]
)
TINY_XY = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0]])


def hand_llr(c: float, mu: float, C: float) -> float:
    return c * math.log(c / mu) + (C - c) * math.log((C - c) / (C - mu))


def test_poisson_llr_matches_the_formula_and_is_zero_for_low_rates():
    assert poisson_llr(3, 25 / 13, 13) == pytest.approx(hand_llr(3, 25 / 13, 13), rel=1e-14)
    assert poisson_llr(3, 25 / 13, 13) == pytest.approx(0.311269, abs=1e-6)  # by hand
    assert poisson_llr(1, 2.0, 13) == 0.0  # fewer cases than expected
    assert poisson_llr(13, 6.5, 13) == pytest.approx(13 * math.log(2))  # C − c = 0


def test_tiny_example_by_hand():
    # C = 13, C_z = (5, 3, 5), C_d = (3, 2, 3, 5). At most 6.5 cases per circle, so each
    # circle holds its centre only. Windows end on day 3 and last 1 or 2 days:
    #   location 0: day 3 → c=3, μ=5·5/13; days 2-3 → c=4, μ=5·8/13
    #   location 1: day 3 → c=2, μ=3·5/13; days 2-3 → c=2, μ=3·8/13
    #   location 2: no high rate
    result = stp_scan(TINY, TINY_XY, max_days=2, n_replicates=0)
    first, second = result.clusters
    assert (first.centre, list(first.locations), first.start, first.end) == (0, [0], 3, 3)
    assert first.observed == 3
    assert first.expected == pytest.approx(25 / 13)
    assert first.llr == pytest.approx(hand_llr(3, 25 / 13, 13), rel=1e-12)
    assert first.observed_over_expected == pytest.approx(3 * 13 / 25)
    assert (second.centre, list(second.locations), second.start, second.end) == (1, [1], 3, 3)
    assert second.llr == pytest.approx(hand_llr(2, 15 / 13, 13), rel=1e-12)
    assert second.llr == pytest.approx(0.284904, abs=1e-6)  # by hand
    assert first.radius == 0.0 and first.days == 1
    assert result.total_cases == 13 and result.analysis_day == 3
    assert math.isnan(first.p_value)


def test_min_cases_excludes_single_case_cylinders():
    obs = np.zeros((5, 3), dtype=int)
    obs[:4, 2] = 1
    obs[4, 0] = 1  # one case alone on the last day: a high rate, but a single case
    result = stp_scan(obs, TINY_XY, max_days=1, n_replicates=0)
    assert result.clusters == ()
    result = stp_scan(obs, TINY_XY, max_days=1, n_replicates=0, min_cases=1)
    assert result.primary is not None and list(result.primary.locations) == [0]


def test_analysis_day_cuts_the_study_period():
    full = stp_scan(TINY, TINY_XY, max_days=2, n_replicates=0)
    cut = stp_scan(
        np.vstack([TINY, [[9, 9, 9]]]), TINY_XY, max_days=2, n_replicates=0, analysis_day=3
    )
    assert cut.analysis_day == 3
    assert [c.llr for c in cut.clusters] == [c.llr for c in full.clusters]


# ---------------------------------------------------------------------------------------------
# The scanning window
# ---------------------------------------------------------------------------------------------


def test_circles_grow_by_distance_up_to_the_share_of_cases():
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [6.0, 0.0]])
    C_z = np.array([2, 2, 2, 4])
    circles = _circles(pts, C_z, max_cases=5.0, max_radius=None)
    # about 0: 0 (2), 1 (4) — adding 2 would make 6 > 5
    assert list(circles.order[0, : circles.n_neighbours[0]]) == [0, 1]
    # about 3: its own 4 cases, then 2 would exceed 5
    assert list(circles.order[3, : circles.n_neighbours[3]]) == [3]
    assert list(circles.P[0, :2]) == [2, 4]
    circles = _circles(pts, C_z, max_cases=10.0, max_radius=1.5)
    assert list(circles.n_neighbours) == [2, 2, 1, 1]


def test_a_location_over_the_share_cannot_centre_or_join_a_circle():
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    circles = _circles(pts, np.array([1, 8, 1]), max_cases=5.0, max_radius=None)
    assert list(circles.n_neighbours) == [1, 0, 1]


def test_distance_ties_enter_in_coordinate_order():
    # four neighbours at distance 1 around the origin; points sorted lexicographically
    pts = np.array([[-1.0, 0.0], [0.0, -1.0], [0.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    circles = _circles(pts, np.ones(5, dtype=int), max_cases=5, max_radius=None)
    assert list(circles.order[2]) == [2, 0, 1, 3, 4]


def test_windows_prospective_and_retrospective_in_scanning_order():
    starts, ends = _windows(5, 1, 3, "prospective")
    assert list(zip(starts, ends, strict=True)) == [(4, 4), (3, 4), (2, 4)]
    starts, ends = _windows(3, 1, 2, "retrospective")
    assert list(zip(starts, ends, strict=True)) == [(0, 0), (1, 1), (0, 1), (2, 2), (1, 2)]


def test_lonlat_uses_satscan_sphere():
    xyz = lonlat_to_xyz([0.0, 90.0], [0.0, 0.0])
    assert xyz[0] == pytest.approx([6367.0, 0.0, 0.0])
    assert np.linalg.norm(xyz[0] - xyz[1]) == pytest.approx(6367.0 * math.sqrt(2))


def test_identical_coordinates_are_one_location():
    obs = np.zeros((10, 4), dtype=int)
    obs[:, 3] = 1
    obs[9, 0] = 2
    obs[9, 1] = 2
    xy = np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 0.0], [9.0, 0.0]])
    result = stp_scan(obs, xy, max_days=1, n_replicates=0)
    assert sorted(result.primary.locations) == [0, 1]
    assert result.primary.observed == 4


def test_max_radius_in_km_for_lonlat():
    # two places about 1.1 km apart (0.01° of latitude), a third far away
    lonlat = np.array([[116.40, 39.90], [116.40, 39.91], [116.60, 40.10]])
    obs = np.zeros((20, 3), dtype=int)
    obs[:, 2] = 2
    obs[19, :2] = 3
    wide = stp_scan(obs, lonlat, coordinates_type="lonlat", max_days=1, n_replicates=0)
    assert sorted(wide.primary.locations) == [0, 1]
    assert wide.primary.radius == pytest.approx(1.111, abs=0.01)
    narrow = stp_scan(
        obs, lonlat, coordinates_type="lonlat", max_days=1, n_replicates=0, max_radius=1.0
    )
    assert len(narrow.primary.locations) == 1


# ---------------------------------------------------------------------------------------------
# Simulated data: invariances, engines, an injected cluster, the null
# ---------------------------------------------------------------------------------------------


def grid(n: int) -> np.ndarray:
    return np.array([[x, y] for x in range(n) for y in range(n)], dtype=float)


def simulate(rng: np.random.Generator, n_side: int = 7, days: int = 90, rate: float = 0.3):
    xy = grid(n_side)
    obs = rng.poisson(rate, size=(days, n_side * n_side))
    return obs, xy


@pytest.fixture(scope="module")
def outbreak():
    """7×7 grid, 90 days of background; 2 extra cases a day at the centre and its four
    nearest neighbours on the last 3 days."""
    rng = np.random.default_rng(11)
    obs, xy = simulate(rng)
    centre = 24  # (3, 3)
    members = [centre, 17, 23, 25, 31]  # (2,3), (3,2), (3,4), (4,3)
    obs[-3:, members] += 2
    result = stp_scan(obs, xy, max_days=7, n_replicates=199, seed=1)
    return obs, xy, members, result


def test_injected_cluster_is_found(outbreak):
    obs, _, members, result = outbreak
    primary = result.primary
    assert primary.centre == 24
    assert sorted(primary.locations) == sorted(members)
    assert (primary.start, primary.end) == (obs.shape[0] - 3, obs.shape[0] - 1)
    assert primary.p_value == pytest.approx(1 / 200)
    assert primary.recurrence_interval == pytest.approx(200)
    assert primary.observed == obs[-3:, members].sum()


def test_secondary_clusters_do_not_overlap_and_fall_in_llr(outbreak):
    _, _, _, result = outbreak
    seen: set[int] = set()
    for cl in result.clusters:
        assert seen.isdisjoint(cl.locations.tolist())
        seen |= set(cl.locations.tolist())
    llrs = [cl.llr for cl in result.clusters]
    assert llrs == sorted(llrs, reverse=True)
    assert all(cl.p_value < 1 for cl in result.clusters)


def test_relabelling_locations_changes_nothing_but_labels(outbreak):
    obs, xy, _, result = outbreak
    perm = np.random.default_rng(5).permutation(obs.shape[1])
    relabelled = stp_scan(obs[:, perm], xy[perm], max_days=7, n_replicates=199, seed=1)
    assert len(relabelled.clusters) == len(result.clusters)
    for a, b in zip(result.clusters, relabelled.clusters, strict=True):
        assert sorted(perm[b.locations]) == sorted(a.locations)
        assert perm[b.centre] == a.centre
        assert (b.start, b.end, b.observed) == (a.start, a.end, a.observed)
        assert b.llr == pytest.approx(a.llr, rel=1e-12)
        assert b.p_value == a.p_value  # the permutations do not depend on the labels


def test_seed_reproduces_and_generator_accepted(outbreak):
    obs, xy, _, result = outbreak
    again = stp_scan(obs, xy, max_days=7, n_replicates=199, seed=1)
    np.testing.assert_array_equal(again.simulated_llr, result.simulated_llr)
    gen = stp_scan(obs, xy, max_days=7, n_replicates=199, seed=np.random.default_rng(1))
    np.testing.assert_array_equal(gen.simulated_llr, result.simulated_llr)
    threaded = stp_scan(obs, xy, max_days=7, n_replicates=199, seed=1, workers=3)
    np.testing.assert_array_equal(threaded.simulated_llr, result.simulated_llr)


@pytest.mark.parametrize("analysis", ["prospective", "retrospective"])
def test_numba_and_numpy_engines_agree(analysis):
    rng = np.random.default_rng(3)
    obs, xy = simulate(rng, n_side=5, days=40, rate=0.5)
    kwargs = dict(analysis=analysis, max_days=5, n_replicates=19, seed=9)
    a = stp_scan(obs, xy, engine="numba", **kwargs)
    b = stp_scan(obs, xy, engine="numpy", **kwargs)
    np.testing.assert_allclose(a.simulated_llr, b.simulated_llr, rtol=1e-10)
    assert [(c.centre, c.start, c.end, c.observed) for c in a.clusters] == [
        (c.centre, c.start, c.end, c.observed) for c in b.clusters
    ]
    np.testing.assert_allclose([c.llr for c in a.clusters], [c.llr for c in b.clusters])


def test_null_p_values_are_roughly_uniform():
    rng = np.random.default_rng(2024)
    p = []
    for r in range(30):
        obs, xy = simulate(rng, n_side=4, days=30, rate=0.4)
        result = stp_scan(obs, xy, max_days=5, n_replicates=99, seed=r)
        p.append(result.primary.p_value if result.primary else 1.0)
    assert stats.kstest(p, "uniform").pvalue > 0.01
    assert np.mean(np.array(p) <= 0.05) <= 0.2


# ---------------------------------------------------------------------------------------------
# The detector adapter
# ---------------------------------------------------------------------------------------------


def test_detection_result_flags_the_cluster_members(outbreak):
    obs, _, members, result = outbreak
    det = result.to_detection_result(alpha=0.05)
    S = obs.shape[1]
    assert det.range.tolist() == [obs.shape[0] - 1]
    assert det.alarm.shape == det.observed.shape == det.upperbound.shape == (1, S)
    assert sorted(np.flatnonzero(det.alarm[0])) == sorted(members)
    known = ~np.isnan(det.upperbound)
    np.testing.assert_array_equal(det.alarm[known], det.observed[known] > det.upperbound[known])
    assert (det.observed[0, members] == result.primary.observed).all()
    assert (det.extra["cluster"][0, members] == 0).all()
    assert det.extra["p_value"][0, members[0]] == result.primary.p_value
    outside = np.setdiff1d(np.arange(S), np.concatenate([c.locations for c in result.clusters]))
    np.testing.assert_array_equal(det.observed[0, outside], obs[-1, outside])
    assert det.method == "stp_scan" and det.params["alpha"] == 0.05


def test_critical_llr_matches_p_value_rule(outbreak):
    _, _, _, result = outbreak
    crit = result.critical_llr(0.05)
    sims = result.simulated_llr
    # a cluster just above the critical value has p <= 0.05, one at it has p > 0.05
    assert (1 + np.sum(sims >= crit + 1e-6)) / (sims.size + 1) <= 0.05
    assert (1 + np.sum(sims >= crit)) / (sims.size + 1) > 0.05
    few = ScanResult((), np.zeros(9), 0, 0, np.zeros(1), np.zeros(1))
    assert math.isnan(few.critical_llr(0.05))


# ---------------------------------------------------------------------------------------------
# Edge cases and bad input
# ---------------------------------------------------------------------------------------------


def test_no_cases_gives_no_clusters():
    result = stp_scan(np.zeros((10, 3)), TINY_XY)
    assert result.clusters == () and result.primary is None
    det = result.to_detection_result()
    assert not det.alarm.any()


def test_max_days_longer_than_the_data_is_cut():
    result = stp_scan(TINY, TINY_XY, max_days=30, n_replicates=0)
    assert result.params["max_days"] == 4


@pytest.mark.parametrize(
    ("observed", "coords", "kwargs", "message"),
    [
        (np.array([1, 2, 3]), TINY_XY, {}, "shape \\(T, S\\)"),
        (np.array([[1.0, np.nan, 0.0]]), TINY_XY, {}, r"observed\[0, 1\]"),
        (np.array([[1, -1, 0]]), TINY_XY, {}, r"observed\[0, 1\]"),
        (np.array([[1, 0.5, 0]]), TINY_XY, {}, "whole numbers"),
        (TINY, TINY_XY[:2], {}, "coordinates must have shape \\(3, 2\\)"),
        (TINY, np.array([[0, 0], [np.inf, 0], [1, 1]]), {}, r"coordinates\[1\]"),
        (
            TINY,
            np.array([[0, 0], [200, 0], [1, 1]]),
            {"coordinates_type": "lonlat"},
            r"coordinates\[1\]",
        ),
        (TINY, TINY_XY, {"coordinates_type": "utm"}, "coordinates_type"),
        (TINY, TINY_XY, {"max_share": 0.8}, "max_share"),
        (TINY, TINY_XY, {"max_radius": 0}, "max_radius"),
        (TINY, TINY_XY, {"max_days": 0}, "min_days"),
        (TINY, TINY_XY, {"analysis_day": 4}, "analysis_day"),
        (TINY, TINY_XY, {"analysis": "both"}, "analysis"),
        (TINY, TINY_XY, {"n_replicates": -1}, "n_replicates"),
        (TINY, TINY_XY, {"min_cases": 0}, "min_cases"),
        (TINY, TINY_XY, {"engine": "cuda"}, "engine"),
        (TINY, TINY_XY, {"workers": 0}, "workers"),
    ],
)
def test_bad_input_is_named(observed, coords, kwargs, message):
    with pytest.raises(ValueError, match=message):
        stp_scan(observed, coords, **{"n_replicates": 0, **kwargs})


def test_counts_from_cases():
    counts = counts_from_cases([0, 2, 2, 1], [0, 0, 3, 3], n_locations=3, n_days=4)
    assert counts.shape == (4, 3)
    assert counts[0].tolist() == [1, 0, 1] and counts[3].tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match="case 1: location 5"):
        counts_from_cases([0, 5], [0, 0], n_locations=3, n_days=4)
    with pytest.raises(ValueError, match="differ in length"):
        counts_from_cases([0, 1], [0], n_locations=3, n_days=4)
