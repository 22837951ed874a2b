"""CUSUM against R surveillance::algo.cusum (fixtures by fixtures/make_cusum.R)."""

import json
from pathlib import Path

import numpy as np
import pytest

from yifang.detect.algorithms.cusum import _hypgeom2f1_special, cusum

FIXTURE = Path(__file__).parent / "fixtures" / "cusum" / "algo_cusum.json"
CASES = json.loads(FIXTURE.read_text())["cases"]


def _num(v):
    """R values as written by jsonlite (na="string"): "NA", "NaN", "Inf", "-Inf"."""
    return np.nan if v is None or v == "NA" else float(v)


def _array(rows):
    return np.array([[_num(v) for v in row] for row in rows], dtype=float)


def _close(actual, expected):
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_matches_r_algo_cusum(case):
    res = cusum(
        _array(case["observed"]),
        k=case["k"],
        h=case["h"],
        m=case["m"],
        trans=case["trans"],
        alpha=case["alpha"],
        start=case["start"],
        range=case["range"],
    )
    _close(res.upperbound, _array(case["upperbound"]))
    _close(res.extra["cusum"], _array(case["cusum"]))
    _close(res.expected, _array(case["expected"]))
    np.testing.assert_array_equal(res.alarm, _array(case["alarm"]) == 1)


def test_hypergeometric_table_lookup_matches_direct_values_on_grid():
    from scipy.special import hyp2f1

    z = np.array([0.0, -0.5, -3.0, -10.0, -20.0, -100.0])
    np.testing.assert_allclose(_hypgeom2f1_special(z), hyp2f1(1 / 3, 2 / 3, 5 / 3, z))
    assert np.isnan(_hypgeom2f1_special(np.array([-150.0]))[0])


def test_vector_m_per_time_point_and_one_dimensional_input():
    y = np.array([3, 4, 2, 9, 12, 15, 3.0])
    res = cusum(y, m=np.full(7, 4.0))
    assert res.alarm.shape == (7,)
    assert res.alarm[4]
    assert res.range.tolist() == list(range(7))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"trans": "log"}, "trans"),
        ({}, "needs range"),
        ({"m": "poisson", "range": [5]}, "'glm'"),
        ({"m": np.ones(3), "range": [5, 6]}, "broadcast"),
    ],
)
def test_bad_parameters_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cusum(np.ones(10), **kwargs)
