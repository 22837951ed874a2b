"""HL7 FHIR R4 intake: a Bundle of Patient, Encounter, Condition, Observation and
DiagnosticReport resources read into :class:`~yifang.hospital.schemas.EncounterRecord`.

Resources are parsed and checked with ``fhir.resources`` (its R4B models, which for these
five resources are R4's). What Yifang takes from each:

* **Patient** — identifiers (a valid GB 11643 resident ID number in any identifier is the
  document number; the one typed ``MR``, else the first other, the hospital's patient number),
  name (``text``, else family + given without a space, as Chinese names are written), gender,
  birth date, phone, address (a GB/T 2260 code in ``district``/``city``/``postalCode``-free
  fields or an extension whose URL ends in ``address-code``; ``text``/``line`` as the detail),
  a parent or guardian contact's name.
* **Encounter** — the visit: identifier or id (visit number), class (AMB/EMER/IMP), period
  start, service type or type (department), first participant (doctor), reason text (chief
  complaint), service provider (hospital code, when the caller may speak for several).
* **Condition** — ICD-10 code (any coding whose code looks like one), text, recorded/onset
  time, verification status (refuted or entered-in-error → withdrawn).
* **Observation** — body temperature (LOINC 8310-5 or named 体温) and chief complaint (LOINC
  10154-3) go to the visit; anything else is a laboratory result with its interpretation
  (POS/DET/A/H → positive, NEG/ND/N → negative).
* **DiagnosticReport** — its results are taken from the Observations it lists; a report with
  a conclusion and no result Observations becomes a result of its own.

Times with a UTC offset are converted to the city's wall-clock time; times without one are
taken as local. Problems are :class:`~yifang.hospital.schemas.RecordError` with the FHIRPath
of the element; :func:`operation_outcome` turns them into the OperationOutcome answered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from pydantic import ValidationError

from yifang.core.settings import get_settings
from yifang.hospital.schemas import DiagnosisRecord, EncounterRecord, LabRecord, RecordError
from yifang.hospital.service import Parsed

ICD_LIKE = re.compile(r"^[A-Za-z]\d\d(\.[0-9A-Za-z]+)?[†*+]?$")
RESIDENT_ID = re.compile(r"^\d{17}[\dXx]$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
TEMPERATURE_CODES = frozenset({"8310-5", "8331-1", "8332-9", "8333-7"})
COMPLAINT_CODES = frozenset({"10154-3", "8661-1"})
POSITIVE_CODES = frozenset({"POS", "DET", "A", "AA", "H", "HH", "HU", "R", "RR"})
NEGATIVE_CODES = frozenset({"NEG", "ND", "N", "NR"})
CLASSES = {"AMB": "outpatient", "EMER": "emergency", "IMP": "inpatient", "ACUTE": "inpatient"}
REFUTED = frozenset({"refuted", "entered-in-error"})
SUPPORTED = ("Patient", "Encounter", "Condition", "Observation", "DiagnosticReport")


def valid_resident_id(value: str) -> bool:
    """Whether ``value`` is an 18-character GB 11643 number with a right check character."""
    if not RESIDENT_ID.match(value):
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == value[17].upper()


def local_time(value: Any) -> datetime | None:
    """A FHIR date/dateTime/instant as the city's wall-clock time (naive)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(ZoneInfo(get_settings().timezone)).replace(tzinfo=None)
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return None


def _error(location: str, code: str, zh: str, en: str, severity: str = "error") -> RecordError:
    return RecordError(
        location=location,
        code=code,
        message_zh=zh,
        message_en=en,
        severity=severity,
    )


def _path(loc: Iterable[Any]) -> str:
    out = "Bundle"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _codings(concept: Any) -> list[Any]:
    return list(getattr(concept, "coding", None) or []) if concept is not None else []


def _concept_text(concept: Any) -> str | None:
    if concept is None:
        return None
    if getattr(concept, "text", None):
        return str(concept.text)
    for c in _codings(concept):
        if c.display:
            return str(c.display)
    return None


def _ref(reference: Any) -> str | None:
    return str(reference.reference) if reference is not None and reference.reference else None


