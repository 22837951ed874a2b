"""Encounter files for the hospital front-end's intake paths, with the truth kept apart.

Written into ``out_dir`` (all UTF-8, rows in visit order, nothing that depends on the
moment of writing, so equal seeds give equal bytes):

``encounters.csv`` / ``encounters.jsonl``
    One row per encounter: encounter_id, visit_time (local, ``YYYY-MM-DD HH:MM``),
    org_code, org_name, department, patient_id, patient_name, id_type (01 = resident identity
    card), id_number, sex (GB/T 2261.1: 1 male, 2 female), birth_date, age, address_code,
    address_detail, phone, chief_complaint, temperature (°C), icd10, diagnosis. The JSON
    Lines objects carry the same keys plus ``labs`` (a list of the lab rows below).
``encounter_labs.csv``
    encounter_id, order_id, test_code, test_name, specimen, result, abnormal_flag (A
    abnormal/positive, N normal/negative), collected_at, reported_at.
``encounters.fhir.ndjson``
    One FHIR R4 ``transaction`` Bundle per line and encounter: Patient, Encounter (class
    AMB, reasonCode = chief complaint), Condition (ICD-10, category encounter-diagnosis),
    Observation body temperature (LOINC 8310-5), and for laboratory results one Observation
    each (category laboratory, local code system) and a DiagnosticReport. Conditional
    creates (``ifNoneExist``) on the identifiers make a repeated bundle harmless.
``encounters.hl7``
    HL7 v2.5.1 messages, one per line-feed-separated block, segments separated by CR: an
    ``ADT^A04`` (outpatient registration: MSH, EVN, PID, PV1, PV2 with the chief complaint,
    OBX body temperature, DG1 ICD-10 diagnosis) for every encounter, and an ``ORU^R01``
    (MSH, PID, PV1, OBR, OBX per result) for every encounter with laboratory results.
``encounter_truth.csv``
    encounter_id, kind (diagnosis | prior | background), true_disease_code, onset_date,
    card_number, outbreak_number — the answer key; the intake files above hold no truth.

Identifier systems (our own URNs [INF]: no national FHIR profile was seen): patients
``urn:yifang:his:patient`` and ``urn:yifang:id:resident`` (GB 11643 number), encounters
``urn:yifang:his:encounter:{org_code}``, lab tests ``urn:yifang:lis:test``, diagnoses
``http://hl7.org/fhir/sid/icd-10`` (GB/T 14396 codes at the ICD-10 subcategory level).
Bundles and messages are built as plain dicts and strings for speed; the tests parse them
with ``fhir.resources`` (R4B models) and ``hl7apy``.
"""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from yifang.simulate import people
from yifang.simulate.encounters import Encounters, LabResult
from yifang.simulate.engine import _STREETS, _VILLAGES, SimulationResult

ENCOUNTER_COLUMNS = (
    "encounter_id", "visit_time", "org_code", "org_name", "department", "patient_id",
    "patient_name", "id_type", "id_number", "sex", "birth_date", "age", "address_code",
    "address_detail", "phone", "chief_complaint", "temperature", "icd10", "diagnosis",
)  # fmt: skip
LAB_COLUMNS = (
    "encounter_id", "order_id", "test_code", "test_name", "specimen", "result",
    "abnormal_flag", "collected_at", "reported_at",
)  # fmt: skip
TRUTH_COLUMNS = (
    "encounter_id", "kind", "true_disease_code", "onset_date", "card_number", "outbreak_number",
)  # fmt: skip
FORMATS = ("csv", "jsonl", "fhir", "hl7")
ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
LAB_SYSTEM = "urn:yifang:lis:test"
PATIENT_SYSTEM = "urn:yifang:his:patient"
RESIDENT_ID_SYSTEM = "urn:yifang:id:resident"
HL7_SEP = "\r"


def _local(base: datetime, minute: int) -> datetime:
    return base + timedelta(minutes=int(minute))


def _hl7_escape(text: str) -> str:
    return (
        text.replace("\\", "\\E\\")
        .replace("|", "\\F\\")
        .replace("^", "\\S\\")
        .replace("~", "\\R\\")
        .replace("&", "\\T\\")
    )


