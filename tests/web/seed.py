"""Synthetic cards written straight into the card table, for dashboards and screenshots
(the workflow is tested elsewhere; here only counts matter)."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.orm import Session

from yifang.cases.models import Card

TOWNS = {"640521": ["640521100", "640521101"], "640502": ["640502100", "640502101"]}
ORGS = {"640521": "640521HP01", "640502": "640502HP01"}
ZN_HOSPITAL, SPS_HOSPITAL = ORGS["640521"], ORGS["640502"]
ZN_TOWN, SPS_TOWN = TOWNS["640521"][0], TOWNS["640502"][0]


def card_values(name: str, town: str, org: str, days_ago: int = 2) -> dict:
    """Raw form values of a valid card (for :func:`yifang.cases.service.create_card`)."""
    diagnosed = datetime.combine(date.today() - timedelta(days=days_ago), datetime.min.time())
    diagnosed += timedelta(hours=9)
    return {
        "patient_name": name,
        "id_type": "1",
        "id_number": "00000000000000000X",
        "sex": "2",
        "age_value": "30",
        "age_unit": "01",
        "phone": "13900001111",
        "residence_category": "1",
        "address_code": town,
        "address_detail": "南街 8 号",
        "occupation": "18",
        "classification": "2",
        "onset_date": (diagnosed.date() - timedelta(days=1)).isoformat(),
        "diagnosis_time": diagnosed.isoformat(),
        "disease_code": "HFMD",
        "org_code": org,
        "doctor_name": "赵医生",
        "fill_date": diagnosed.date().isoformat(),
    }


def seed_cards(
    session: Session,
    per_day: dict[str, float],
    start: date,
    end: date,
    *,
    seed: int = 7,
    status: str = "reviewed",
    towns: dict[str, list[str]] | None = None,
) -> int:
    """Cards of each disease at about ``per_day`` a day between ``start`` and ``end``, in
    ``towns`` (county → township codes; default two townships in each of two counties)."""
    rng = random.Random(seed)
    towns = towns or TOWNS
    rows = []
    day = start
    n = 0
    while day <= end:
        for disease, rate in per_day.items():
            for _ in range(int(rate) + (rng.random() < rate - int(rate))):
                county = rng.choice(sorted(towns))
                n += 1
                diagnosed = datetime.combine(day, datetime.min.time()) + timedelta(hours=9)
                rows.append(
                    {
                        "card_number": f"S{seed:02d}{n:08d}",
                        "status": status,
                        "patient_name": "测试",
                        "sex": rng.choice("12"),
                        "age_value": rng.randint(1, 80),
                        "age_unit": "01",
                        "residence_category": "1",
                        "address_code": rng.choice(towns[county]),
                        "occupation": "18",
                        "classification": "2",
                        "onset_date": day - timedelta(days=rng.randint(0, 3)),
                        "diagnosis_time": diagnosed,
                        "disease_code": disease,
                        "org_code": ORGS.get(county, ORGS["640521"]),
                        "doctor_name": "测试医生",
                        "fill_date": day,
                        "submitted_at": diagnosed,
                        "review_due_at": diagnosed + timedelta(hours=24),
                    }
                )
        day += timedelta(days=1)
    if rows:
        session.execute(insert(Card), rows)
    session.commit()
    return len(rows)
