"""Fixtures of the hospital tests: accounts with API tokens, rules loaded, and builders of
real FHIR bundles and HL7 v2 messages."""

from __future__ import annotations

import itertools
import json
from datetime import datetime
from typing import Any

import pytest
from argon2 import PasswordHasher, profiles

from yifang.core import accounts
from yifang.hospital.rules import load_rules

HOSPITAL = "640521HP01"  # 中宁县人民医院
OTHER_HOSPITAL = "640522HP01"  # 海原县人民医院
TOWNSHIP = "640521100"  # 宁安镇 (中宁县)
ID_NUMBER = "640521199001011238"  # valid check character, born 1990-01-01, male
_serial = itertools.count(1)


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    """Argon2 at its cheapest: the tests check behaviour, not hashing cost."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture()
def rules_loaded(session):
    """The rules' data files loaded."""
    load_rules(session)
    session.commit()


def make_user(session, username: str, role: str, org: str | None = None, region: str = "640521"):
    accounts.load_roles(session)
    user = accounts.create_user(
        session,
        username=username,
        password="Xy7!long-enough",
        role_code=role,
        organisation_code=org,
        region_code=region,
        check_policy=False,
    )
    session.flush()
    return user


@pytest.fixture()
def tokens(session, rules_loaded) -> dict[str, str]:
    """Bearer tokens: ``his`` (a reporter of 中宁县人民医院), ``his2`` (海原县人民医院),
    ``cdc`` (city CDC, may edit rules), ``viewer`` (health commission, no reporting)."""
    out = {}
    for name, role, org, region in (
        ("his", "hospital_reporter", HOSPITAL, "640521"),
        ("his2", "hospital_prevention_head", OTHER_HOSPITAL, "640522"),
        ("cdc", "city_cdc", None, "6405"),
        ("viewer", "health_commission_leader", None, "6405"),
    ):
        user = make_user(session, f"user_{name}", role, org, region)
        _token, secret = accounts.create_token(session, user, f"{name} token")
        out[name] = secret
    session.commit()
    return out


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


# --------------------------------------------------------------------------- FHIR


def fhir_bundle(
    visit: str = "V0001",
    *,
    patient: dict[str, Any] | None = None,
    conditions: list[tuple[str, str]] = (),  # type: ignore[assignment]
    observations: list[dict[str, Any]] = (),  # type: ignore[assignment]
    complaint: str | None = "发热、咳嗽3天",
    temperature: float | None = 38.6,
    start: str = "2025-03-01T09:30:00+08:00",
    recorded: str = "2025-03-01T10:05:00+08:00",
    timestamp: str = "2025-03-01T10:10:00+08:00",
    bundle_id: str | None = None,
    provider: str | None = None,
    refuted: set[str] | None = None,
) -> dict[str, Any]:
    """A transaction Bundle: one patient, one encounter, its conditions and observations."""
    pat = {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [
            {"type": {"coding": [{"code": "MR"}]}, "value": "MR-778899"},
            {"type": {"coding": [{"code": "NNCHN"}]}, "value": ID_NUMBER},
        ],
        "name": [{"family": "马", "given": ["建国"]}],
        "gender": "male",
        "birthDate": "1990-01-01",
        "telecom": [{"system": "phone", "value": "13995512345"}],
        "address": [
            {
                "text": "宁安镇东街1号",
                "extension": [
                    {"url": "https://yifang.example/fhir/address-code", "valueCode": TOWNSHIP}
                ],
            }
        ],
        **(patient or {}),
    }
    enc: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": visit,
        "identifier": [{"value": visit}],
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": "urn:uuid:patient-1"},
        "period": {"start": start},
        "serviceType": {"text": "发热门诊"},
        "participant": [{"individual": {"display": "李医生"}}],
    }
    if complaint:
        enc["reasonCode"] = [{"text": complaint}]
    if provider:
        enc["serviceProvider"] = {"identifier": {"value": provider}}
    entries = [
        {"fullUrl": "urn:uuid:patient-1", "resource": pat},
        {"fullUrl": f"urn:uuid:enc-{visit}", "resource": enc},
    ]
    for i, (code, text) in enumerate(conditions):
        cond = {
            "resourceType": "Condition",
            "id": f"c{i}-{code}",
            "code": {
                "coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code}],
                "text": text,
            },
            "subject": {"reference": "urn:uuid:patient-1"},
            "encounter": {"reference": f"urn:uuid:enc-{visit}"},
            "recordedDate": recorded,
        }
        if refuted and code in refuted:
            cond["verificationStatus"] = {"coding": [{"code": "refuted"}]}
        entries.append({"resource": cond})
    if temperature is not None:
        entries.append(
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": f"t-{visit}",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
                    "subject": {"reference": "urn:uuid:patient-1"},
                    "encounter": {"reference": f"urn:uuid:enc-{visit}"},
                    "valueQuantity": {"value": temperature, "unit": "Cel"},
                }
            }
        )
    for i, obs in enumerate(observations):
        entries.append(
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": obs.get("id", f"o{i}-{visit}"),
                    "status": "final",
                    "code": {"text": obs["test"]},
                    "subject": {"reference": "urn:uuid:patient-1"},
                    "encounter": {"reference": f"urn:uuid:enc-{visit}"},
                    "valueString": obs["result"],
                    "effectiveDateTime": obs.get("at", recorded),
                    **(
                        {"interpretation": [{"coding": [{"code": obs["flag"]}]}]}
                        if "flag" in obs
                        else {}
                    ),
                }
            }
        )
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "transaction",
        "timestamp": timestamp,
        "identifier": {"value": bundle_id or f"B-{next(_serial)}"},
        "entry": entries,
    }
    return bundle


