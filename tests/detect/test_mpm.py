"""Moving percentile method: hand-computed examples and an independent loop implementation
of the published definition (there is no reference implementation to compare with)."""

import numpy as np
import pytest

from yifang.detect.algorithms.mpm import CIDARS_MPM_PERCENTILES, mpm

SMALL = {"period_length": 2, "year_length": 10, "years_back": 2, "periods_each_side": 1}


def test_hand_computed_small_geometry():
    # y_t = t, so X_t = y_{t-1} + y_t = 2t - 1. Baseline of t = 25: X at 25-12, 25-10, 25-8
    # (one "year" back, periods -1, 0, +1) and 25-22, 25-20, 25-18: 25, 29, 33, 5, 9, 13.
    # Sorted 5, 9, 13, 25, 29, 33: P50 = 13 + 0.5 * (25 - 13) = 19; P90 = 29 + 0.5 * 4 = 31.
    y = np.arange(30.0)
    res = mpm(y, percentile=50, range=[25], **SMALL)
    assert res.observed[0] == 49
    assert res.upperbound[0] == pytest.approx(19)
    assert res.expected[0] == pytest.approx(19)
    assert res.alarm[0]
    res90 = mpm(y, percentile=90, range=[25], **SMALL)
    assert res90.upperbound[0] == pytest.approx(31)


def test_default_range_starts_with_the_first_full_baseline():
    y = np.zeros(40)
    res = mpm(y, **SMALL)
    assert res.range[0] == 2 * 10 + 1 * 2 + 2 - 1


def test_zero_baseline_signals_from_the_first_case_only():
    y = np.zeros(30)
    y[29] = 1
    res = mpm(y, percentile=90, range=[28, 29], **SMALL)
    np.testing.assert_array_equal(res.upperbound, [0, 0])
    np.testing.assert_array_equal(res.alarm, [False, True])
    assert not mpm(y, range=[29], min_cases=2, **SMALL).alarm[0]


def test_reaching_versus_exceeding_the_threshold():
    # Baseline values all 2 (one case on every odd day), current period 2.
    y = np.tile([0.0, 1.0], 15)
    assert mpm(y, range=[29], **SMALL).alarm[0]
    assert not mpm(y, range=[29], inclusive=False, **SMALL).alarm[0]


def _loop_mpm(y, t, q, P=7, Y=365, b=3, w=2):
    """The published definition written out day by day, for one series."""

    def period(end):
        return sum(y[end - P + 1 : end + 1])

    baseline = [period(t - i * Y + j * P) for i in range(1, b + 1) for j in range(-w, w + 1)]
    return period(t), float(np.percentile(baseline, q))


def test_agrees_with_a_loop_over_the_definition_on_three_years_of_daily_data():
    rng = np.random.default_rng(11)
    T = 3 * 365 + 60
    y = rng.poisson(rng.uniform(0.2, 5, 6), (T, 6)).astype(float)
    q = np.array([50, 60, 70, 80, 90, 90])
    res = mpm(y, percentile=q)
    assert res.upperbound.shape == (T - (3 * 365 + 14 + 6), 6)
    for row in (0, 17, res.range.size - 1):
        for s in range(6):
            X, threshold = _loop_mpm(y[:, s], int(res.range[row]), q[s])
            assert res.observed[row, s] == X
            assert res.upperbound[row, s] == pytest.approx(threshold)
            assert res.alarm[row, s] == (threshold <= X and X >= 1)


def test_missing_days_and_early_days_give_nan_and_no_signal():
    y = np.ones(30)
    y[12] = np.nan  # inside the baseline period ending on 13 (= 25 - 12)
    res = mpm(y, range=[5, 25, 29], **SMALL)
    assert np.isnan(res.upperbound[0]) and not res.alarm[0]
    assert np.isnan(res.upperbound[1]) and not res.alarm[1]
    assert res.upperbound[2] == 2


def test_weekly_variant_five_weeks_by_five_years():
    rng = np.random.default_rng(5)
    y = rng.poisson(3, 6 * 52).astype(float)
    res = mpm(y, period_length=1, year_length=52, years_back=5, periods_each_side=2)
    assert res.range[0] == 5 * 52 + 2
    _, threshold = _loop_mpm(y, int(res.range[3]), 50, P=1, Y=52, b=5, w=2)
    assert res.upperbound[3] == pytest.approx(threshold)


def test_national_thresholds_table():
    assert CIDARS_MPM_PERCENTILES["细菌性和阿米巴性痢疾"] == 50
    assert CIDARS_MPM_PERCENTILES["麻疹"] == 90
    assert len(CIDARS_MPM_PERCENTILES) == 19


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"percentile": 120}, "between 0 and 100"),
        ({"period_length": 0}, "period_length"),
        ({"periods_each_side": -1}, "periods_each_side"),
        ({"year_length": 2}, "year_length must exceed"),
        ({"range": [99]}, "range"),
    ],
)
def test_bad_parameters_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mpm(np.ones(40), **{**SMALL, **kwargs})


def test_other_percentile_definitions_follow_numpy():
    rng = np.random.default_rng(12)
    y = rng.poisson(2, (40, 3)).astype(float)
    res = mpm(y, percentile=[30, 60, 85], percentile_method="inverted_cdf", **SMALL)
    for s, q in enumerate([30, 60, 85]):
        t = int(res.range[-1])
        X = y[:, s][1:] + y[:, s][:-1]  # X[t] is at index t - 1
        base = [X[t - 1 - off] for off in (12, 10, 8, 22, 20, 18)]
        assert res.upperbound[-1, s] == np.percentile(base, q, method="inverted_cdf")
