"""Syndrome counts and other streams as series of their own, and multi-source ranking."""

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
from yifang.detect.config import load_config, parse_config
from yifang.detect.corroboration import load_corroboration, parse_corroboration
from yifang.detect.engine import run_detection
from yifang.detect.models import Signal
from yifang.detect.sources import StreamSource, SyndromeSource
from yifang.hospital.models import StreamObservation, SyndromeCount

AS_OF = date(2026, 3, 31)
ZHONGNING = "640521"
NINGAN = "640521100"
SHIKONG = "640521101"
SHAPOTOU_TOWN = "640502100"


def _above(observed: Any, *, range: Any = None, limit: float = 10.0) -> DetectionResult:
    x, one_d = as_counts(observed)
    idx = as_range(range, x.shape[0], 0)
    obs = x[idx]
    ub = np.full(obs.shape, limit)
    return DetectionResult(
        range=idx,
        observed=squeeze(obs, one_d),
        upperbound=squeeze(ub, one_d),
        alarm=squeeze(obs > ub, one_d),
        expected=squeeze(np.ones_like(ub), one_d),
        method="above",
    )


def _rule(name: str, source: str, level: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "source": source,
        "method": "above",
        "level": level,
        "granularity": "day",
        "history_years": 1,
        **extra,
    }


@pytest.fixture()
def city(session: Session, monkeypatch: pytest.MonkeyPatch) -> Session:
    monkeypatch.setattr(algorithms, "above", _above, raising=False)
    for code, name, level, parent in (
        ("64", "宁夏回族自治区", 1, None),
        ("6405", "中卫市", 2, "64"),
        ("640502", "沙坡头区", 3, "6405"),
        (ZHONGNING, "中宁县", 3, "6405"),
        (NINGAN, "宁安镇", 4, ZHONGNING),
        (SHIKONG, "石空镇", 4, ZHONGNING),
        (SHAPOTOU_TOWN, "滨河镇", 4, "640502"),
    ):
        session.merge(Region(code=code, name=name, level=level, parent_code=parent))
    session.merge(
        Organisation(code="T-HOSP", name="测试医院", kind="hospital", region_code=ZHONGNING)
    )
    session.merge(Disease(code="FLU", name_zh="流行性感冒", name_en="influenza", disease_class="C"))
    session.flush()
    return session


def _syndromes(session: Session, spike_town: str = NINGAN, spike: int = 30) -> None:
    """40 days of 3 fever-respiratory visits a day in two townships (and 2 of unknown
    address), with ``spike`` visits on the last day in ``spike_town``."""
    rows = []
    for k in range(40):
        day = AS_OF - timedelta(days=k)
        for town in (NINGAN, SHIKONG, ""):
            n = spike if (k == 0 and town == spike_town) else (2 if town == "" else 3)
            rows.append(
                SyndromeCount(
                    syndrome="fever_respiratory",
                    org_code="T-HOSP",
                    township=town,
                    day=day,
                    count=n,
                    visits=100,
                )
            )
    session.add_all(rows)
    session.flush()


def _ili(session: Session, last: float = 20.0) -> None:
    """ILI visits of two sentinel places in 中宁县 over their outpatients: 4 % for 30 days,
    ``last`` % on the analysis day; nothing at weekends."""
    rows = []
    for k in range(30):
        day = AS_OF - timedelta(days=k)
        if day.weekday() >= 5:
            continue
        pct = last if k == 0 else 4.0
        for place in ("H1", "H2"):
            rows.append(
                StreamObservation(
                    stream="ili",
                    region_code=ZHONGNING,
                    place=place,
                    day=day,
                    value=pct * 2,
                    denominator=200.0,
                )
            )
    session.add_all(rows)
    session.flush()


def test_syndrome_series_count_visits_per_region_and_day(city: Session) -> None:
    _syndromes(city)
    rule = parse_config({"rules": [_rule("s", "syndrome", "township")]}).rules[0]
    source = SyndromeSource(city)
    assert source.codes() == ["fever_respiratory"]
    (batch,) = source.batches(
        rule, ["fever_respiratory"], as_of=AS_OF, history_days=10, batch_size=10
    )
    block = batch.load()
    assert block.keys == [("fever_respiratory", NINGAN), ("fever_respiratory", SHIKONG)]
    assert block.counts[-1].tolist() == [30, 3] and block.counts[0].tolist() == [3, 3]
    # county: the unknown-address visits count in the hospital's own county
    county = parse_config({"rules": [_rule("c", "syndrome", "county")]}).rules[0]
    (batch,) = source.batches(
        county, ["fever_respiratory"], as_of=AS_OF, history_days=5, batch_size=9
    )
    assert batch.load().counts[:, 0].tolist() == [8, 8, 8, 8, 35]


