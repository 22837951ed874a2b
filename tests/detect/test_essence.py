"""ESSENCE EWMA, adaptive regression and switch against CDC's Rnssp (fixtures by
fixtures/make_essence.R, run on Rnssp's own R code)."""

import json
from pathlib import Path

import numpy as np
import pytest

from yifang.detect.algorithms.essence import adaptive_regression, essence_switch, ewma

FIXTURE = Path(__file__).parent / "fixtures" / "essence" / "rnssp.json"
CASES = json.loads(FIXTURE.read_text())["cases"]


def _num(v):
    """R values as written by jsonlite (na="string"): "NA", "NaN", "Inf", "-Inf"."""
    return np.nan if v is None or v == "NA" else float(v)


def _array(rows):
    return np.array([[_num(v) for v in row] for row in rows], dtype=float)


def _strings(rows):
    return np.array([["" if v in (None, "NA") else v for v in row] for row in rows])


def _close(actual, expected, atol=1e-9):
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=atol)


def _compare(res, ref, scale=1.0):
    _close(res.expected / scale, _array(ref["expected"]))
    _close(res.extra["test_statistic"], _array(ref["test_statistic"]))
    # p-values are 1 - pt(...) in R: absolute precision only near 0.
    _close(res.extra["p_value"], _array(ref["p_value"]), atol=1e-12)
    np.testing.assert_array_equal(res.extra["alert"], _strings(ref["alert"]))
    np.testing.assert_array_equal(res.alarm, _strings(ref["alert"]) == "red")


def _cases_with(detector):
    return [c for c in CASES if detector in c]


@pytest.mark.parametrize("case", _cases_with("ewma"), ids=lambda c: c["name"])
def test_ewma_matches_rnssp(case):
    res = ewma(_array(case["observed"]), b=case["B"], g=case["g"], w1=case["w1"], w2=case["w2"])
    _compare(res, case["ewma"], scale=res.extra["scale"])


@pytest.mark.parametrize("case", _cases_with("regression"), ids=lambda c: c["name"])
def test_regression_matches_rnssp(case):
    res = adaptive_regression(
        _array(case["observed"]), b=case["B"], g=case["g"], start_weekday=case["start_weekday"]
    )
    ref = case["regression"]
    _compare(res, ref)
    _close(res.extra["sigma"], _array(ref["sigma"]))
    _close(res.extra["adjusted_r_squared"], _array(ref["adjusted_r_squared"]))


@pytest.mark.parametrize("case", _cases_with("switch"), ids=lambda c: c["name"])
def test_switch_matches_rnssp(case):
    observed = _array(case["observed"])
    kwargs = {"b": case["B"], "g": case["g"], "w1": case["w1"], "w2": case["w2"]}
    res = essence_switch(observed, start_weekday=case["start_weekday"], **kwargs)
    ref = case["switch"]
    scale = np.where(res.extra["detector"] == "ewma", ewma(observed, **kwargs).extra["scale"], 1)
    _compare(res, ref, scale=scale)
    detector = _strings(ref["detector"])
    detector = np.where(detector == "EWMA", "ewma", detector)
    detector = np.where(detector == "Adaptive Multiple Regression", "regression", detector)
    np.testing.assert_array_equal(res.extra["detector"], detector)


def test_upperbound_is_the_count_where_p_reaches_one_percent():
    rng = np.random.default_rng(3)
    y = rng.poisson(20, (80, 3)).astype(float)
    for detector in (ewma, adaptive_regression):
        res = detector(y)
        t = 60
        bumped = y.copy()
        bumped[t] = res.upperbound[t] + 1e-6
        assert np.all(detector(bumped).extra["p_value"][t] < 0.01)
        bumped[t] = res.upperbound[t] - 1e-3
        assert np.all(detector(bumped).extra["p_value"][t] >= 0.01)


def test_missing_day_gives_grey_not_an_error():
    y = np.random.default_rng(4).poisson(10, 60).astype(float)
    y[40] = np.nan
    res = essence_switch(y)
    assert res.extra["alert"][40] == "grey"
    assert not res.alarm[40]
    assert (res.extra["alert"][45:] != "").all()


@pytest.mark.parametrize(
    ("func", "kwargs", "message"),
    [
        (ewma, {"b": 5}, "at least 7"),
        (ewma, {"g": -1}, "guard band"),
        (ewma, {"b": 70}, "not enough historical data"),
        (adaptive_regression, {"b": 30}, "multiple of 7"),
        (adaptive_regression, {"b": 7}, "at least 14"),
        (adaptive_regression, {"start_weekday": 0}, "ISO weekday"),
    ],
)
def test_bad_parameters_raise_clear_errors(func, kwargs, message):
    with pytest.raises(ValueError, match=message):
        func(np.ones(60), **kwargs)
