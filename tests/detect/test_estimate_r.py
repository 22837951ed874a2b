"""estimate_r against R EpiEstim::estimate_R (fixtures by fixtures/make_epiestim.R)."""

import json
from pathlib import Path

import numpy as np
import pytest

from yifang.detect.algorithms.epiestim import discr_si, estimate_r

FIXTURE = Path(__file__).parent / "fixtures" / "epiestim" / "estimate_R.json"
CASES = json.loads(FIXTURE.read_text())["cases"]
COLUMNS = [
    "mean",
    "std",
    "quantile_0_025",
    "quantile_0_05",
    "quantile_0_25",
    "median",
    "quantile_0_75",
    "quantile_0_95",
    "quantile_0_975",
]


def _num(v):
    """R values as written by jsonlite (na="string"): "NA", "NaN", "Inf", "-Inf"."""
    return np.nan if v is None or v == "NA" else float(v)


def _array(rows):
    return np.array([[_num(v) for v in row] for row in rows], dtype=float)


def _run(case, incid=None):
    return estimate_r(
        _array(case["incid"]) if incid is None else incid,
        mean_si=case["mean_si"],
        std_si=case["std_si"],
        si_distr=case["si_distr"],
        t_start=case["t_start"],
        t_end=case["t_end"],
        mean_prior=case["mean_prior"],
        std_prior=case["std_prior"],
        imported=None if case["imported"] is None else _array(case["imported"]),
    )


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_matches_r_estimate_r(case):
    res = _run(case)
    np.testing.assert_array_equal(res.t_start, case["t_start_out"])
    np.testing.assert_array_equal(res.t_end, case["t_end_out"])
    n = len(case["si_used"])
    np.testing.assert_allclose(res.si_distr[:n], case["si_used"], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose([res.si_mean, res.si_std], case["si_moments"], rtol=1e-6)
    for column in COLUMNS:
        expected = _array(case[column])
        actual = getattr(res, column)
        np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=column)
        np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-12, err_msg=column)


def test_flu2009_example_values_from_epiestim_snapshots():
    # EpiEstim's tests/testthat/_snaps/estimate_R.md, Example 1 and Example 3, window (2, 8).
    case = next(c for c in CASES if c["name"] == "flu2009_example1_nonparametric")
    res = _run(case)
    assert res.mean[0, 0] == pytest.approx(1.7356089, rel=1e-7)
    assert res.std[0, 0] == pytest.approx(0.40908694, rel=1e-7)
    assert res.quantile_0_025[0, 0] == pytest.approx(1.02863184, rel=1e-7)
    assert res.quantile_0_975[0, 0] == pytest.approx(2.6244959, rel=1e-7)
    flu = np.array(case["incid"], dtype=float)[:, 0]
    res3 = estimate_r(flu, mean_si=2.6, std_si=1.5, t_start=range(1, 26), t_end=range(7, 32))
    assert res3.mean[0] == pytest.approx(1.7357977, rel=1e-7)
    assert res3.std[0] == pytest.approx(0.40913143, rel=1e-7)


def test_missing_days_count_as_zero():
    case = next(c for c in CASES if c["name"] == "sim_parametric")
    incid = _array(case["incid"])
    with_nan = incid.copy()
    zeroed = incid.copy()
    with_nan[[9, 10, 29], 0] = np.nan
    zeroed[[9, 10, 29], 0] = 0
    a, b = _run(case, with_nan), _run(case, zeroed)
    np.testing.assert_array_equal(a.mean, b.mean)


def test_one_series_gives_one_dimensional_columns_and_dict():
    res = estimate_r(np.arange(1.0, 21.0), mean_si=3.0, std_si=1.0)
    assert res.mean.shape == (13,)
    table = res.as_dict()
    assert list(table)[:4] == ["t_start", "t_end", "mean", "std"]


def test_discr_si_sums_to_one_and_starts_at_zero():
    w = discr_si(np.arange(60), 6.48, 3.83)
    assert w[0] == 0
    assert w.sum() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mean_si": 1.0, "std_si": 1.0}, "mean_si"),
        ({"mean_si": 3.0, "std_si": 0.0}, "std_si"),
        ({}, "mean_si and std_si"),
        ({"si_distr": [0.5, 0.5]}, "si_distr\\[0\\]"),
        ({"si_distr": [0, 0.5]}, "sum to 1"),
        ({"mean_si": 3.0, "std_si": 1.0, "t_start": [0], "t_end": [5]}, "t_start"),
        ({"mean_si": 3.0, "std_si": 1.0, "t_start": [5], "t_end": [3]}, "<= t_end"),
        ({"mean_si": 3.0, "std_si": 1.0, "t_start": [1, 2], "t_end": [5]}, "same length"),
        ({"mean_si": 3.0, "std_si": 1.0, "mean_prior": 0}, "prior"),
    ],
)
def test_bad_parameters_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        estimate_r(np.ones(20), **kwargs)


def test_negative_counts_rejected():
    with pytest.raises(ValueError, match="non-negative"):
        estimate_r(np.array([1.0, 2, -1, 3, 4, 5, 6, 7, 8]), mean_si=3.0, std_si=1.0)
