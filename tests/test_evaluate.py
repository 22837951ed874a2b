"""`yifang evaluate` scores methods on the Noufaily scenarios."""

from __future__ import annotations

from pathlib import Path

import pytest

from yifang.evaluate import evaluate_noufaily, plot_curves, summarise


def test_scores_are_rates_and_noufaily_alarms_less_often() -> None:
    rows = evaluate_noufaily(("farrington", "noufaily"), [14], n_series=20, alphas=(0.05,))
    assert len(rows) == 2
    for r in rows:
        assert 0 <= r.fpr <= 1 and 0 <= r.pod <= 1
    by = {r.method: r for r in rows}
    # The negative-binomial threshold of the improved method alarms less on quiet weeks.
    assert by["noufaily"].fpr <= by["farrington"].fpr


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown methods"):
        evaluate_noufaily(("no_such",), [1], n_series=5)


def test_plot_is_written(tmp_path: Path) -> None:
    rows = evaluate_noufaily(("noufaily",), [1], n_series=5, alphas=(0.01, 0.1))
    path = plot_curves(summarise(rows), tmp_path / "curve.png")
    assert path.stat().st_size > 1000
