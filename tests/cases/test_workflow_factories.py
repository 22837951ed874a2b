"""Factories shared by the card workflow, duplicate, API and command tests (no tests here).

Test diseases, regions and organisations are added when the catalog does not hold them, so
the tests do not depend on the catalog's current settings (windows, limits).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from yifang.cases import service
from yifang.cases.models import Card
from yifang.catalog.models import Disease, Organisation, Region
from yifang.core.jurisdiction import Scope

ORG_ZN = "T640521H01"  # a hospital of 中宁县
ORG_SPT = "T640502H01"  # a hospital of 沙坡头区
TOWN_ZN = "640521100"  # 宁安镇
TOWN_ZN2 = "640521101"  # 鸣沙镇
TOWN_SPT = "640502100"  # 滨河镇

_REGIONS = [
    ("64", "宁夏回族自治区", 1, None),
    ("6405", "中卫市", 2, "64"),
    ("640502", "沙坡头区", 3, "6405"),
    ("640521", "中宁县", 3, "6405"),
    (TOWN_SPT, "滨河镇", 4, "640502"),
    (TOWN_ZN, "宁安镇", 4, "640521"),
    (TOWN_ZN2, "鸣沙镇", 4, "640521"),
]

_DISEASES: list[dict[str, Any]] = [
    # code, window days, review hours, parent, chronicity
    {"code": "T_FLU", "name_zh": "测试流感", "duplicate_window_days": 30, "review_limit_hours": 24},
    {
        "code": "T_PLAGUE",
        "name_zh": "测试鼠疫",
        "duplicate_window_days": 365,
        "review_limit_hours": 2,
    },
    {
        "code": "T_HEP",
        "name_zh": "测试肝炎",
        "duplicate_window_days": 365,
        "review_limit_hours": 24,
    },
    {
        "code": "T_HEPA",
        "name_zh": "测试甲肝",
        "parent_code": "T_HEP",
        "duplicate_window_days": 365,
        "review_limit_hours": 24,
    },
    {
        "code": "T_HEPE",
        "name_zh": "测试戊肝",
        "parent_code": "T_HEP",
        "duplicate_window_days": 365,
        "review_limit_hours": 24,
    },
]


def ensure_catalog(session: Session) -> None:
    """Add the test regions, diseases and organisations that are missing."""
    for code, name, level, parent in _REGIONS:
        if session.get(Region, code) is None:
            session.add(Region(code=code, name=name, level=level, parent_code=parent))
            session.flush()
    for d in _DISEASES:
        if session.get(Disease, d["code"]) is None:
            session.add(
                Disease(
                    name_en=d["code"],
                    disease_class="B",
                    classifications=["1", "2", "3"],
                    chronicity=[],
                    subtypes=[],
                    **d,
                )
            )
            session.flush()
    for code, region in ((ORG_ZN, "640521"), (ORG_SPT, "640502")):
        if session.get(Organisation, code) is None:
            session.add(
                Organisation(code=code, name=f"测试医院{code}", kind="hospital", region_code=region)
            )
    session.commit()


def id_number(region: str, birth: date, seq: int = 101) -> str:
    """A resident ID with a correct GB 11643 check character (odd ``seq`` = male)."""
    body = f"{region}{birth:%Y%m%d}{seq:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(ch) * w for ch, w in zip(body, weights, strict=True))
    return body + "10X98765432"[total % 11]


def card_data(
    *,
    name: str = "张三",
    birth: date = date(1980, 5, 6),
    disease: str = "T_FLU",
    diagnosis: datetime | None = None,
    address: str = TOWN_ZN,
    org: str = ORG_ZN,
    seq: int = 101,
    **overrides: Any,
) -> dict[str, Any]:
    """A valid adult card's raw values (a farmer of 中宁县 reported in 中宁县)."""
    diagnosis = diagnosis or datetime.combine(
        date.today() - timedelta(days=3), datetime.min.time()
    ) + timedelta(hours=10)
    same_county = address[:6] == _org_county(org)
    data: dict[str, Any] = {
        "report_type": "1",
        "patient_name": name,
        "id_type": "1",
        "id_number": id_number("640521", birth, seq),
        "sex": "1" if seq % 2 else "2",
        "birth_date": birth,
        "phone": "13812345678",
        "residence_category": "1" if same_county else "2",
        "address_code": address,
        "address_detail": "宁安镇南街 12 号",
        "occupation": "18",
        "classification": "3",
        "onset_date": diagnosis.date() - timedelta(days=2),
        "diagnosis_time": diagnosis,
        "disease_code": disease,
        "org_code": org,
        "doctor_name": "李医生",
        "fill_date": diagnosis.date(),
    }
    data.update(overrides)
    return data


def _org_county(org: str) -> str:
    return {ORG_ZN: "640521", ORG_SPT: "640502"}.get(org, org[1:7])


def make_card(session: Session, *, submit: bool = True, actor: str = "doctor", **kw: Any) -> Card:
    """A card created through the workflow (validated), committed."""
    card = service.create_card(
        session, card_data(**kw), scope=Scope.everything(actor), submit=submit
    )
    session.commit()
    return card


@pytest.fixture()
def catalog(session: Session) -> Session:
    """The session, with the test catalog rows present."""
    ensure_catalog(session)
    return session


CITY = Scope.everything("cdc-city")
ZN = Scope(region_prefix="640521", actor="cdc-zn")
SPT = Scope(region_prefix="640502", actor="cdc-spt")
