"""The engine counts cards into series, runs the rules and merges repeated alarms."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from yifang.cases.models import Card
from yifang.catalog.models import Disease, Organisation, Region
from yifang.core.jurisdiction import Scope
from yifang.detect import algorithms, service
from yifang.detect.algorithms.result import DetectionResult, as_counts, as_range, squeeze
from yifang.detect.config import parse_config
from yifang.detect.engine import build_series, run_detection
from yifang.detect.models import Signal

AS_OF = date(2026, 6, 30)


def _reference(session: Session) -> None:
    session.merge(Region(code="64", name="宁夏回族自治区", level=1))
    session.merge(Region(code="6405", name="中卫市", level=2, parent_code="64"))
    for county, name in (("640502", "沙坡头区"), ("640521", "中宁县")):
        session.merge(Region(code=county, name=name, level=3, parent_code="6405"))
    session.merge(Region(code="640521100", name="宁安镇", level=4, parent_code="640521"))
    session.merge(Region(code="640502100", name="滨河镇", level=4, parent_code="640502"))
    session.merge(
        Organisation(code="T-ORG", name="测试医院", kind="hospital", region_code="640521")
    )
    session.merge(Disease(code="TDIS", name_zh="测试病", name_en="Test disease", disease_class="C"))
    session.flush()


def _card(n: int, day: date, township: str) -> Card:
    return Card(
        card_number=f"T{township}{day:%Y%m%d}{n:04d}",
        patient_name="张三",
        sex="1",
        residence_category="1",
        address_code=township,
        occupation="18",
        classification="3",
        onset_date=day,
        diagnosis_time=datetime.combine(day, datetime.min.time()) + timedelta(hours=9),
        disease_code="TDIS",
        org_code="T-ORG",
        doctor_name="李医生",
        fill_date=day,
        status="reviewed",
    )


def _above_two(observed: Any, *, range: Any = None, limit: float = 2.0) -> DetectionResult:
    x, one_d = as_counts(observed)
    idx = as_range(range, x.shape[0], 0)
    ub = np.full((idx.size, x.shape[1]), limit)
    obs = x[idx]
    return DetectionResult(
        range=idx,
        observed=squeeze(obs, one_d),
        upperbound=squeeze(ub, one_d),
        alarm=squeeze(obs > ub, one_d),
        expected=squeeze(np.ones_like(ub), one_d),
        method="above_two",
    )


CONFIG = parse_config(
    {
        "rules": [
            {
                "name": "test-rule",
                "method": "above_two",
                "match": {"codes": ["TDIS"]},
                "level": "township",
                "granularity": "day",
                "history_years": 1,
                "close_after": 2,
            }
        ]
    }
)


@pytest.fixture()
def seeded(session: Session, monkeypatch: pytest.MonkeyPatch) -> Session:
    monkeypatch.setattr(algorithms, "above_two", _above_two, raising=False)
    _reference(session)
    cards = []
    # 中宁 宁安镇: 5 cases on each of the last 3 days (one signal), 1 case 20 days back.
    for k in range(3):
        cards += [_card(i, AS_OF - timedelta(days=k), "640521100") for i in range(5)]
    cards.append(_card(0, AS_OF - timedelta(days=20), "640521100"))
    # 沙坡头 滨河镇: 4 cases 10 days back only (a signal that has gone quiet).
    cards += [_card(i, AS_OF - timedelta(days=10), "640502100") for i in range(4)]
    session.add_all(cards)
    session.commit()
    return session


def test_build_series_counts_per_region_and_day(seeded: Session) -> None:
    block = build_series(
        seeded,
        disease_codes=["TDIS"],
        level="county",
        granularity="day",
        as_of=AS_OF,
        history_days=30,
    )
    s = block.keys.index(("TDIS", "640521"))
    assert block.counts.shape == (30, 2)
    assert block.period_end[-1] == AS_OF
    assert list(block.counts[-3:, s]) == [5, 5, 5]
    assert block.counts[:, s].sum() == 16


def test_weekly_blocks_end_on_the_analysis_day(seeded: Session) -> None:
    block = build_series(
        seeded,
        disease_codes=["TDIS"],
        level="city",
        granularity="week",
        as_of=AS_OF,
        history_days=28,
    )
    assert block.keys == [("TDIS", "6405")]
    assert block.period_end == [AS_OF - timedelta(days=7 * k) for k in (3, 2, 1, 0)]
    assert list(block.counts[:, 0]) == [0, 1, 4, 15]


def test_consecutive_alarms_make_one_signal(seeded: Session) -> None:
    report = run_detection(seeded, as_of=AS_OF, days=30, config=CONFIG)
    seeded.commit()
    signals = seeded.scalars(select(Signal).order_by(Signal.first_date)).all()
    assert report.alarms == 4
    assert [(s.region_code, s.alarm_periods, s.status) for s in signals] == [
        ("640502100", 1, "quiet"),
        ("640521100", 3, "open"),
    ]
    ningan = signals[1]
    assert ningan.first_date == AS_OF - timedelta(days=2)
    assert ningan.cases_total == 15
    assert "宁安镇" in ningan.explanation_zh and "5" in ningan.explanation_zh
    assert ningan.series["observed"][-1] == 5


def test_rerun_adds_no_duplicate_signals(seeded: Session) -> None:
    run_detection(seeded, as_of=AS_OF, days=30, config=CONFIG)
    again = run_detection(seeded, as_of=AS_OF, days=30, config=CONFIG)
    assert again.signals_new == 0
    assert len(seeded.scalars(select(Signal)).all()) == 2


def test_signals_are_read_within_jurisdiction(seeded: Session) -> None:
    run_detection(seeded, as_of=AS_OF, days=30, config=CONFIG)
    zhongning = Scope(region_prefix="640521")
    visible = service.list_signals(seeded, zhongning)
    assert {s.region_code for s in visible} == {"640521100"}
    other = seeded.scalars(select(Signal).where(Signal.region_code == "640502100")).one()
    assert service.get_signal(seeded, zhongning, other.id) is None


def test_unknown_method_is_skipped_not_fatal(seeded: Session) -> None:
    config = parse_config(
        {"rules": [{"name": "x", "method": "no_such_method", "match": {"codes": ["TDIS"]}}]}
    )
    report = run_detection(seeded, as_of=AS_OF, config=config)
    assert report.skipped_rules == ["x"]


def test_bad_rule_file_names_the_rule() -> None:
    with pytest.raises(ValueError, match="rule #1"):
        parse_config({"rules": [{"name": "x", "method": "m", "level": "galaxy"}]})
