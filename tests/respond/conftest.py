"""Fixtures of the response tests: viewers of each kind, signals, cards and events."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from itertools import count

import pytest

from yifang.cases.models import Card
from yifang.core.jurisdiction import Scope
from yifang.detect.models import Signal
from yifang.respond.service import Viewer

NOW = datetime(2026, 6, 1, 8, 0)
EPI = frozenset(
    {"signal.view", "signal.respond", "event.view", "event.manage", "task.view", "card.view"}
)

#: 中宁县 county CDC epidemiologist, the city CDC, an education-bureau liaison, a hospital.
ZN = Viewer(
    scope=Scope(region_prefix="640521", actor="zn_epi"),
    organisation_code="640521CD01",
    region_code="640521",
    permissions=EPI,
)
SPS = Viewer(
    scope=Scope(region_prefix="640502", actor="sps_epi"),
    organisation_code="640502CD01",
    region_code="640502",
    permissions=EPI,
)
CITY = Viewer(
    scope=Scope(actor="city_cdc"),
    organisation_code="640500CD01",
    region_code="6405",
    permissions=EPI,
)
EDU = Viewer(
    scope=Scope(identified=False, actor="edu_liaison"),
    department="education",
    region_code="6405",
    permissions=frozenset({"task.view", "dashboard.view"}),
)
HOSPITAL = Viewer(
    scope=Scope(organisation_code="640521HP01", actor="zn_prevention"),
    organisation_code="640521HP01",
    region_code="640521",
    permissions=frozenset({"task.view", "card.view"}),
)

_numbers = count(1)


def make_signal(
    session,
    disease: str = "VARICELLA",
    region: str = "640521100",
    *,
    created_at: datetime = NOW,
    status: str = "open",
) -> Signal:
    sig = Signal(
        disease_code=disease,
        region_code=region,
        region_level="township",
        granularity="day",
        rule="test_rule",
        method="fixed",
        params={},
        status=status,
        first_date=created_at.date() - timedelta(days=2),
        last_date=created_at.date(),
        alarm_periods=1,
        observed=6,
        expected=1.0,
        upperbound=3.0,
        cases_total=6,
        series={},
        explanation_zh="测试信号",
        explanation_en="test signal",
        created_at=created_at,
        updated_at=created_at,
        version=1,
    )
    session.add(sig)
    session.flush()
    return sig


def make_card(
    session,
    disease: str = "VARICELLA",
    address: str = "640521100",
    *,
    onset: date = date(2026, 5, 28),
    work_unit: str | None = "宁安镇第一小学",
    died: bool = False,
    subtype: str | None = None,
) -> Card:
    n = next(_numbers)
    card = Card(
        card_number=f"T{n:010d}",
        status="reviewed",
        patient_name=f"病人{n}",
        sex="1",
        age_value=8,
        age_unit="01",
        residence_category="1",
        address_code=address,
        address_detail="某街道某号",
        id_number=f"64052120180101{n:04d}",
        phone="13812345678",
        occupation="05",
        classification="2",
        onset_date=onset,
        diagnosis_time=datetime.combine(onset, datetime.min.time()) + timedelta(hours=10),
        death_date=onset + timedelta(days=3) if died else None,
        disease_code=disease,
        subtype_code=subtype,
        org_code="640521HP01" if address.startswith("640521") else "640502HP01",
        doctor_name="医生",
        fill_date=onset,
        work_unit=work_unit,
        version=1,
    )
    session.add(card)
    session.flush()
    return card


@pytest.fixture()
def now() -> datetime:
    return NOW
