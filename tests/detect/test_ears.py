"""EARS C1/C2/C3 against R surveillance::earsC (fixtures by fixtures/make_ears.R)."""

import json
from pathlib import Path

import numpy as np
import pytest

from yifang.detect.algorithms.ears import ears_c

FIXTURE = Path(__file__).parent / "fixtures" / "ears" / "earsC.json"
CASES = json.loads(FIXTURE.read_text())["cases"]


def _num(v):
    """R values as written by jsonlite (na="string"): "NA", "NaN", "Inf", "-Inf"."""
    return np.nan if v is None or v == "NA" else float(v)


def _array(rows):
    return np.array([[_num(v) for v in row] for row in rows], dtype=float)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_matches_r_earsc(case):
    observed = _array(case["observed"])
    res = ears_c(
        observed,
        method=case["method"],
        baseline=case["baseline"],
        alpha=case["alpha"],
        min_sigma=case["min_sigma"],
        range=case["range"],
    )
    np.testing.assert_array_equal(res.range, case["range_out"])
    expected_ub = _array(case["upperbound"])
    np.testing.assert_array_equal(np.isnan(res.upperbound), np.isnan(expected_ub))
    np.testing.assert_allclose(res.upperbound, expected_ub, rtol=1e-6, atol=1e-9)
    r_alarm = _array(case["alarm"])
    np.testing.assert_array_equal(res.alarm, r_alarm == 1)


def test_one_dimensional_input_gives_one_dimensional_output():
    y = np.arange(20.0)
    res = ears_c(y)
    assert res.upperbound.shape == (13,)
    assert res.range[0] == 7


def test_salmnewport_2011_first_upperbounds_from_package_tests():
    # surveillance's own test-earsC.R: first four C1 upper bounds for Germany 2011.
    case = next(c for c in CASES if c["name"] == "salmNewport_germany_C1_2011")
    res = ears_c(_array(case["observed"])[:, 0], alpha=0.05, range=case["range"])
    np.testing.assert_allclose(
        res.upperbound[:4], [3.278854, 3.278854, 3.436517, 3.855617], atol=1e-6
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"baseline": 2}, "at least 3"),
        ({"min_sigma": -2}, "min_sigma"),
        ({"baseline": 1500}, "too short"),
        ({"method": "C4"}, "method"),
        ({"alpha": 1.5}, "alpha"),
    ],
)
def test_bad_parameters_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ears_c(np.ones(30), **kwargs)


def test_c3_single_day_range_works():
    # R's earsC fails for C3 with a one-day range; here it is an ordinary evaluation.
    rng = np.random.default_rng(1)
    y = rng.poisson(5, (40, 3)).astype(float)
    full = ears_c(y, method="C3")
    one = ears_c(y, method="C3", range=[30])
    np.testing.assert_allclose(one.upperbound[0], full.upperbound[30 - 11])


@pytest.mark.parametrize("method", ["C1", "C2", "C3"])
def test_non_contiguous_range_equals_the_same_days_of_a_full_run(method):
    rng = np.random.default_rng(2)
    y = rng.poisson(4, (60, 2)).astype(float)
    full = ears_c(y, method=method, range=np.arange(20, 60))
    days = [21, 30, 31, 45, 59]
    part = ears_c(y, method=method, range=days)
    np.testing.assert_allclose(part.upperbound, full.upperbound[np.array(days) - 20])