class _Bundle:
    """The bundle's resources by type, and reference resolution (fullUrl or Type/id)."""

    def __init__(self, bundle: Bundle) -> None:
        self.by_ref: dict[str, Any] = {}
        self.entries: list[tuple[int, Any]] = []
        for i, entry in enumerate(bundle.entry or []):
            res = entry.resource
            if res is None:
                continue
            self.entries.append((i, res))
            if entry.fullUrl:
                self.by_ref[str(entry.fullUrl)] = res
            if res.id:
                self.by_ref[f"{res.get_resource_type()}/{res.id}"] = res

    def of_type(self, name: str) -> list[tuple[int, Any]]:
        return [(i, r) for i, r in self.entries if r.get_resource_type() == name]

    def resolve(self, reference: Any) -> Any:
        key = _ref(reference)
        return self.by_ref.get(key) if key else None


def parse_bundle(raw: str | bytes, org_code: str | None = None) -> Parsed:
    """Read a FHIR Bundle (JSON). Never raises: problems are in :attr:`Parsed.errors`.
    ``org_code`` is the hospital the sender speaks for (its API token's)."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return Parsed(
            "FHIR",
            [],
            [_error("Bundle", "invalid_json", f"不是有效的JSON:{exc}", f"not valid JSON: {exc}")],
        )
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        kind = data.get("resourceType") if isinstance(data, dict) else type(data).__name__
        return Parsed(
            "FHIR",
            [],
            [
                _error(
                    "Bundle.resourceType",
                    "not_a_bundle",
                    f"应为 Bundle,收到 {kind}",
                    f"expected a Bundle, got {kind}",
                )
            ],
        )
    errors: list[RecordError] = []
    for i, entry in enumerate(data.get("entry") or []):
        kind = (
            (entry.get("resource") or {}).get("resourceType") if isinstance(entry, dict) else None
        )
        if kind not in SUPPORTED:
            errors.append(
                _error(
                    f"Bundle.entry[{i}].resource",
                    "unsupported_resource",
                    f"不支持的资源类型 {kind}(仅 {'、'.join(SUPPORTED)})",
                    f"unsupported resource type {kind} (only {', '.join(SUPPORTED)})",
                )
            )
    if errors:
        return Parsed("FHIR Bundle", [], errors)
    try:
        bundle = Bundle.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors()[:50]:
            errors.append(
                _error(
                    _path(err.get("loc", ())),
                    "invalid",
                    f"{_path(err.get('loc', ()))}:{err.get('msg', '')}",
                    f"{_path(err.get('loc', ()))}: {err.get('msg', '')}",
                )
            )
        return Parsed("FHIR Bundle", [], errors)
    except Exception as exc:  # fhir.resources raises KeyError etc. on some malformed input
        return Parsed(
            "FHIR Bundle",
            [],
            [_error("Bundle", "invalid", f"无法解析:{exc}", f"cannot be read: {exc}")],
        )
    key = bundle.identifier.value if bundle.identifier and bundle.identifier.value else bundle.id
    sent = local_time(bundle.timestamp) or local_time(
        bundle.meta.lastUpdated if bundle.meta else None
    )
    records, errors = _records(_Bundle(bundle), org_code, sent)
    return Parsed(
        format=f"FHIR Bundle/{bundle.type or 'collection'}",
        records=records,
        errors=errors,
        org_code=org_code or (records[0].org_code if records else None),
        message_key=str(key) if key else None,
        message_time=sent,
    )


def _records(
    b: _Bundle, org_code: str | None, sent: datetime | None
) -> tuple[list[EncounterRecord], list[RecordError]]:
    errors: list[RecordError] = []
    visits: dict[int, dict[str, Any]] = {}  # id(Encounter resource) → record fields
    for i, enc in b.of_type("Encounter"):
        visit = _encounter(b, i, enc, org_code, sent, errors)
        if visit is not None:
            visits[id(enc)] = visit
    only = next(iter(visits.values())) if len(visits) == 1 else None

    def visit_of(index: int, res: Any, kind: str) -> dict[str, Any] | None:
        enc = b.resolve(getattr(res, "encounter", None))
        if enc is not None and id(enc) in visits:
            return visits[id(enc)]
        if getattr(res, "encounter", None) is None and only is not None:
            return only
        if kind == "Observation" or kind == "DiagnosticReport":
            patient = b.resolve(getattr(res, "subject", None))
            if patient is not None and org_code:
                stub = _patient_fields(patient)
                stub.update(
                    org_code=org_code,
                    visit_number=f"LAB-{res.id or index}",
                    diagnoses=[],
                    labs=[],
                    source_time=sent,
                )
                visits[id(res)] = stub
                return stub
        errors.append(
            _error(
                f"Bundle.entry[{index}].resource.encounter",
                "unlinked",
                f"{kind} 未关联到本消息中的就诊(Encounter)",
                f"the {kind} refers to no Encounter of this bundle",
            )
        )
        return None

    for i, cond in b.of_type("Condition"):
        visit = visit_of(i, cond, "Condition")
        if visit is None:
            continue
        code = next(
            (str(c.code) for c in _codings(cond.code) if c.code and ICD_LIKE.match(str(c.code))),
            None,
        )
        text = _concept_text(cond.code)
        if code is None and text is None:
            errors.append(
                _error(
                    f"Bundle.entry[{i}].resource.code",
                    "required",
                    "诊断缺少ICD-10编码和名称",
                    "the Condition has neither an ICD-10 code nor a text",
                )
            )
            continue
        status = next((str(c.code) for c in _codings(cond.verificationStatus) if c.code), None)
        diagnosed = local_time(cond.recordedDate) or local_time(
            getattr(cond, "onsetDateTime", None)
        )
        onset = local_time(getattr(cond, "onsetDateTime", None))
        if onset is not None and (
            visit.get("onset_date") is None or onset.date() < visit["onset_date"]
        ):
            visit["onset_date"] = onset.date()
        visit["diagnoses"].append(
            DiagnosisRecord(
                entry_key=str(cond.id or f"entry{i}")[:96],
                icd10=code,
                text=(text or "")[:200] or None,
                diagnosed_at=diagnosed,
                kind="diagnosis",
                refuted=status in REFUTED,
            )
        )
    reported: set[int] = set()
    for i, report in b.of_type("DiagnosticReport"):
        members = [b.resolve(r) for r in report.result or []]
        members = [m for m in members if m is not None]
        for m in members:
            reported.add(id(m))
            if getattr(m, "encounter", None) is None and report.encounter is not None:
                m.encounter = report.encounter
        if not members and report.conclusion:
            visit = visit_of(i, report, "DiagnosticReport")
            if visit is not None:
                visit["labs"].append(
                    LabRecord(
                        result_key=f"DiagnosticReport/{report.id or i}"[:128],
                        test_code=next(
                            (str(c.code) for c in _codings(report.code) if c.code), None
                        ),
                        test_name=(_concept_text(report.code) or "")[:128] or None,
                        result_text=str(report.conclusion)[:200],
                        positive=_interpretation(report.conclusionCode or []),
                        status=str(report.status) if report.status else None,
                        observed_at=local_time(report.issued)
                        or local_time(getattr(report, "effectiveDateTime", None)),
                    )
                )
    for i, obs in b.of_type("Observation"):
        visit = visit_of(i, obs, "Observation")
        if visit is None:
            continue
        codes = {str(c.code) for c in _codings(obs.code) if c.code}
        name = _concept_text(obs.code) or ""
        quantity = getattr(obs, "valueQuantity", None)
        if codes & TEMPERATURE_CODES or "体温" in name:
            if quantity is not None and quantity.value is not None:
                value = float(quantity.value)
                if str(quantity.code or quantity.unit or "").lower() in ("[degf]", "°f", "degf"):
                    value = (value - 32) * 5 / 9
                if 25 <= value <= 45:
                    visit["temperature_c"] = round(value, 1)
                else:
                    errors.append(
                        _error(
                            f"Bundle.entry[{i}].resource.valueQuantity",
                            "out_of_range",
                            f"体温 {value} 不合理",
                            f"temperature {value} is implausible",
                            "warning",
                        )
                    )
            continue
        if codes & COMPLAINT_CODES:
            text = getattr(obs, "valueString", None)
            if text:
                visit["chief_complaint"] = str(text)
            continue
        visit["labs"].append(_lab(i, obs))
    records = []
    for visit in visits.values():
        try:
            records.append(EncounterRecord.model_validate(visit))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err.get("loc", ()))
            errors.append(
                _error(
                    f"Encounter {visit.get('visit_number')}.{where}",
                    "invalid",
                    f"{where}:{err.get('msg')}",
                    f"{where}: {err.get('msg')}",
                )
            )
    if not records and not errors:
        errors.append(
            _error(
                "Bundle.entry",
                "required",
                "消息中没有就诊(Encounter)",
                "the bundle holds no Encounter",
            )
        )
    return records, errors


def _interpretation(concepts: Iterable[Any]) -> bool | None:
    for concept in concepts:
        for c in _codings(concept):
            code = str(c.code or "").upper()
            if code in POSITIVE_CODES:
                return True
            if code in NEGATIVE_CODES:
                return False
    return None


def _lab(index: int, obs: Any) -> LabRecord:
    quantity = getattr(obs, "valueQuantity", None)
    concept = getattr(obs, "valueCodeableConcept", None)
    text = getattr(obs, "valueString", None) or _concept_text(concept)
    value = float(quantity.value) if quantity is not None and quantity.value is not None else None
    if text is None and value is not None and quantity is not None:
        text = f"{value:g} {quantity.unit or ''}".strip()
    specimen = None
    return LabRecord(
        result_key=f"Observation/{obs.id or index}"[:128],
        test_code=next((str(c.code) for c in _codings(obs.code) if c.code), None),
        test_name=(_concept_text(obs.code) or "")[:128] or None,
        result_text=(str(text)[:200] if text else None),
        value_num=value,
        unit=(str(quantity.unit)[:32] if quantity is not None and quantity.unit else None),
        positive=_interpretation(obs.interpretation or []),
        specimen=specimen,
        status=str(obs.status) if obs.status else None,
        observed_at=local_time(getattr(obs, "effectiveDateTime", None)) or local_time(obs.issued),
    )


def _patient_fields(patient: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for ident in patient.identifier or []:
        value = str(ident.value or "").strip()
        if not value:
            continue
        type_codes = {str(c.code) for c in _codings(ident.type) if c.code}
        if valid_resident_id(value) and "id_number" not in fields:
            fields["id_number"] = value.upper()
            fields["id_type"] = "1"
        elif "MR" in type_codes or "patient_number" not in fields:
            fields["patient_number"] = value[:64]
    for name in patient.name or []:
        text = name.text or ((name.family or "") + "".join(name.given or []))
        if text:
            fields["patient_name"] = str(text)[:40]
            break
    gender = str(patient.gender or "")
    fields["sex"] = {"male": "1", "female": "2"}.get(gender)
    if patient.birthDate:
        fields["birth_date"] = patient.birthDate
    for tel in patient.telecom or []:
        if tel.system in (None, "phone") and tel.value:
            fields["phone"] = str(tel.value)[:20]
            break
    for addr in patient.address or []:
        code = None
        for ext in addr.extension or []:
            if str(ext.url).endswith("address-code"):
                code = getattr(ext, "valueCode", None) or getattr(ext, "valueString", None)
        for candidate in (code, addr.district, addr.city):
            if candidate and str(candidate).isdigit() and len(str(candidate)) >= 6:
                fields["address_code"] = str(candidate)[:12]
                break
        detail = addr.text or " ".join(addr.line or [])
        if detail:
            fields["address_detail"] = str(detail)[:100]
        break
    for contact in patient.contact or []:
        rel = {str(c.code) for r in contact.relationship or [] for c in _codings(r)}
        if rel & {"PRN", "MTH", "FTH", "GUARD", "N", "parent", "guardian"} and contact.name:
            fields["guardian_name"] = str(
                contact.name.text or (contact.name.family or "") + "".join(contact.name.given or [])
            )[:40]
            break
    return fields


def _encounter(
    b: _Bundle,
    index: int,
    enc: Any,
    org_code: str | None,
    sent: datetime | None,
    errors: list[RecordError],
) -> dict[str, Any] | None:
    where = f"Bundle.entry[{index}].resource"
    number = next((str(i.value) for i in enc.identifier or [] if i.value), None) or enc.id
    if not number:
        errors.append(
            _error(
                f"{where}.identifier",
                "required",
                "就诊缺少标识(identifier 或 id)",
                "the Encounter has no identifier or id",
            )
        )
        return None
    provider = b.resolve(enc.serviceProvider) if enc.serviceProvider else None
    org = org_code
    if enc.serviceProvider is not None:
        ident = enc.serviceProvider.identifier
        stated = (ident.value if ident is not None else None) or (
            next(
                (str(i.value) for i in getattr(provider, "identifier", None) or [] if i.value), None
            )
        )
        if stated and org_code and stated != org_code:
            errors.append(
                _error(
                    f"{where}.serviceProvider",
                    "org_mismatch",
                    f"就诊机构 {stated} 与令牌所属机构 {org_code} 不符",
                    f"service provider {stated} is not the token's organisation {org_code}",
                )
            )
            return None
        org = org or stated
    if not org:
        errors.append(
            _error(
                f"{where}.serviceProvider",
                "required",
                "无法确定报告机构",
                "the reporting organisation is unknown",
            )
        )
        return None
    patient = b.resolve(enc.subject)
    if patient is None:
        errors.append(
            _error(
                f"{where}.subject",
                "required",
                "就诊未关联患者(Patient)",
                "the Encounter refers to no Patient of this bundle",
            )
        )
        return None
    fields = _patient_fields(patient)
    klass = getattr(enc, "class_fhir", None)
    doctor = None
    for part in enc.participant or []:
        if part.individual is not None and part.individual.display:
            doctor = str(part.individual.display)[:40]
            break
    department = _concept_text(enc.serviceType) or next(
        (_concept_text(t) for t in enc.type or [] if _concept_text(t)), None
    )
    complaint = next((_concept_text(r) for r in enc.reasonCode or [] if _concept_text(r)), None)
    fields.update(
        org_code=org,
        visit_number=str(number)[:64],
        visit_time=local_time(enc.period.start) if enc.period else None,
        encounter_class=CLASSES.get(str(klass.code)) if klass is not None and klass.code else None,
        department=(department or "")[:64] or None,
        doctor_name=doctor,
        chief_complaint=complaint,
        status=str(enc.status) if enc.status else None,
        source_time=sent or local_time(enc.meta.lastUpdated if enc.meta else None),
        diagnoses=[],
        labs=[],
    )
    return fields


def operation_outcome(
    errors: Iterable[RecordError], info: str | None = None, code: str = "informational"
) -> dict[str, Any]:
    """An OperationOutcome listing ``errors`` (or one informational issue ``info``)."""
    issues = [
        {
            "severity": "error" if e.severity == "error" else "warning",
            "code": _issue_code(e.code),
            "diagnostics": f"{e.message_zh} / {e.message_en}",
            "expression": [e.location],
        }
        for e in errors
    ]
    if info is not None:
        issues.append({"severity": "information", "code": code, "diagnostics": info})
    if not issues:
        issues.append({"severity": "information", "code": "informational", "diagnostics": "ok"})
    outcome = OperationOutcome.model_validate({"resourceType": "OperationOutcome", "issue": issues})
    return json.loads(outcome.model_dump_json(exclude_none=True))


def _issue_code(code: str) -> str:
    return {
        "invalid_json": "structure",
        "not_a_bundle": "structure",
        "unsupported_resource": "not-supported",
        "required": "required",
        "org_mismatch": "forbidden",
        "unknown_organisation": "not-found",
        "unlinked": "invalid",
        "out_of_range": "value",
    }.get(code, "invalid")
