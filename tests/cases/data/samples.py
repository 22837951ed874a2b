"""A small, self-contained catalog and valid sample cards for the card tests.

The diseases and organisations here use test-only codes (``T-…``) with real Chinese names;
``install`` puts them into a test database and deactivates every other disease and
organisation, so name lookups (疾病名称, 报告单位 in a national export) resolve to these rows
whatever the real catalog holds.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from yifang.cases.validation import DiseaseRule, OrganisationRule, Reference
from yifang.catalog.models import Disease, Organisation, Region

NOW = datetime(2025, 6, 30, 4, 0)  # UTC; 12:00 in the city
CITY = "640500"

DISEASES = [
    DiseaseRule(
        code="T-HBV",
        name_zh="乙型肝炎",
        classifications=frozenset({"1", "2", "3"}),
        chronicity=frozenset({"1", "2", "3"}),
        national_code="0302",
    ),
    DiseaseRule(
        code="T-TB",
        name_zh="肺结核",
        classifications=frozenset({"1", "2", "3"}),
        subtypes={"RR": "利福平耐药", "P+": "病原学阳性", "P-": "病原学阴性", "NR": "无病原学结果"},
        national_code="2600",
    ),
    DiseaseRule(
        code="T-HFMD",
        name_zh="手足口病",
        classifications=frozenset({"2", "3"}),
    ),
    DiseaseRule(
        code="T-PLAGUE",
        name_zh="鼠疫",
        classifications=frozenset({"1", "2", "3"}),
        report_limit_hours=2,
        review_limit_hours=2,
    ),
    DiseaseRule(code="T-OLD", name_zh="旧病种", classifications=frozenset({"3"}), active=False),
]
REGIONS = [
    ("64", 1, None, "宁夏回族自治区"),
    ("6405", 2, "64", "中卫市"),
    ("640502", 3, "6405", "沙坡头区"),
    ("640521", 3, "6405", "中宁县"),
    ("640522", 3, "6405", "海原县"),
    ("640502100", 4, "640502", "滨河镇"),
    ("640502101", 4, "640502", "文昌镇"),
    ("640521100", 4, "640521", "宁安镇"),
    ("640522100", 4, "640522", "海城镇"),
    ("6401", 2, "64", "银川市"),
    ("640104", 3, "6401", "兴庆区"),
    ("11", 1, None, "北京市"),
    ("1101", 2, "11", "市辖区"),
    ("110101", 3, "1101", "东城区"),
    ("81", 1, None, "香港特别行政区"),
    ("8100", 2, "81", "香港"),
    ("810001", 3, "8100", "中西区"),
]
ORGANISATIONS = [
    OrganisationRule("T-H1", "中卫市人民医院", "640502"),
    OrganisationRule("T-H2", "中宁县人民医院", "640521"),
    OrganisationRule("T-C9", "已停用诊所", "640502100", active=False),
]


def reference() -> Reference:
    """The sample catalog as a validation reference (no database needed)."""
    return Reference.build(
        DISEASES, ORGANISATIONS, [(c, lvl) for c, lvl, _, _ in REGIONS], city_code=CITY
    )


def install(session: Session) -> Reference:
    """Put the sample catalog into a test database; returns its reference."""
    session.execute(update(Disease).values(active=False))
    session.execute(update(Organisation).values(active=False))
    for code, level, parent, name in REGIONS:
        session.merge(Region(code=code, level=level, parent_code=parent, name=name))
        session.flush()
    for d in DISEASES:
        session.merge(
            Disease(
                code=d.code,
                name_zh=d.name_zh,
                name_en=d.code,
                disease_class="B",
                national_code=d.national_code,
                report_limit_hours=d.report_limit_hours,
                review_limit_hours=d.review_limit_hours,
                classifications=sorted(d.classifications),
                chronicity=sorted(d.chronicity),
                subtypes=[{"code": k, "name_zh": v} for k, v in d.subtypes.items()],
                active=d.active,
                extra={},
            )
        )
    for o in ORGANISATIONS:
        session.merge(
            Organisation(
                code=o.code,
                name=o.name,
                kind="hospital",
                region_code=o.region_code,
                active=o.active,
            )
        )
    session.commit()
    return Reference.from_session(session)


def resident_id(area: str, born: date, sequence: int) -> str:
    """A valid 18-character resident ID (GB 11643): odd ``sequence`` = male."""
    body = f"{area}{born:%Y%m%d}{sequence:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(c) * w for c, w in zip(body, weights, strict=True))
    return body + "10X98765432"[total % 11]


def valid_card(**overrides: Any) -> dict[str, Any]:
    """A valid adult hepatitis B card reported by 中卫市人民医院 (raw string values)."""
    born = date(1980, 5, 17)
    card: dict[str, Any] = {
        "patient_name": "张伟",
        "id_type": "1",
        "id_number": resident_id("640502", born, 123),
        "sex": "1",
        "birth_date": born.isoformat(),
        "work_unit": "中卫市建筑公司",
        "phone": "13912345678",
        "residence_category": "1",
        "address_code": "640502100",
        "address_detail": "滨河镇某村3组",
        "occupation": "18",
        "classification": "3",
        "chronicity": "2",
        "onset_date": "2025-06-20",
        "diagnosis_time": "2025-06-25 10",
        "disease_code": "T-HBV",
        "org_code": "T-H1",
        "doctor_name": "李医生",
        "fill_date": "2025-06-25",
    }
    card.update(overrides)
    return card


def child_card(**overrides: Any) -> dict[str, Any]:
    """A valid card of a 4-year-old with hand, foot and mouth disease."""
    born = date(2021, 3, 2)
    card = valid_card(
        patient_name="王小明",
        guardian_name="王大明",
        id_number=resident_id("640521", born, 11),
        sex="1",
        birth_date=born.isoformat(),
        occupation="2",
        work_unit=None,
        classification="2",
        chronicity=None,
        disease_code="T-HFMD",
        residence_category="2",
        address_code="640521100",
    )
    card.update(overrides)
    return card


def days_before(n: int) -> str:
    """The city date ``n`` days before :data:`NOW`, ISO-formatted."""
    return (NOW + timedelta(hours=8) - timedelta(days=n)).date().isoformat()