def test_stream_rates_pool_places_and_leave_gaps_missing(city: Session) -> None:
    _ili(city)
    rule = parse_config(
        {"rules": [_rule("i", "stream", "county", match={"codes": ["ili"]})]}
    ).rules[0]
    (batch,) = StreamSource(city).batches(rule, ["ili"], as_of=AS_OF, history_days=7, batch_size=5)
    block = batch.load()
    weekend = [d.weekday() >= 5 for d in block.period_end]
    values = block.counts[:, 0]
    assert np.isnan(values[weekend]).all()  # no observation: missing, not zero
    assert values[-1] == pytest.approx(20.0)  # Σ value / Σ denominator, per cent
    assert values[~np.array(weekend)][:-1] == pytest.approx(4.0)


def test_syndrome_and_stream_signals_carry_their_series(city: Session) -> None:
    _syndromes(city)
    _ili(city)
    config = parse_config(
        {
            "rules": [
                _rule("syn", "syndrome", "county"),
                _rule("ili", "stream", "county", match={"codes": ["ili"]}, skip_missing=True),
            ]
        }
    )
    report = run_detection(city, as_of=AS_OF, days=1, config=config)
    city.commit()
    assert report.signals_new == 2
    syn = city.scalars(select(Signal).where(Signal.source == "syndrome")).one()
    assert (syn.series_code, syn.region_code, syn.disease_code) == (
        "fever_respiratory",
        ZHONGNING,
        None,
    )
    assert syn.series_name_zh == "发热伴呼吸道症状" and "症状监测" in syn.explanation_zh
    assert syn.cases_total == 35
    ili = city.scalars(select(Signal).where(Signal.source == "stream")).one()
    assert ili.series_code == "ili" and "20.0%" in ili.explanation_zh
    assert ili.cases_total == 0  # a rate adds no cases
    # both corroborate each other (influenza group, same county, same day)
    assert (syn.corroboration, ili.corroboration) == (1, 1)
    assert "ILI%" in syn.explanation_zh.split("多点触发")[1]
    listed = service.list_signals(city, Scope.everything(), source="stream")
    assert [s.id for s in listed] == [ili.id]


def test_a_rule_skipping_missing_days_compares_with_the_previous_school_days(
    city: Session,
) -> None:
    _ili(city, last=20.0)
    keep_gaps = parse_config(
        {
            "rules": [
                _rule(
                    "x",
                    "stream",
                    "county",
                    match={"codes": ["ili"]},
                    method="ears_c",
                    params={"method": "C1", "baseline": 7, "min_sigma": 0.5},
                )
            ]
        }
    )
    report = run_detection(city, as_of=AS_OF, config=keep_gaps, corroborate=False)
    assert report.alarms == 0  # a weekend in every 7-day baseline leaves no threshold
    skip = parse_config(
        {
            "rules": [
                _rule(
                    "y",
                    "stream",
                    "county",
                    match={"codes": ["ili"]},
                    method="ears_c",
                    skip_missing=True,
                    params={"method": "C1", "baseline": 7, "min_sigma": 0.5},
                )
            ]
        }
    )
    report = run_detection(city, as_of=AS_OF, config=skip, corroborate=False)
    assert report.alarms == 1


def _card(n: int, day: date, status: str = "submitted") -> Card:
    return Card(
        card_number=f"F{day:%Y%m%d}{n:04d}{status[0]}",
        patient_name="张三",
        sex="1",
        residence_category="1",
        address_code=NINGAN,
        occupation="18",
        classification="2",
        onset_date=day,
        diagnosis_time=datetime.combine(day, datetime.min.time()) + timedelta(hours=9),
        disease_code="FLU",
        org_code="T-HOSP",
        doctor_name="李医生",
        fill_date=day,
        status=status,
    )


def test_drafts_are_not_counted_until_submitted(city: Session) -> None:
    city.add_all([_card(i, AS_OF, "draft") for i in range(20)])
    city.flush()
    config = parse_config({"rules": [_rule("f", "cards", "county", match={"codes": ["FLU"]})]})
    assert run_detection(city, as_of=AS_OF, config=config).alarms == 0
    city.add_all([_card(i, AS_OF) for i in range(11)])
    city.flush()
    assert run_detection(city, as_of=AS_OF, config=config).alarms == 1


