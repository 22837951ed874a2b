"""Scoring rules on hand-made examples."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from yifang.detect.evaluation import RaisedSignal, TrueOutbreak, score_series, score_signals


def test_score_series_by_hand() -> None:
    mask = np.array([0, 0, 1, 1, 0, 0, 1, 0], bool)
    alarm = np.array([1, 0, 0, 1, 0, 0, 0, 0], bool)
    s = score_series(alarm, mask)
    assert s.outbreaks == 2
    assert s.pod == 0.5  # the first outbreak is found in its second period
    assert s.mean_delay == 1.0
    assert s.fpr == pytest.approx(1 / 5)
    assert s.sensitivity == pytest.approx(1 / 3)


def test_score_series_many_series_and_ids() -> None:
    mask = np.array([[1, 0], [1, 1], [0, 1]], bool)
    ids = np.array([[1, 0], [2, 1], [0, 1]])
    alarm = np.array([[0, 0], [1, 0], [0, 0]], bool)
    s = score_series(alarm, mask, ids)
    assert s.outbreaks == 3 and s.pod == pytest.approx(1 / 3)


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="shape"):
        score_series(np.zeros(3, bool), np.zeros(4, bool))


def test_score_signals_matches_nesting_regions_and_dates() -> None:
    outbreaks = [
        TrueOutbreak("HFMD", ("640521100",), date(2026, 5, 1), date(2026, 5, 20)),
        TrueOutbreak("MEASLES", ("640502101",), date(2026, 3, 1), date(2026, 3, 10)),
    ]
    signals = [
        RaisedSignal("HFMD", "640521", date(2026, 5, 4)),  # county signal over the township
        RaisedSignal("HFMD", "640502", date(2026, 5, 4)),  # other county: false
        RaisedSignal("MEASLES", "640502101", date(2026, 4, 1)),  # too late: false
    ]
    s = score_signals(signals, outbreaks, region_weeks=200)
    assert (s.detected, s.false_signals) == (1, 2)
    assert s.pod == 0.5
    assert s.median_days_to_signal == 3
    assert s.false_per_100_region_weeks == 1.0
