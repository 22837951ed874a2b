"""FHIR R4 bundles sent to the real endpoint: what is stored and what is answered."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.hospital.conftest import HOSPITAL, ID_NUMBER, TOWNSHIP, bearer, dumps, fhir_bundle
from yifang.cases.models import Card
from yifang.hospital.models import (
    Diagnosis,
    Encounter,
    EncounterSyndrome,
    IdentifiedCase,
    IntakeMessage,
    LabResult,
)

FLU = [("J10.100", "流行性感冒")]


def post(client, body, token):
    return client.post(
        "/api/fhir",
        content=body if isinstance(body, str | bytes) else dumps(body),
        headers={**bearer(token), "Content-Type": "application/fhir+json"},
    )


def count(session, model, *where):
    return session.scalar(select(func.count()).select_from(model).where(*where))


def test_valid_bundle_is_stored_classified_and_drafted(client, session, tokens):
    bundle = fhir_bundle(
        "V100",
        conditions=FLU,
        observations=[{"test": "甲型流感病毒核酸检测(H1N1)", "result": "阳性", "flag": "POS"}],
    )
    r = post(client, bundle, tokens["his"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "information"
    assert "1 draft card" in outcome["issue"][0]["diagnostics"]

    session.expire_all()
    enc = session.scalars(select(Encounter)).one()
    assert (enc.org_code, enc.visit_number) == (HOSPITAL, "V100")
    assert enc.patient_name == "马建国" and enc.id_number == ID_NUMBER and enc.sex == "1"
    assert enc.patient_number == "MR-778899" and enc.address_code == TOWNSHIP
    assert enc.visit_time.isoformat() == "2025-03-01T09:30:00"  # local wall-clock
    assert enc.temperature_c == 38.6 and enc.chief_complaint == "发热、咳嗽3天"
    assert enc.department == "发热门诊" and enc.doctor_name == "李医生"
    lab = session.scalars(select(LabResult)).one()
    assert lab.positive is True and lab.encounter_id == enc.id
    syndromes = session.scalars(select(EncounterSyndrome.syndrome)).all()
    assert syndromes == ["fever_respiratory"]

    case = session.scalars(select(IdentifiedCase)).one()
    assert (case.disease_code, case.subtype_code, case.classification) == ("FLU", "A_H1N1", "3")
    assert case.rule_kind == "lab" and "J10.100" in case.evidence
    assert case.diagnosed_at.isoformat() == "2025-03-01T10:00:00"  # the diagnosis, to the hour
    assert case.due_at.isoformat() == "2025-03-02T10:00:00"  # + 24 h
    card = session.get(Card, case.card_id)
    assert card.status == "draft" and card.source == "hospital" and card.org_code == HOSPITAL
    assert card.patient_name == "马建国" and card.address_code == TOWNSHIP
    assert card.residence_category == "1"  # 本县区: the address is in the hospital's county
    assert card.doctor_name == "李医生"
    assert {e["field"] for e in case.draft_errors} == {"occupation"}  # the doctor completes it

    message = session.scalars(select(IntakeMessage)).one()
    assert message.status == "accepted" and message.org_code == HOSPITAL
    assert message.raw == dumps(bundle)
    assert r.headers["X-Yifang-Intake-Id"] == str(message.id)


def test_repeated_bundle_is_recognised_and_changes_nothing(client, session, tokens):
    bundle = fhir_bundle("V200", conditions=FLU, bundle_id="B-SAME")
    first = post(client, bundle, tokens["his"])
    again = post(client, bundle, tokens["his"])
    assert first.status_code == again.status_code == 200
    issue = again.json()["issue"][0]
    assert issue["code"] == "duplicate"
    session.expire_all()
    statuses = session.scalars(select(IntakeMessage.status).order_by(IntakeMessage.id)).all()
    assert statuses == ["accepted", "duplicate"]
    assert count(session, Encounter) == 1
    assert count(session, IdentifiedCase) == 1
    assert count(session, Card) == 1


def test_malformed_json_is_answered_400_and_kept(client, session, tokens):
    r = post(client, '{"resourceType": "Bundle", "entry": [', tokens["his"])
    assert r.status_code == 400
    issue = r.json()["issue"][0]
    assert issue["severity"] == "error" and issue["code"] == "structure"
    session.expire_all()
    message = session.scalars(select(IntakeMessage)).one()
    assert message.status == "rejected" and message.raw.startswith('{"resourceType"')


def test_invalid_resource_is_answered_422_with_its_path(client, session, tokens):
    bundle = fhir_bundle("V300", conditions=FLU, patient={"birthDate": "1990-13-45"})
    r = post(client, bundle, tokens["his"])
    assert r.status_code == 422
    issues = r.json()["issue"]
    assert any("birthDate" in " ".join(i.get("expression", [])) for i in issues)
    session.expire_all()
    assert count(session, Encounter) == 0
    assert session.scalars(select(IntakeMessage.status)).one() == "rejected"


def test_unsupported_resource_and_not_a_bundle(client, session, tokens):
    r = post(client, {"resourceType": "Patient", "id": "x"}, tokens["his"])
    assert r.status_code == 400
    bundle = fhir_bundle("V301")
    bundle["entry"].append({"resource": {"resourceType": "MedicationRequest", "id": "m"}})
    r = post(client, bundle, tokens["his"])
    assert r.status_code == 422
    assert r.json()["issue"][0]["code"] == "not-supported"


def test_token_is_required_and_must_belong_to_a_reporting_hospital(client, session, tokens):
    bundle = dumps(fhir_bundle("V400", conditions=FLU))
    r = client.post("/api/fhir", content=bundle)
    assert r.status_code == 401 and r.json()["resourceType"] == "OperationOutcome"
    r = post(client, bundle, "yf_not-a-real-token")
    assert r.status_code == 401
    r = post(client, bundle, tokens["viewer"])
    assert r.status_code == 403
    session.expire_all()
    assert count(session, IntakeMessage) == 0


def test_a_hospital_cannot_send_another_hospitals_encounters(client, session, tokens):
    r = post(client, fhir_bundle("V500", conditions=FLU, provider=HOSPITAL), tokens["his2"])
    assert r.status_code == 422
    assert r.json()["issue"][0]["code"] == "forbidden"
    session.expire_all()
    assert count(session, Encounter) == 0


def test_out_of_order_update_keeps_the_newer_data(client, session, tokens):
    newer = fhir_bundle(
        "V600",
        conditions=[("J10.100", "流行性感冒")],
        complaint="发热咳嗽，现咽痛",
        timestamp="2025-03-01T12:00:00+08:00",
    )
    older = fhir_bundle(
        "V600",
        conditions=[("J06.900", "急性上呼吸道感染")],
        complaint="咳嗽1天",
        temperature=None,
        timestamp="2025-03-01T09:40:00+08:00",
    )
    assert post(client, newer, tokens["his"]).status_code == 200
    assert post(client, older, tokens["his"]).status_code == 200  # arrives late
    session.expire_all()
    enc = session.scalars(select(Encounter)).one()
    assert enc.chief_complaint == "发热咳嗽，现咽痛"  # the late, older message does not win
    assert enc.temperature_c == 38.6
    codes = sorted(session.scalars(select(Diagnosis.icd10)).all())
    assert codes == ["J06.900", "J10.100"]  # its diagnosis is still added
    assert count(session, IdentifiedCase) == 1


def test_a_refuted_condition_withdraws_the_draft(client, session, tokens):
    post(client, fhir_bundle("V700", conditions=[("B01.x00", "水痘")]), tokens["his"])
    later = fhir_bundle(
        "V700",
        conditions=[("B01.x00", "水痘")],
        refuted={"B01.x00"},
        timestamp="2025-03-01T18:00:00+08:00",
    )
    assert post(client, later, tokens["his"]).status_code == 200
    session.expire_all()
    case = session.scalars(select(IdentifiedCase)).one()
    assert case.status == "withdrawn"
    card = session.get(Card, case.card_id)
    assert card.status == "deleted" and card.deleted_reason_code == "ruledout"


def test_messages_are_listed_for_inspection(client, session, tokens):
    post(client, "not json", tokens["his"])
    r = client.get("/api/hospital/messages?status=rejected", headers=bearer(tokens["his"]))
    assert r.status_code == 200
    rows = r.json()
    assert len(rows) == 1 and rows[0]["errors"][0]["code"] == "invalid_json"
    one = client.get(f"/api/hospital/messages/{rows[0]['id']}", headers=bearer(tokens["his"]))
    assert one.status_code == 200 and one.json()["raw"] == "not json"
