"""The engine in parts: series sources, batches, the screen, incremental runs.

One simulated set of daily counts (two diseases × three townships in two counties, 1,000 days
of Poisson counts) is stored as cards; the same counts summed to counties are also given as
an array, so the card table and the count array must give the same alarms.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from yifang.cases.models import Card
from yifang.catalog.models import Disease, Organisation, Region
from yifang.detect import algorithms
from yifang.detect.config import load_config, parse_config
from yifang.detect.engine import (
    BatchJob,
    CardSource,
    CountArraySource,
    SeriesSource,
    evaluate_batch,
    history_days,
    may_alarm,
    plan_rules,
    run_detection,
    series_params,
)
from yifang.detect.models import DetectionRun, Signal

AS_OF = date(2026, 6, 30)
N_DAYS = 1000
FIRST = AS_OF - timedelta(days=N_DAYS - 1)
DISEASES = ("TDIS", "TDIS2")
TOWNSHIPS = ("640502100", "640521100", "640521101")
COUNTIES = ("640502", "640521")

RULES: list[dict[str, Any]] = [
    {
        "name": "mpm-county",
        "method": "mpm",
        "match": {"codes": list(DISEASES)},
        "params": {"default_percentile": 70, "years_back": 1, "min_cases": 2},
        "level": "county",
        "granularity": "day",
        "history_years": 1,
    },
    {
        "name": "noufaily-county",
        "method": "farrington_flexible",
        "match": {"codes": list(DISEASES)},
        "params": {
            "b": 1,
            "w": 3,
            "no_periods": 10,
            "past_weeks_not_included": 26,
            "threshold_method": "nbPlugin",
            "alpha": 0.05,
        },
        "level": "county",
        "granularity": "week",
        "history_years": 1,
    },
    {
        "name": "ears-township",
        "method": "ears_c",
        "match": {"codes": list(DISEASES)},
        "params": {"method": "C3", "alpha": 0.01},
        "level": "township",
        "granularity": "day",
        "history_years": 1,
    },
]
CONFIG = parse_config({"rules": RULES})


def simulated_counts(seed: int = 7) -> np.ndarray:
    """Daily counts (township, disease, day) with a two-week cluster near the end."""
    rng = np.random.default_rng(seed)
    rate = rng.uniform(0.2, 1.2, (len(TOWNSHIPS), len(DISEASES), 1))
    counts = rng.poisson(rate, (len(TOWNSHIPS), len(DISEASES), N_DAYS))
    counts[1, 0, -12:] += rng.poisson(3.0, 12)
    return counts.astype(np.int32)


def _reference(session: Session) -> None:
    for code, name, level, parent in (
        ("64", "宁夏回族自治区", 1, None),
        ("6405", "中卫市", 2, "64"),
        ("640502", "沙坡头区", 3, "6405"),
        ("640521", "中宁县", 3, "6405"),
        ("640502100", "滨河镇", 4, "640502"),
        ("640521100", "宁安镇", 4, "640521"),
        ("640521101", "鸣沙镇", 4, "640521"),
    ):
        session.merge(Region(code=code, name=name, level=level, parent_code=parent))
    session.merge(
        Organisation(code="T-ORG", name="测试医院", kind="hospital", region_code="640521")
    )
    session.merge(Disease(code="TDIS", name_zh="测试病", name_en="Test disease", disease_class="C"))
    session.merge(
        Disease(code="TDIS2", name_zh="测试病二", name_en="Test disease 2", disease_class="B")
    )
    session.flush()


def _cards(counts: np.ndarray, days: Iterable[int], tag: str = "H") -> list[dict[str, Any]]:
    rows = []
    for r, township in enumerate(TOWNSHIPS):
        for d, disease in enumerate(DISEASES):
            for t in days:
                day = FIRST + timedelta(days=int(t))
                for i in range(int(counts[r, d, t])):
                    rows.append(
                        {
                            "card_number": f"{tag}{d}{township}{day:%Y%m%d}{i:03d}",
                            "patient_name": "张三",
                            "sex": "1",
                            "residence_category": "1",
                            "address_code": township,
                            "occupation": "18",
                            "classification": "3",
                            "onset_date": day,
                            "diagnosis_time": datetime.combine(day, datetime.min.time())
                            + timedelta(hours=9),
                            "disease_code": disease,
                            "org_code": "T-ORG",
                            "doctor_name": "李医生",
                            "fill_date": day,
                            "status": "reviewed",
                        }
                    )
    return rows


def _county_counts(counts: np.ndarray) -> np.ndarray:
    """Township counts summed to the counties of COUNTIES."""
    return np.stack(
        [
            counts[[i for i, t in enumerate(TOWNSHIPS) if t.startswith(c)]].sum(axis=0)
            for c in COUNTIES
        ]
    )


@pytest.fixture()
def city(session: Session) -> tuple[Session, np.ndarray]:
    _reference(session)
    counts = simulated_counts()
    session.execute(insert(Card), _cards(counts, range(N_DAYS)))
    session.commit()
    return session, counts


def alarms_of(
    source: SeriesSource,
    rule_name: str,
    batch_size: int,
    days: int = 1,
    as_of: date = AS_OF,
    screen: bool = True,
) -> list[Any]:
    """Every alarm of one rule of CONFIG, through the batch runner."""
    rule = next(r for r in CONFIG.rules if r.name == rule_name)
    batches = source.batches(
        rule,
        DISEASES,
        as_of=as_of,
        history_days=history_days(rule, days),
        batch_size=batch_size,
    )
    periods = max(1, -(-days // (7 if rule.granularity == "week" else 1)))
    out = []
    for b in batches:
        out.extend(evaluate_batch(BatchJob(rule, b, periods, {}, screen=screen)).alarms)
    return out


@pytest.mark.parametrize("rule_name", ["mpm-county", "noufaily-county", "ears-township"])
def test_batch_size_does_not_change_alarms(
    city: tuple[Session, np.ndarray], rule_name: str
) -> None:
    session, _ = city
    source = CardSource(session)
    whole = alarms_of(source, rule_name, batch_size=1000, days=60)
    assert whole, "the simulated set should alarm somewhere in 60 days"
    assert alarms_of(source, rule_name, batch_size=1, days=60) == whole
    assert alarms_of(source, rule_name, batch_size=2, days=60) == whole
    # fitting every series gives the same alarms as fitting only those the screen keeps
    assert alarms_of(source, rule_name, batch_size=1000, days=60, screen=False) == whole


@pytest.mark.parametrize("rule_name", ["mpm-county", "noufaily-county"])
def test_count_array_gives_the_alarms_of_the_card_table(
    city: tuple[Session, np.ndarray], rule_name: str, tmp_path: Path
) -> None:
    session, counts = city
    county = _county_counts(counts)
    # the array's batches run region by region, the card table's disease by disease
    from_cards = _by_key(alarms_of(CardSource(session), rule_name, batch_size=3, days=60))
    in_memory = CountArraySource(DISEASES, COUNTIES, FIRST, counts=county)
    assert _by_key(alarms_of(in_memory, rule_name, batch_size=3, days=60)) == from_cards
    path = tmp_path / "county.npy"
    np.save(path, county)
    on_disk = CountArraySource.from_npy(path, diseases=DISEASES, regions=COUNTIES, first_day=FIRST)
    assert _by_key(alarms_of(on_disk, rule_name, batch_size=3, days=60)) == from_cards


def _by_key(alarms: list[Any]) -> list[Any]:
    return sorted(alarms, key=lambda a: (a.disease_code, a.region_code, a.day))


def test_count_array_before_its_first_day_is_unknown_not_zero() -> None:
    counts = np.ones((1, 1, 30), dtype=np.int32)
    source = CountArraySource(["TDIS"], ["640521"], FIRST, counts=counts)
    rule = CONFIG.rules[0]
    (batch,) = source.batches(
        rule, ["TDIS"], as_of=FIRST + timedelta(days=29), history_days=40, batch_size=10
    )
    block = batch.load()
    assert block.counts.shape == (40, 1)
    assert np.isnan(block.counts[:10]).all() and (block.counts[10:] == 1).all()
    with pytest.raises(ValueError, match="outside the counts"):
        source.batches(
            rule, ["TDIS"], as_of=AS_OF + timedelta(days=400), history_days=40, batch_size=1
        )
    with pytest.raises(ValueError, match="shape"):
        CountArraySource(["TDIS", "X"], ["640521"], FIRST, counts=counts)


def test_run_from_a_count_array_records_signals(city: tuple[Session, np.ndarray]) -> None:
    session, counts = city
    county_rules = parse_config({"rules": [r for r in RULES if r["level"] == "county"]})
    source = CountArraySource(DISEASES, COUNTIES, FIRST, counts=_county_counts(counts))
    report = run_detection(
        session, as_of=AS_OF, days=30, config=county_rules, source=source, batch_size=2
    )
    signals = session.scalars(select(Signal)).all()
    assert report.series == 2 * len(COUNTIES) * len(DISEASES)
    assert report.signals_new == len(signals) > 0
    assert ("TDIS", "640521") in {(s.disease_code, s.region_code) for s in signals}
    # a township rule has no series in a county array: skipped, not wrong
    skipped = run_detection(session, as_of=AS_OF, config=CONFIG, source=source)
    assert skipped.skipped_rules == ["ears-township"]


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("mpm", {"years_back": 1, "min_cases": 3, "percentile": 50}),
        ("mpm", {"years_back": 1, "min_cases": 1, "percentile": 0}),
        ("fixed_threshold", {"threshold": 3, "window": 7}),
        ("farrington_flexible", {"b": 1, "w": 2, "alpha": 0.2}),
        ("ears_c", {"method": "C3", "alpha": 0.2}),
        ("ears_c", {"method": "C1"}),
    ],
)
def test_screened_out_series_never_alarm(method: str, params: dict[str, Any]) -> None:
    """The screen is exact: the method run on every series alarms only where it kept one."""
    rng = np.random.default_rng(3)
    T, S = 500, 400
    counts = rng.poisson(rng.uniform(0.0, 1.0, S), (T, S)).astype(np.float64)
    counts[rng.random((T, S)) < 0.01] = np.nan
    rule = parse_config({"rules": [{"name": "r", "method": method, "params": params}]}).rules[0]
    eval_idx = np.arange(T - 30, T)
    keep = may_alarm(rule, counts, eval_idx, params)
    result = getattr(algorithms, method)(counts, range=eval_idx, **params)
    alarm = np.asarray(result.alarm, dtype=bool)
    assert alarm.any() and not keep.all()
    assert not alarm[:, ~keep].any()


def test_mpm_gets_each_disease_its_percentile() -> None:
    rule = next(r for r in load_config().rules if r.method == "mpm")
    params = series_params(rule, [("A", "1"), ("B", "1")], {"A": "猩红热", "B": "无此病"})
    assert list(params["percentile"]) == [90.0, float(rule.params["default_percentile"])]


def test_incremental_run_evaluates_only_touched_series_as_a_full_run_would(
    city: tuple[Session, np.ndarray],
) -> None:
    """After an import, the series it touches get the signals a full run gives them."""
    session, counts = city
    # The history ends the day before; the import brings day AS_OF for one disease and
    # township only. The detection of the day before is the previous finished run.
    session.execute(
        delete(Card).where(Card.diagnosis_time >= datetime.combine(AS_OF, datetime.min.time()))
    )
    session.commit()
    run_detection(session, as_of=AS_OF - timedelta(days=1), config=CONFIG)
    session.commit()
    signalled = {(s.disease_code, s.region_code) for s in session.scalars(select(Signal))}
    # touch a township whose series have no signal yet, so a full run only adds signals
    d, r = next(
        (d, r)
        for d in range(len(DISEASES))
        for r in range(len(TOWNSHIPS))
        if not {(DISEASES[d], TOWNSHIPS[r]), (DISEASES[d], TOWNSHIPS[r][:6])} & signalled
    )
    touched = {(DISEASES[d], TOWNSHIPS[r]), (DISEASES[d], TOWNSHIPS[r][:6])}
    today = np.zeros_like(counts)
    today[r, d, N_DAYS - 1] = 9  # an obvious cluster
    session.execute(insert(Card), _cards(today, [N_DAYS - 1], tag="N"))
    session.commit()

    full = run_detection(session, as_of=AS_OF, config=CONFIG)
    expected = _signals(session, touched)
    assert expected, "the cluster should alarm"
    for sig in session.scalars(select(Signal).where(Signal.run_id == full.run_id)):
        if (sig.disease_code, sig.region_code) in touched:
            session.delete(sig)
    session.get_one(DetectionRun, full.run_id).status = "discarded"
    session.commit()

    inc = run_detection(session, as_of=AS_OF, config=CONFIG, incremental=True)
    # one series per rule: the county series (two rules) and the township series
    assert inc.series == 3 < full.series
    assert _signals(session, touched) == expected


def _signals(session: Session, keys: set[tuple[str, str]]) -> list[tuple[Any, ...]]:
    return sorted(
        (
            s.rule,
            s.disease_code,
            s.region_code,
            s.first_date,
            s.last_date,
            s.status,
            s.observed,
            s.upperbound,
            s.expected,
            s.explanation_zh,
            repr(s.series),
        )
        for s in session.scalars(select(Signal))
        if (s.disease_code, s.region_code) in keys
    )


def test_incremental_series_count_every_subtype(session: Session) -> None:
    """A touched sub-type brings its whole legal disease, not only itself, into the run."""
    config = load_config()
    diseases = session.scalars(select(Disease).where(Disease.active.is_(True))).all()
    series_of = {
        x.code: x.parent_code
        for x in diseases
        if x.parent_code and x.parent_code in config.aggregate_to_parent
    }
    child, parent = next(iter(sorted(series_of.items())))
    siblings = sorted(c for c, p in series_of.items() if p == parent)
    plans = plan_rules(config, diseases, series_of, {(parent, "640521100")})
    assert plans
    for _, codes in plans:
        assert set(siblings) | {parent} <= set(codes)
        assert child in codes


def test_progress_reports_batches(city: tuple[Session, np.ndarray]) -> None:
    session, _ = city
    seen: list[tuple[str, int, int]] = []
    run_detection(
        session,
        as_of=AS_OF,
        config=CONFIG,
        batch_size=2,
        progress=lambda name, k, n: seen.append((name, k, n)),
    )
    assert ("mpm-county", 0, 2) in seen and ("mpm-county", 2, 2) in seen
    assert ("ears-township", 3, 3) in seen
    with pytest.raises(ValueError, match="batch_size"):
        run_detection(session, as_of=AS_OF, config=CONFIG, batch_size=0)


def test_cli_runs_in_batches(city: tuple[Session, np.ndarray]) -> None:
    from typer.testing import CliRunner

    from yifang.cli import app

    runner = CliRunner()
    args = ["detect", "run", "--as-of", AS_OF.isoformat()]
    done = runner.invoke(app, [*args, "--batch-size", "2"])
    assert done.exit_code == 0, done.output
    assert "fitted" in done.output
    bad = runner.invoke(app, [*args, "--dask", "local:x"])
    assert bad.exit_code == 2 and "number of workers" in bad.output
