"""HL7 v2 messages over a real MLLP connection (TCP on 127.0.0.1), over HTTP and from files."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from tests.hospital.conftest import HOSPITAL, ID_NUMBER, TOWNSHIP, bearer, hl7_adt, hl7_oru
from yifang.cases.models import Card
from yifang.hospital.intake_hl7 import (
    CR,
    FS,
    VT,
    MLLPServer,
    escape,
    frame,
    hl7_time,
    ingest_file,
    parse_hl7,
    split_messages,
    unescape,
)
from yifang.hospital.models import (
    Diagnosis,
    Encounter,
    EncounterSyndrome,
    IdentifiedCase,
    IntakeMessage,
    LabResult,
)


def exchange(messages: list[str | bytes]) -> list[str]:
    """Start the MLLP server on a free port, send each message on one connection and return
    the ACKs, in order."""

    async def run() -> list[str]:
        server = MLLPServer("127.0.0.1", 0)
        port = await server.start()
        acks = []
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for message in messages:
                writer.write(message if isinstance(message, bytes) else frame(message))
                await writer.drain()
                data = await asyncio.wait_for(reader.readuntil(FS + CR), 60)
                assert data.startswith(VT)
                acks.append(data[1:-2].decode("utf-8"))
            writer.close()
            await writer.wait_closed()
        finally:
            await server.stop()
        return acks

    return asyncio.run(run())


def msa(ack: str) -> list[str]:
    line = next(s for s in ack.split("\r") if s.startswith("MSA|"))
    return line.split("|")


def errs(ack: str) -> list[str]:
    return [s for s in ack.split("\r") if s.startswith("ERR|")]


def count(session, model, *where):
    return session.scalar(select(func.count()).select_from(model).where(*where))


def test_adt_and_oru_over_mllp_are_acknowledged_and_stored(session, rules_loaded):
    adt = hl7_adt("MSG1", diagnoses=[("A09.000x003", "感染性腹泻")])
    oru = hl7_oru("MSG2")
    acks = exchange([adt, oru])
    assert msa(acks[0])[:3] == ["MSA", "AA", "MSG1"]
    assert msa(acks[1])[:3] == ["MSA", "AA", "MSG2"]
    assert acks[0].startswith("MSH|^~\\&|YIFANG|")
    assert "|ACK^A04^ACK|" in acks[0]

    session.expire_all()
    enc = session.scalars(select(Encounter)).one()
    assert (enc.org_code, enc.visit_number, enc.patient_name) == (HOSPITAL, "V9001", "马建国")
    assert enc.id_number == ID_NUMBER and enc.address_code == TOWNSHIP
    assert enc.visit_time.isoformat() == "2025-03-01T09:30:00"
    assert enc.temperature_c == 37.2 and enc.department == "肠道门诊"
    assert enc.doctor_name == "李医生"
    assert session.scalars(select(EncounterSyndrome.syndrome)).all() == ["diarrhoea"]
    lab = session.scalars(select(LabResult)).one()
    assert lab.encounter_id == enc.id and lab.positive is True
    case = session.scalars(select(IdentifiedCase)).one()
    assert (case.disease_code, case.subtype_code, case.classification) == ("OID", "NORO", "3")
    assert case.rule_kind == "lab"  # the result upgraded the clinical diagnosis's draft
    card = session.get(Card, case.card_id)
    assert card.status == "draft" and card.subtype_code == "NORO" and card.classification == "3"
    assert [m.status for m in session.scalars(select(IntakeMessage))] == ["accepted"] * 2


def test_a_repeated_message_is_acknowledged_but_not_stored_twice(session, rules_loaded):
    adt = hl7_adt("MSG10", diagnoses=[("B01.x00", "水痘")])
    acks = exchange([adt, adt])
    assert [msa(a)[1] for a in acks] == ["AA", "AA"]
    assert "duplicate" in msa(acks[1])[3]
    session.expire_all()
    assert count(session, Encounter) == 1 and count(session, IdentifiedCase) == 1
    assert sorted(session.scalars(select(IntakeMessage.status))) == ["accepted", "duplicate"]


def test_malformed_messages_get_ae_or_ar_and_are_kept(session, rules_loaded):
    bad_date = hl7_adt("MSG20", birth="19901345")
    unsupported = hl7_adt("MSG21").replace("ADT^A04^ADT_A01", "SIU^S12^SIU_S12")
    unknown_org = hl7_adt("MSG22", facility="NO-SUCH-HOSPITAL")
    no_visit = hl7_adt("MSG23", visit="")
    garbage = "this is not HL7"
    acks = exchange([bad_date, unsupported, unknown_org, no_visit, garbage])
    assert [msa(a)[1] for a in acks] == ["AE", "AR", "AR", "AE", "AR"]
    assert "PID^1^7" in errs(acks[0])[0]  # ERR-2 names segment and field
    assert "^102^" not in errs(acks[0])[0] and "102^Data type error" in errs(acks[0])[0]
    assert "PV1^1^19" in errs(acks[3])[0]
    session.expire_all()
    kept = session.scalars(select(IntakeMessage).order_by(IntakeMessage.id)).all()
    assert [m.status for m in kept] == ["rejected"] * 5
    assert kept[4].raw == garbage
    assert count(session, Encounter) == 0


def test_out_of_order_adt_does_not_overwrite_newer_data(session, rules_loaded):
    newer = hl7_adt(
        "MSG31", event="A08", sent="20250301120000", complaint="发热，腹泻", temperature="38.4"
    )
    older = hl7_adt("MSG30", sent="20250301100000", complaint="腹泻", temperature="37.0")
    acks = exchange([newer, older])
    assert [msa(a)[1] for a in acks] == ["AA", "AA"]
    session.expire_all()
    enc = session.scalars(select(Encounter)).one()
    assert enc.chief_complaint == "发热，腹泻" and enc.temperature_c == 38.4
    assert enc.source_time.isoformat() == "2025-03-01T12:00:00"


def test_result_before_admission_creates_the_visit_then_is_completed(session, rules_loaded):
    oru = hl7_oru("MSG40", visit="V77", sent="20250301090000")
    adt = hl7_adt(
        "MSG41", visit="V77", sent="20250301095000", diagnoses=[("A08.1", "诺如病毒肠炎")]
    )
    acks = exchange([oru, adt])
    assert [msa(a)[1] for a in acks] == ["AA", "AA"]
    session.expire_all()
    enc = session.scalars(select(Encounter)).one()
    assert enc.department == "肠道门诊" and enc.visit_time is not None
    assert count(session, IdentifiedCase) == 1
    case = session.scalars(select(IdentifiedCase)).one()
    assert case.disease_code == "OID" and case.subtype_code == "NORO"


def test_deleted_diagnosis_withdraws_draft(session, rules_loaded):
    first = hl7_adt("MSG50", diagnoses=[("B05.900", "麻疹")], sent="20250301100000")
    retract = hl7_adt(
        "MSG51",
        event="A08",
        diagnoses=[("B05.900", "麻疹")],
        deleted={"B05.900"},
        sent="20250301130000",
    )
    exchange([first, retract])
    session.expire_all()
    assert session.scalars(select(Diagnosis.refuted)).one() is True
    assert session.scalars(select(IdentifiedCase.status)).one() == "withdrawn"


def test_split_frames_and_several_messages_in_one_read(session, rules_loaded):
    one, two = hl7_adt("MSG60", visit="A1"), hl7_adt("MSG61", visit="A2")
    data = frame(one) + frame(two)

    async def run() -> list[str]:
        server = MLLPServer("127.0.0.1", 0)
        port = await server.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(data[:25])  # a frame cut in two TCP writes, then two frames at once
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(data[25:])
        await writer.drain()
        got = [await asyncio.wait_for(reader.readuntil(FS + CR), 60) for _ in range(2)]
        writer.close()
        await server.stop()
        return [g.decode() for g in got]

    acks = asyncio.run(run())
    assert [msa(a[1:-2])[2] for a in acks] == ["MSG60", "MSG61"]
    session.expire_all()
    assert count(session, Encounter) == 2


def test_gb18030_message_is_decoded(session, rules_loaded):
    text = hl7_adt("MSG70").replace("UNICODE UTF-8", "GB18030")
    acks = exchange([VT + text.encode("gb18030") + FS + CR])
    assert msa(acks[0])[1] == "AA"
    session.expire_all()
    assert session.scalars(select(Encounter.patient_name)).one() == "马建国"


def test_file_with_several_messages(session, rules_loaded, tmp_path):
    text = "\n".join(
        [hl7_adt("F1", visit="X1").replace("\r", "\n"), hl7_oru("F2", visit="X1"), "garbage"]
    )
    outcomes = list(ingest_file(text))
    # 'garbage' trails the last message, which is therefore refused (and kept)
    assert [r.status for _ack, r in outcomes] == ["accepted", "rejected"]
    assert msa(outcomes[1][0])[1] == "AR"
    assert len(split_messages(text)) == 2
    clean = "\n".join([hl7_oru("F3", visit="X1").replace("\r", "\r\n")])
    assert [r.status for _ack, r in ingest_file(clean)] == ["accepted"]
    session.expire_all()
    assert session.scalars(select(IntakeMessage.source)).all() == ["hl7-file"] * 3
    assert (
        session.scalars(select(IntakeMessage.raw).where(IntakeMessage.status == "rejected"))
        .one()
        .endswith("garbage")
    )


def test_hl7_over_http(client, session, tokens):
    r = client.post(
        "/api/hospital/hl7",
        content=hl7_adt("H1", diagnoses=[("A15.000", "肺结核")]).encode(),
        headers={**bearer(tokens["his"]), "Content-Type": "text/plain"},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/hl7-v2")
    assert msa(r.text)[1] == "AA"
    session.expire_all()
    case = session.scalars(select(IdentifiedCase)).one()
    assert (case.disease_code, case.classification) == ("TB_POS", "3")


def test_parser_details():
    parsed = parse_hl7(hl7_adt("P1", diagnoses=[("J10.1", "流感")]))
    assert parsed.format == "ADT^A04" and parsed.org_code == HOSPITAL
    rec = parsed.records[0]
    assert rec.diagnoses[0].icd10 == "J10.1" and rec.diagnoses[0].text == "流感"
    assert rec.chief_complaint == "腹泻水样便2天，无发热"
    assert hl7_time("202503011030+0000").isoformat() == "2025-03-01T18:30:00"
    assert hl7_time("20250301").isoformat() == "2025-03-01T00:00:00"
    assert unescape(escape("a|b^c&d~e\\f")) == "a|b^c&d~e\\f"
