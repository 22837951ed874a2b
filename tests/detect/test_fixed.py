"""Fixed-threshold rules: single-case and N-cases-in-a-window signals."""

import numpy as np
import pytest

from yifang.detect.algorithms.fixed import CIDARS_SINGLE_CASE_DISEASES, fixed_threshold


def test_single_case_rule_signals_every_day_with_a_case():
    y = np.array([0, 0, 1, 0, 2, 0.0])
    res = fixed_threshold(y)
    np.testing.assert_array_equal(res.alarm, [False, False, True, False, True, False])
    np.testing.assert_array_equal(res.upperbound, np.ones(6))


def test_three_cases_in_seven_days():
    y = np.array([1, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0.0])
    res = fixed_threshold(y, threshold=3, window=7)
    assert res.range[0] == 6
    # Windows ending on 6..10 hold 2, 2, 2, 3, 2 cases.
    np.testing.assert_array_equal(res.observed, [2, 2, 2, 3, 2])
    np.testing.assert_array_equal(res.alarm, [False, False, False, True, False])


def test_threshold_per_series():
    y = np.array([[1, 1], [2, 2], [0, 5.0]])
    res = fixed_threshold(y, threshold=[1, 5])
    np.testing.assert_array_equal(res.alarm, [[True, False], [True, False], [False, True]])


def test_missing_days_count_as_no_cases():
    y = np.array([1, np.nan, 1, np.nan, np.nan])
    res = fixed_threshold(y, threshold=2, window=3)
    np.testing.assert_array_equal(res.observed, [2, 1, 1])
    np.testing.assert_array_equal(res.alarm, [True, False, False])
    res1 = fixed_threshold(y)
    assert np.isnan(res1.observed[1]) and not res1.alarm[1]


def test_early_days_in_an_explicit_range_are_nan():
    res = fixed_threshold(np.ones(10), threshold=2, window=3, range=[0, 5])
    assert np.isnan(res.observed[0]) and not res.alarm[0]
    assert res.alarm[1]


def test_cidars_single_case_list():
    assert "鼠疫" in CIDARS_SINGLE_CASE_DISEASES
    assert "霍乱" in CIDARS_SINGLE_CASE_DISEASES


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 0}, "positive"),
        ({"threshold": [1, 2, 3]}, "one value per series"),
        ({"window": 0}, "window"),
    ],
)
def test_bad_parameters_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fixed_threshold(np.ones((5, 2)), **kwargs)