def test_cards_confirmed_by_two_sources_rank_first(city: Session) -> None:
    _syndromes(city, spike_town=NINGAN)
    _ili(city)
    city.add_all([_card(i, AS_OF - timedelta(days=3)) for i in range(12)])
    # an unrelated place: a card signal in 沙坡头区 that nothing confirms, newer id
    for i in range(12):
        c = _card(100 + i, AS_OF - timedelta(days=2))
        c.address_code = SHAPOTOU_TOWN
        city.add(c)
    city.flush()
    config = parse_config(
        {
            "rules": [
                _rule("f", "cards", "county", match={"codes": ["FLU"]}),
                _rule("syn", "syndrome", "county"),
                _rule("ili", "stream", "county", match={"codes": ["ili"]}),
            ]
        }
    )
    run_detection(city, as_of=AS_OF, days=7, config=config)
    city.commit()
    cards = {s.region_code: s for s in city.scalars(select(Signal).where(Signal.source == "cards"))}
    confirmed, alone = cards[ZHONGNING], cards["640502"]
    assert confirmed.corroboration == 2 and confirmed.rank_score == pytest.approx(3.0)
    assert {c["code"] for c in confirmed.corroborated_by} == {"fever_respiratory", "ili"}
    assert "多点触发" in confirmed.explanation_zh and "Multi-source" in confirmed.explanation_en
    assert alone.corroboration == 0 and "多点触发" not in alone.explanation_zh
    newest = service.list_signals(city, Scope.everything(), source="cards")
    assert newest[0].id == alone.id
    ranked = service.list_signals(city, Scope.everything(), sort="rank")
    assert [s.id for s in ranked if s.source == "cards"] == [confirmed.id, alone.id]
    assert ranked[-1].id == alone.id
    # keyset pages of the rank order give every signal once
    seen: list[int] = []
    cursor = None
    while True:
        page = service.list_signals(city, Scope.everything(), sort="rank", cursor=cursor, limit=1)
        if not page:
            break
        seen.append(page[0].id)
        cursor = service.parse_cursor(service.next_cursor(page[0], "rank"), "rank")
    assert seen == [s.id for s in ranked]
    both = service.list_signals(city, Scope.everything(), min_corroboration=2, source="cards")
    assert [s.id for s in both] == [confirmed.id]
    # re-running recomputes, never appends the sentence twice
    run_detection(city, as_of=AS_OF, days=7, config=config)
    city.refresh(confirmed)
    assert confirmed.explanation_zh.count("多点触发") == 1


def test_signals_elsewhere_or_later_do_not_confirm(city: Session) -> None:
    _syndromes(city)
    city.add_all([_card(i, AS_OF - timedelta(days=20)) for i in range(12)])  # 3 weeks before
    city.flush()
    config = parse_config(
        {
            "rules": [
                _rule("f", "cards", "county", match={"codes": ["FLU"]}),
                _rule("syn", "syndrome", "township"),
            ]
        }
    )
    run_detection(city, as_of=AS_OF, days=30, config=config)
    assert {s.corroboration for s in city.scalars(select(Signal))} == {0}


def test_incremental_run_looks_at_changed_counts_only(city: Session) -> None:
    _syndromes(city, spike=3)
    config = parse_config({"rules": [_rule("syn", "syndrome", "township")]})
    run_detection(city, as_of=AS_OF, config=config)
    city.commit()
    row = city.scalars(
        select(SyndromeCount).where(SyndromeCount.township == SHIKONG, SyndromeCount.day == AS_OF)
    ).one()
    row.count = 50
    row.updated_at = datetime(2100, 1, 1)
    city.commit()
    report = run_detection(city, as_of=AS_OF, config=config, incremental=True)
    assert report.series == 1 and report.signals_new == 1


def test_shipped_rules_and_groups_parse() -> None:
    config = load_config()
    assert {r.source for r in config.rules} == {"cards", "syndrome", "stream"}
    groups = load_corroboration()
    flu = next(g for g in groups.groups if g.name == "influenza")
    assert ("stream", "ili") in flu.members and ("cards", "FLU") in flu.members
    with pytest.raises(ValueError, match="group 'x'"):
        parse_corroboration({"groups": {"x": {"members": [{"source": "fax", "code": "a"}]}}})


def test_rank_auc_counts_ties_half() -> None:
    from yifang.evaluate import _auc

    assert _auc([3.0, 2.0, 1.0], [True, False, False]) == 1.0
    assert _auc([1.0, 1.0], [True, False]) == 0.5
    assert np.isnan(_auc([1.0], [True]))