def dumps(bundle: dict[str, Any]) -> str:
    return json.dumps(bundle, ensure_ascii=False)


# --------------------------------------------------------------------------- HL7 v2


def hl7_adt(
    control: str,
    visit: str = "V9001",
    *,
    event: str = "A04",
    sent: str = "20250301101000",
    facility: str = HOSPITAL,
    diagnoses: list[tuple[str, str]] = (),  # type: ignore[assignment]
    complaint: str = "腹泻水样便2天，无发热",
    temperature: str | None = "37.2",
    birth: str = "19900101",
    name: str = "马^建国",
    admit: str = "20250301093000",
    deleted: set[str] | None = None,
) -> str:
    """An ADT message (segments ended by CR)."""
    segs = [
        f"MSH|^~\\&|HIS|{facility}|YIFANG|CDC|{sent}||ADT^{event}^ADT_A01|{control}|P|2.5|||||CHN|UNICODE UTF-8",  # noqa: E501
        f"EVN|{event}|{sent}",
        f"PID|1||MR-778899^^^{facility}^MR~{ID_NUMBER}^^^CHN^NNCHN||{name}||{birth}|M|||东街1号^^^^^^^^{TOWNSHIP}||13995512345",
        f"PV1|1|O|肠道门诊^^^{facility}||||D001^李^医生||||||||||||{visit}|||||||||||||||||||||||||{admit}",
        f"PV2|||^{complaint}",
    ]
    if temperature is not None:
        segs.append(f"OBX|1|NM|8310-5^体温^LN||{temperature}|Cel|||||F")
    for i, (code, text) in enumerate(diagnoses, start=1):
        action = "D" if deleted and code in deleted else ""
        segs.append(f"DG1|{i}||{code}^{text}^I10||{sent}|F" + ("|" * 15 + action if action else ""))
    return "\r".join(segs) + "\r"


def hl7_oru(
    control: str,
    visit: str = "V9001",
    *,
    sent: str = "20250301160000",
    facility: str = HOSPITAL,
    order: str = "LAB123",
    test: tuple[str, str] = ("NORO", "诺如病毒核酸检测"),
    result: str = "阳性",
    flag: str = "POS",
) -> str:
    """An ORU^R01 result message."""
    segs = [
        f"MSH|^~\\&|LIS|{facility}|YIFANG|CDC|{sent}||ORU^R01^ORU_R01|{control}|P|2.5|||||CHN|UNICODE UTF-8",  # noqa: E501
        f"PID|1||MR-778899^^^{facility}^MR~{ID_NUMBER}^^^CHN^NNCHN||马^建国||19900101|M",
        f"PV1|1|O|肠道门诊||||||||||||||||{visit}",
        f"OBR|1|{order}|{order}|{test[0]}^{test[1]}|||{sent}",
        f"OBX|1|ST|{test[0]}^{test[1]}||{result}|||{flag}|||F|||{sent}",
    ]
    return "\r".join(segs) + "\r"


def now_after(day: str = "2025-03-10") -> datetime:
    return datetime.fromisoformat(f"{day}T00:00:00")
