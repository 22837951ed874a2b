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


def test_city_scores_match_signals_to_injected_outbreaks(session) -> None:  # type: ignore[no-untyped-def]
    from datetime import date

    from yifang.detect.models import Signal
    from yifang.evaluate import evaluate_city
    from yifang.simulate.models import SimOutbreak, SimRun

    run = SimRun(
        city_code="640500",
        seed=1,
        start_date=date(2026, 1, 1),
        end_date=date(2026, 6, 30),
        digest="x",
    )
    session.add(run)
    session.flush()
    session.add(
        SimOutbreak(
            run_id=run.id,
            number=1,
            kind="kindergarten",
            disease_code="HFMD",
            region_code="640521100",
            townships=["640521100"],
            start_date=date(2026, 5, 1),
            end_date=date(2026, 5, 20),
            extra_cases=20,
            reported_cases=18,
        )
    )
    for region, day in (("640521", date(2026, 5, 6)), ("640502", date(2026, 5, 6))):
        session.add(
            Signal(
                disease_code="HFMD",
                region_code=region,
                region_level="county",
                granularity="day",
                rule="moving-percentile",
                method="mpm",
                first_date=day,
                last_date=day,
                observed=9,
            )
        )
    session.flush()
    scores = {
        s.rule: s for s in evaluate_city(session, start=date(2026, 1, 1), end=date(2026, 6, 30))
    }
    mpm = scores["moving-percentile"]
    assert (mpm.detected, mpm.outbreaks, mpm.false_signals) == (1, 1, 1)
    assert mpm.median_days_to_signal == 5
    assert scores["single-case"].outbreaks == 0  # HFMD is not a single-case disease