def encounter_persons(result: SimulationResult, enc: Encounters) -> dict[str, list[Any]]:
    """Name, identity number, birth date, phone and address of each encounter's patient.

    A notifiable case keeps the person on its card (before any deliberate card error) at
    every visit; cases without a card and background patients get new persons from their
    own generator.
    """
    cases = result.cases
    city = result.city
    rng = np.random.default_rng(np.random.SeedSequence([result.seed, 0xFE45]))
    n = len(enc)
    # one new person per case without a card, one per background encounter
    need_case = sorted(
        {int(c) for c in enc.case.tolist() if c >= 0 and cases["id_number"][c] is None}
    )
    bg_rows = np.flatnonzero(enc.case < 0)
    k = len(need_case) + bg_rows.size
    town = np.concatenate(
        [
            np.array([city.index(cases["township"][c]) for c in need_case], dtype=np.int64),
            enc.township[bg_rows],
        ]
    )
    ages = np.concatenate(
        [np.array([cases["age"][c] for c in need_case], dtype=np.int64), enc.age[bg_rows]]
    )
    sex = np.concatenate(
        [np.array([cases["sex"][c] for c in need_case], dtype="<U1"), enc.sex[bg_rows].astype(str)]
    )
    base = result.start
    visit_days = np.concatenate(
        [
            np.array([cases["onset"][c] for c in need_case], dtype=np.int64),
            enc.minute[bg_rows] // 1440,
        ]
    )
    on = [base + timedelta(days=int(d)) for d in visit_days]
    hui = rng.random(k) < city.hui_share[town] if k else np.zeros(0, dtype=bool)
    names_plain = people.names(rng, sex, 0.0)
    names_hui = people.names(rng, sex, 1.0)
    names = [h if u else p for p, h, u in zip(names_plain, names_hui, hui, strict=True)]
    births = people.birth_dates(rng, on, ages)
    ids = people.id_numbers(rng, [city.county[t] for t in town], births, sex)
    phones = people.phones(rng, k)
    village = rng.integers(0, len(_VILLAGES), k)
    group_no = rng.integers(1, 12, k)
    house = rng.integers(1, 120, k)
    street = rng.integers(0, len(_STREETS), k)
    prefix = "宁夏回族自治区" + city.config.name
    addresses = []
    for j in range(k):
        t = int(town[j])
        if city.urban[t]:
            place = f"{_STREETS[int(street[j])]}路{int(house[j])}号"
        else:
            place = f"{_VILLAGES[int(village[j])]}村{int(group_no[j])}组{int(house[j])}号"
        addresses.append(f"{prefix}{city.county_names[city.county[t]]}{city.names[t]}{place}")
    new_case = {c: j for j, c in enumerate(need_case)}
    offset = len(need_case)
    out: dict[str, list[Any]] = {
        k_: [None] * n for k_ in ("name", "id_number", "birth_date", "phone", "address_detail")
    }
    bg_pos = {int(r): offset + j for j, r in enumerate(bg_rows.tolist())}
    for i in range(n):
        c = int(enc.case[i])
        if c >= 0 and cases["id_number"][c] is not None:
            for key in out:
                out[key][i] = cases[key][c]
            continue
        j = new_case[c] if c >= 0 else bg_pos[i]
        out["name"][i] = names[j]
        out["id_number"][i] = ids[j]
        out["birth_date"][i] = births[j]
        out["phone"][i] = phones[j]
        out["address_detail"][i] = addresses[j][:100]
    return out


def _patient_id(id_number: str) -> str:
    """The hospital's patient number: derived from the identity number, hiding nothing."""
    return "P" + hashlib.sha256(id_number.encode("ascii")).hexdigest()[:12].upper()


