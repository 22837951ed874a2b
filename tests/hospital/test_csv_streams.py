"""CSV extracts (good rows kept, bad rows named) and the other surveillance streams."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from tests.hospital.conftest import HOSPITAL, ID_NUMBER, TOWNSHIP, bearer
from yifang.hospital import syndromes
from yifang.hospital.intake_csv import ingest_csv
from yifang.hospital.models import (
    Encounter,
    IdentifiedCase,
    IntakeMessage,
    LabResult,
    StreamObservation,
    SyndromeCount,
)

HEADER = "机构编码,就诊号,病案号,姓名,性别,身份证号,出生日期,现住址编码,就诊时间,科室,主诉,体温,诊断编码,诊断名称\n"  # noqa: E501


def row(visit: str, complaint: str, codes: str, names: str, when="2025-03-01 09:30", **kw) -> str:
    values = {
        "org": HOSPITAL,
        "birth": "1990-01-01",
        "sex": "男",
        "temp": "38.2",
        "id": ID_NUMBER,
        **kw,
    }
    return (
        f"{values['org']},{visit},P{visit},马建国,{values['sex']},{values['id']},{values['birth']},"
        f"{TOWNSHIP},{when},发热门诊,{complaint},{values['temp']},{codes},{names}\n"
    )


def count(session, model, *where):
    return session.scalar(select(func.count()).select_from(model).where(*where))


def test_encounter_csv_keeps_good_rows_and_names_bad_ones(session, rules_loaded, tmp_path):
    path = tmp_path / "visits.csv"
    text = HEADER + "".join(
        [
            row("C1", "发热咳嗽2天", "J10.1;J18.9", "流感;肺炎"),
            row("C2", "腹泻3次", "A09", "感染性腹泻", birth="1990-02-30"),  # bad date
            row("C3", "皮疹", "B01", "水痘", sex="X"),  # bad sex
            row("C4", "头痛", "R51", "头痛", org="NOPE"),  # unknown hospital
            row("C5", "腹泻3次，无发热", "A09", "感染性腹泻", temp=""),
        ]
    )
    path.write_bytes(text.encode("gb18030"))  # hospital systems often write GB18030
    report = ingest_csv(session, path, actor="test")
    session.commit()
    assert (report.rows, report.stored, report.rejected) == (5, 2, 3)
    where = sorted(e.location for e in report.errors)
    assert where == ["line 3, birth_date", "line 4, sex", "line 5, org_code"]
    assert report.figures["drafts"] == 2  # C1 influenza, C5 infectious diarrhoea
    session.expire_all()
    assert count(session, Encounter) == 2
    message = session.get(IntakeMessage, report.message_id)
    assert message.format == "csv/encounters/gb18030" and "马建国" in message.raw
    assert len(message.errors) == 3
    again = ingest_csv(session, path)
    assert again.duplicate_of == report.message_id


def test_lab_csv_creates_results_and_cases(session, rules_loaded, tmp_path):
    path = tmp_path / "lab.csv"
    path.write_text(
        "org_code,visit_number,patient_name,id_number,test_name,result_text,observed_at\n"
        f"{HOSPITAL},L1,马建国,{ID_NUMBER},布鲁氏菌试管凝集试验,1:400 (++),2025-03-02 10:00\n"
        f"{HOSPITAL},L2,马建国,{ID_NUMBER},布鲁氏菌试管凝集试验,1:25,2025-03-02 10:00\n",
        encoding="utf-8",
    )
    report = ingest_csv(session, path)
    session.commit()
    assert report.kind == "labs" and report.stored == 2
    session.expire_all()
    assert count(session, LabResult) == 2
    case = session.scalars(select(IdentifiedCase)).one()
    assert case.disease_code == "BRUC" and case.classification == "3"


def test_csv_upload_api(client, session, tokens, tmp_path):
    body = HEADER + row("U1", "发热伴皮疹", "B05", "麻疹")
    r = client.post(
        "/api/hospital/csv",
        files={"file": ("visits.csv", body.encode("utf-8"), "text/csv")},
        headers=bearer(tokens["his2"]),  # 海原县人民医院: may import, but only its own rows
    )
    assert r.status_code == 200
    assert r.json()["rejected"] == 1 and r.json()["errors"][0]["code"] == "unknown_organisation"


def test_syndrome_counts_follow_updates(session, rules_loaded, tmp_path):
    first = tmp_path / "a.csv"
    first.write_text(
        HEADER
        + row("S1", "发热咳嗽", "J06.9", "上感")
        + row("S2", "腹泻", "I10", "高血压", id="")
        + row("S3", "头晕", "I10", "高血压", id=""),
        encoding="utf-8",
    )
    ingest_csv(session, first)
    session.commit()
    cells = {(c.syndrome, c.count, c.visits) for c in session.scalars(select(SyndromeCount))}
    assert cells == {("fever_respiratory", 1, 3), ("diarrhoea", 1, 3)}
    second = tmp_path / "b.csv"  # S2's complaint corrected: no diarrhoea after all
    second.write_text(HEADER + row("S2", "头晕", "I10", "高血压", id=""), encoding="utf-8")
    ingest_csv(session, second)
    session.commit()
    session.expire_all()
    cells = {(c.syndrome, c.count) for c in session.scalars(select(SyndromeCount))}
    assert cells == {("fever_respiratory", 1)}
    series = syndromes.series(session, "fever_respiratory", date(2025, 3, 1), date(2025, 3, 2))
    assert series == [(date(2025, 3, 1), 1, 3)]


def test_streams_api(client, session, tokens):
    rows = [
        {
            "stream": "school_absence",
            "region_code": "640521100",
            "place": "宁安小学",
            "day": "2025-03-01",
            "value": 12,
            "denominator": 640,
        },
        {
            "stream": "ili",
            "region_code": "640521",
            "day": "2025-03-01",
            "value": 41,
            "denominator": 820,
        },
    ]
    assert (
        client.post(
            "/api/hospital/streams", json=rows, headers=bearer(tokens["viewer"])
        ).status_code
        == 403
    )
    r = client.post("/api/hospital/streams", json=rows, headers=bearer(tokens["cdc"]))
    assert r.status_code == 200 and r.json() == {"stored": 2}
    rows[0]["value"] = 15  # a correction replaces the value
    client.post("/api/hospital/streams", json=rows[:1], headers=bearer(tokens["cdc"]))
    bad = client.post(
        "/api/hospital/streams",
        json=[{**rows[1], "stream": "tea_sales"}],
        headers=bearer(tokens["cdc"]),
    )
    assert bad.status_code == 422 and "tea_sales" in bad.json()["message_en"]
    got = client.get(
        "/api/hospital/streams?stream=school_absence&start=2025-03-01&end=2025-03-01",
        headers=bearer(tokens["viewer"]),
    ).json()
    assert [(g["place"], g["value"]) for g in got] == [("宁安小学", 15.0)]
    session.expire_all()
    assert count(session, StreamObservation) == 2