def write_encounter_files(
    result: SimulationResult,
    enc: Encounters,
    out_dir: Path,
    formats: tuple[str, ...] = FORMATS,
) -> list[Path]:
    """Write the encounter files of ``formats`` (csv, jsonl, fhir, hl7) and the truth."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fmts = [f for f in FORMATS if f in formats]
    persons = encounter_persons(result, enc)
    names = {r.code: r.name for r in result.city.all_reporters()}
    base = datetime.combine(result.start, datetime.min.time())
    city = result.city
    rows: list[dict[str, Any]] = []
    for i in range(len(enc)):
        org = str(enc.org[i])
        rows.append(
            {
                "encounter_id": str(enc.encounter_id[i]),
                "visit_time": _local(base, int(enc.minute[i])).strftime("%Y-%m-%d %H:%M"),
                "org_code": org,
                "org_name": names.get(org, org),
                "department": str(enc.department[i]),
                "patient_id": _patient_id(persons["id_number"][i]),
                "patient_name": persons["name"][i],
                "id_type": "01",
                "id_number": persons["id_number"][i],
                "sex": str(enc.sex[i]),
                "birth_date": persons["birth_date"][i].isoformat(),
                "age": int(enc.age[i]),
                "address_code": city.codes[int(enc.township[i])],
                "address_detail": persons["address_detail"][i],
                "phone": persons["phone"][i] or "",
                "chief_complaint": str(enc.complaint[i]),
                "temperature": f"{float(enc.temperature[i]):.1f}",
                "icd10": str(enc.icd10[i]),
                "diagnosis": str(enc.diagnosis[i]),
            }
        )
    labs_of: dict[int, list[dict[str, Any]]] = {}
    for n, lab in enumerate(enc.labs):
        labs_of.setdefault(lab.row, []).append(_lab_row(enc, lab, n, base))
    written: list[Path] = []
    if "csv" in fmts:
        written.append(_csv(out_dir / "encounters.csv", ENCOUNTER_COLUMNS, rows))
        lab_rows = [r for i in sorted(labs_of) for r in labs_of[i]]
        written.append(_csv(out_dir / "encounter_labs.csv", LAB_COLUMNS, lab_rows))
    if "jsonl" in fmts:
        p = out_dir / "encounters.jsonl"
        with p.open("w", encoding="utf-8", newline="\n") as fh:
            for i, r in enumerate(rows):
                obj = {**r, "labs": [{k: v for k, v in x.items() if k != "encounter_id"}
                                     for x in labs_of.get(i, [])]}  # fmt: skip
                fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
        written.append(p)
    if "fhir" in fmts:
        p = out_dir / "encounters.fhir.ndjson"
        with p.open("w", encoding="utf-8", newline="\n") as fh:
            for i, r in enumerate(rows):
                bundle = fhir_bundle(r, labs_of.get(i, []))
                fh.write(json.dumps(bundle, ensure_ascii=False, separators=(",", ":")) + "\n")
        written.append(p)
    if "hl7" in fmts:
        p = out_dir / "encounters.hl7"
        with p.open("w", encoding="utf-8", newline="") as fh:
            for i, r in enumerate(rows):
                fh.write(hl7_adt_a04(r) + "\n")
                if i in labs_of:
                    fh.write(hl7_oru_r01(r, labs_of[i]) + "\n")
        written.append(p)
    written.append(_write_truth(result, enc, out_dir))
    return written


def _lab_row(enc: Encounters, lab: LabResult, n: int, base: datetime) -> dict[str, Any]:
    return {
        "encounter_id": str(enc.encounter_id[lab.row]),
        "order_id": f"{enc.encounter_id[lab.row]}-L{n % 100:02d}{lab.test.code[-4:]}",
        "test_code": lab.test.code,
        "test_name": lab.test.name,
        "specimen": lab.test.specimen,
        "result": lab.result,
        "abnormal_flag": "A" if lab.test.positive else "N",
        "collected_at": _local(base, lab.collected_minute).strftime("%Y-%m-%d %H:%M"),
        "reported_at": _local(base, lab.reported_minute).strftime("%Y-%m-%d %H:%M"),
    }


def _csv(path: Path, header: tuple[str, ...], rows: list[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows([[r[k] for k in header] for r in rows])
    return path


def _write_truth(result: SimulationResult, enc: Encounters, out_dir: Path) -> Path:
    onset = result.cases["onset"]
    rows = []
    for i in range(len(enc)):
        c = int(enc.case[i])
        rows.append(
            {
                "encounter_id": str(enc.encounter_id[i]),
                "kind": str(enc.kind[i]),
                "true_disease_code": str(enc.true_disease[i]),
                "onset_date": (result.start + timedelta(days=int(onset[c]))).isoformat()
                if c >= 0
                else "",
                "card_number": str(enc.card_number[i]),
                "outbreak_number": str(int(enc.outbreak[i])) if enc.outbreak[i] else "",
            }
        )
    return _csv(out_dir / "encounter_truth.csv", TRUTH_COLUMNS, rows)


# ---------------------------------------------------------------------------------------
# FHIR R4
# ---------------------------------------------------------------------------------------


def _fhir_time(text: str) -> str:
    """``YYYY-MM-DD HH:MM`` (local) → FHIR dateTime with the +08:00 offset."""
    return text.replace(" ", "T") + ":00+08:00"


def fhir_bundle(row: dict[str, Any], labs: list[dict[str, Any]]) -> dict[str, Any]:
    """A transaction Bundle for one encounter (resources linked by urn:uuid full URLs)."""
    eid = row["encounter_id"]
    org = row["org_code"]

    def uid(kind: str, n: int = 0) -> str:
        digest = hashlib.sha1(f"{eid}/{kind}/{n}".encode()).hexdigest()
        return (
            f"urn:uuid:{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
        )

    patient_ref = uid("Patient")
    encounter_ref = uid("Encounter")
    when = _fhir_time(row["visit_time"])
    enc_identifier = {"system": f"urn:yifang:his:encounter:{org}", "value": eid}
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": patient_ref,
            "resource": {
                "resourceType": "Patient",
                "identifier": [
                    {"system": PATIENT_SYSTEM, "value": row["patient_id"]},
                    {"system": RESIDENT_ID_SYSTEM, "value": row["id_number"]},
                ],
                "name": [{"text": row["patient_name"]}],
                "gender": "male" if row["sex"] == "1" else "female",
                "birthDate": row["birth_date"],
                "telecom": [{"system": "phone", "value": row["phone"]}] if row["phone"] else [],
                "address": [{"text": row["address_detail"], "district": row["address_code"]}],
            },
            "request": {
                "method": "POST",
                "url": "Patient",
                "ifNoneExist": f"identifier={RESIDENT_ID_SYSTEM}|{row['id_number']}",
            },
        },
        {
            "fullUrl": encounter_ref,
            "resource": {
                "resourceType": "Encounter",
                "identifier": [enc_identifier],
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
                "subject": {"reference": patient_ref},
                "period": {"start": when},
                "reasonCode": [{"text": row["chief_complaint"]}],
                "serviceProvider": {
                    "identifier": {"system": "urn:yifang:org", "value": org},
                    "display": row["org_name"],
                },
                "serviceType": {"text": row["department"]},
            },
            "request": {
                "method": "POST",
                "url": "Encounter",
                "ifNoneExist": f"identifier={enc_identifier['system']}|{eid}",
            },
        },
        {
            "fullUrl": uid("Condition"),
            "resource": {
                "resourceType": "Condition",
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                },
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                "code": "encounter-diagnosis",
                            }
                        ]
                    }
                ],
                "code": {
                    "coding": [
                        {"system": ICD10_SYSTEM, "code": row["icd10"], "display": row["diagnosis"]}
                    ],
                    "text": row["diagnosis"],
                },
                "subject": {"reference": patient_ref},
                "encounter": {"reference": encounter_ref},
                "recordedDate": when,
            },
            "request": {"method": "POST", "url": "Condition"},
        },
        {
            "fullUrl": uid("Observation", 0),
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "category": [_category("vital-signs")],
                "code": {
                    "coding": [
                        {
                            "system": "http://loinc.org",
                            "code": "8310-5",
                            "display": "Body temperature",
                        }
                    ],
                    "text": "体温",
                },
                "subject": {"reference": patient_ref},
                "encounter": {"reference": encounter_ref},
                "effectiveDateTime": when,
                "valueQuantity": {
                    "value": float(row["temperature"]),
                    "unit": "Cel",
                    "system": "http://unitsofmeasure.org",
                    "code": "Cel",
                },
            },
            "request": {"method": "POST", "url": "Observation"},
        },
    ]
    results = []
    for n, lab in enumerate(labs, start=1):
        ref = uid("Observation", n)
        results.append({"reference": ref})
        entries.append(
            {
                "fullUrl": ref,
                "resource": {
                    "resourceType": "Observation",
                    "identifier": [{"system": "urn:yifang:lis:order", "value": lab["order_id"]}],
                    "status": "final",
                    "category": [_category("laboratory")],
                    "code": {
                        "coding": [
                            {
                                "system": LAB_SYSTEM,
                                "code": lab["test_code"],
                                "display": lab["test_name"],
                            }
                        ],
                        "text": lab["test_name"],
                    },
                    "subject": {"reference": patient_ref},
                    "encounter": {"reference": encounter_ref},
                    "effectiveDateTime": _fhir_time(lab["collected_at"]),
                    "issued": _fhir_time(lab["reported_at"]),
                    "valueString": lab["result"],
                    "interpretation": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                                    "code": "POS" if lab["abnormal_flag"] == "A" else "NEG",
                                }
                            ]
                        }
                    ],
                    "specimen": {"display": lab["specimen"]},
                },
                "request": {"method": "POST", "url": "Observation"},
            }
        )
    if labs:
        entries.append(
            {
                "fullUrl": uid("DiagnosticReport"),
                "resource": {
                    "resourceType": "DiagnosticReport",
                    "status": "final",
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
                                    "code": "LAB",
                                }
                            ]
                        }
                    ],
                    "code": {"text": "检验报告"},
                    "subject": {"reference": patient_ref},
                    "encounter": {"reference": encounter_ref},
                    "issued": _fhir_time(max(lab["reported_at"] for lab in labs)),
                    "result": results,
                },
                "request": {"method": "POST", "url": "DiagnosticReport"},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _category(code: str) -> dict[str, Any]:
    return {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": code}
        ]
    }


# ---------------------------------------------------------------------------------------
# HL7 v2.5.1
# ---------------------------------------------------------------------------------------


def _hl7_ts(text: str) -> str:
    return text.replace("-", "").replace(" ", "").replace(":", "")


def _msh(row: dict[str, Any], kind: str, n: int) -> str:
    org = row["org_code"]
    stamp = _hl7_ts(row["visit_time"])
    control = f"{row['encounter_id']}-{kind[:3]}{n}"
    return (
        f"MSH|^~\\&|HIS|{org}|YIFANG|CDC|{stamp}||{kind}|{control}|P|2.5.1|||AL|NE||UNICODE UTF-8"
    )


def _pid(row: dict[str, Any]) -> str:
    ids = f"{row['patient_id']}^^^{row['org_code']}^PI~{row['id_number']}^^^CHN^NNCHN"
    sex = "M" if row["sex"] == "1" else "F"
    birth = row["birth_date"].replace("-", "")
    address = f"{_hl7_escape(row['address_detail'])}^^^^^^H^^{row['address_code']}"
    phone = row["phone"]
    return f"PID|1||{ids}||{_hl7_escape(row['patient_name'])}||{birth}|{sex}|||{address}||{phone}"


def _pv1(row: dict[str, Any]) -> str:
    """PV1 of an outpatient visit: class O, location, visit number (19), admit time (44)."""
    fields = [""] * 45
    fields[0] = "PV1"
    fields[1] = "1"
    fields[2] = "O"
    fields[3] = f"{_hl7_escape(row['department'])}^^^{row['org_code']}"
    fields[19] = row["encounter_id"]
    fields[44] = _hl7_ts(row["visit_time"])
    return "|".join(fields)


def hl7_adt_a04(row: dict[str, Any]) -> str:
    """ADT^A04 (register an outpatient) with chief complaint, temperature and diagnosis."""
    stamp = _hl7_ts(row["visit_time"])
    segments = [
        _msh(row, "ADT^A04^ADT_A01", 1),
        f"EVN|A04|{stamp}",
        _pid(row),
        _pv1(row),
        f"PV2|||^{_hl7_escape(row['chief_complaint'])}",
        f"OBX|1|NM|8310-5^Body temperature^LN||{row['temperature']}|Cel^°C^UCUM|||||F|||{stamp}",
        f"DG1|1||{row['icd10']}^{_hl7_escape(row['diagnosis'])}^I10||{stamp}|F",
    ]
    return HL7_SEP.join(segments) + HL7_SEP


def hl7_oru_r01(row: dict[str, Any], labs: list[dict[str, Any]]) -> str:
    """ORU^R01 with one OBR/OBX pair per laboratory result."""
    segments = [_msh(row, "ORU^R01^ORU_R01", 2), _pid(row), _pv1(row)]
    for n, lab in enumerate(labs, start=1):
        test = f"{lab['test_code']}^{_hl7_escape(lab['test_name'])}^L"
        collected = _hl7_ts(lab["collected_at"])
        reported = _hl7_ts(lab["reported_at"])
        segments.append(
            f"OBR|{n}|{lab['order_id']}|{lab['order_id']}|{test}|||{collected}||||||||"
            f"{_hl7_escape(lab['specimen'])}|||||||{reported}|||F"
        )
        segments.append(
            f"OBX|1|ST|{test}||{_hl7_escape(lab['result'])}||||{lab['abnormal_flag']}|||F|||{reported}"
        )
    return HL7_SEP.join(segments) + HL7_SEP
