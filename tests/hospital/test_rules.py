"""Case-identification and syndrome rules: the data files, matching, editing."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from tests.hospital.conftest import bearer
from yifang.hospital import rules as r
from yifang.hospital.schemas import RuleIn, normalise_icd
from yifang.hospital.syndromes import affirmed_text, classify


@pytest.fixture()
def rs(session, rules_loaded):
    return r.ruleset(session)


def dx(*codes: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "encounter_id": list(range(1, len(codes) + 1)),
            "entry_key": ["d"] * len(codes),
            "icd10": list(codes),
            "text": [None] * len(codes),
            "diagnosed_at": [datetime(2025, 3, 1, 9)] * len(codes),
            "refuted": [False] * len(codes),
        },
        schema_overrides={"text": pl.String},
    )


def diseases_of(rs, *codes: str) -> list[str | None]:
    found = {
        row["encounter_id"]: row["disease_code"]
        for row in r.diagnosis_candidates(rs, dx(*codes)).iter_rows(named=True)
    }
    return [found.get(i) for i in range(1, len(codes) + 1)]


def test_data_files_load_and_name_catalog_diseases(session, rules_loaded):
    files = r.read_data_files()
    assert {k for k, _ in files} == {"icd10", "lab", "lab_text", "sign", "syndrome", "negation"}
    rs = r.ruleset(session)
    assert len(rs.icd) == sum(1 for k, _ in files if k == "icd10")  # none skipped
    assert len(rs.lab) == sum(1 for k, _ in files if k == "lab")


@pytest.mark.parametrize(
    ("raw", "short"),
    [("a150", "A15.0"), ("A15.000x001", "A15.000X001"), ("B20†", "B20"), (" j10.1 ", "J10.1")],
)
def test_icd_normalisation(raw, short):
    assert normalise_icd(raw) == short


def test_icd_codes_map_to_diseases_most_specific_first(rs):
    assert diseases_of(
        rs,
        "A00",  # cholera
        "B08.4",  # HFMD
        "B08.5",  # herpangina: not notifiable
        "A15.000x001",  # national clinical edition extension → pulmonary TB, bacteriological
        "A15.6",  # tuberculous pleurisy beats A15
        "A16.2",
        "B01.901",
        "A23.9",
        "J09.x01",
        "J11.100",
        "J06.9",  # common cold: nothing
        "B18.1",
        "B18.2",
        "Z21",
        "B22.7",
    ) == [
        "CHOLERA",
        "HFMD",
        None,
        "TB_POS",
        "TBPLE",
        "TB_NOLAB",
        "VARICELLA",
        "BRUC",
        "NIV",
        "FLU",
        None,
        "HEP_B",
        "HEP_C",
        "HIV",
        "AIDS_PT",
    ]


def labs(*rows: tuple[str, str, bool | None]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "encounter_id": list(range(1, len(rows) + 1)),
            "test_code": [None] * len(rows),
            "test_name": [t for t, _, _ in rows],
            "result_text": [x for _, x, _ in rows],
            "positive": [p for _, _, p in rows],
            "observed_at": [datetime(2025, 3, 1, 15)] * len(rows),
        },
        schema_overrides={"test_code": pl.String, "positive": pl.Boolean},
    )


def test_lab_results_prove_diseases(rs):
    found = r.lab_candidates(
        rs,
        labs(
            ("HIV-1/2抗体确证试验(免疫印迹)", "阳性", None),
            ("HIV抗体初筛", "阳性", None),  # a screening test proves nothing
            ("痰涂片抗酸杆菌", "+", None),
            ("Xpert MTB/RIF", "MTB检出，利福平耐药:阳性", None),
            ("Xpert MTB/RIF", "MTB检出，利福平耐药:未检出", None),
            ("甲型流感病毒核酸(H3N2)", "检出", None),
            ("乙型流感病毒核酸", "阴性", None),
            ("布鲁氏菌试管凝集试验(SAT)", "1:200", None),
            ("布鲁氏菌试管凝集试验(SAT)", "1:50", None),
            ("诺如病毒核酸检测", "Detected", None),
            ("新型冠状病毒核酸检测", "阳性", False),  # the sender's flag wins
            ("血涂片找疟原虫", "查见间日疟原虫", True),
        ),
    )
    got = {
        row["encounter_id"]: (row["disease_code"], row["subtype_code"], row["classification"])
        for row in found.iter_rows(named=True)
    }
    assert got == {
        1: ("HIV", None, "5"),
        3: ("TB_POS", None, "3"),
        4: ("TB_RR", None, "3"),
        5: ("TB_POS", None, "3"),
        6: ("FLU", "A_H3N2", "3"),
        8: ("BRUC", None, "3"),
        10: ("OID", "NORO", "3"),
        12: ("MAL_VIV", None, "3"),
    }


@pytest.mark.parametrize(
    ("complaint", "kept"),
    [
        ("发热咳嗽3天", {"发热", "咳嗽"}),
        ("咳嗽2天，无发热", {"咳嗽"}),
        ("否认发热、咳嗽、腹泻", set()),
        ("无明显诱因出现发热", {"发热"}),
        ("无咳嗽伴发热", {"发热"}),
        ("未出现发热，腹泻3次", {"腹泻"}),
        ("乏力、发热", {"发热"}),
    ],
)
def test_negation(rs, complaint, kept):
    text = pl.select(affirmed_text(pl.lit(complaint), rs.negation)).item()
    assert {w for w in ("发热", "咳嗽", "腹泻") if w in text} == kept


def test_syndromes_from_complaints_temperature_and_codes(rs):
    enc = pl.DataFrame(
        {
            "encounter_id": [1, 2, 3, 4, 5, 6, 7, 8],
            "chief_complaint": [
                "发热、咳嗽2天",
                "咳嗽2天，否认发热",
                "腹泻水样便3次",
                "发热伴皮疹1天",
                "皮肤巩膜黄染1周",
                "发热、头痛、抽搐",
                "发热伴牙龈出血",
                "咳嗽",
            ],
            "temperature_c": [None, None, None, None, None, None, None, 38.9],
        }
    )
    codes = dx("J10.1", "J06.9", "K29.7", "R21", "I10", "I10", "A98.5", "J20.9")
    found = classify(rs, enc, codes)
    by = {}
    for row in found.iter_rows(named=True):
        by.setdefault(row["encounter_id"], set()).add(row["syndrome"])
    assert by == {
        1: {"fever_respiratory"},
        3: {"diarrhoea"},
        4: {"fever_rash"},
        5: {"jaundice"},
        6: {"encephalitis"},
        7: {"haemorrhagic_fever"},
        8: {"fever_respiratory"},  # fever from the measured temperature
    }


def test_rule_edits_are_checked_kept_over_reloads_and_used(session, rules_loaded):
    with pytest.raises(r.RuleError, match="no disease"):
        r.put_rule(
            session,
            "icd10",
            "X",
            RuleIn(definition={"icd10_from": "A00", "icd10_to": "A00", "disease_code": "NOPE"}),
            "cdc",
        )
    with pytest.raises(r.RuleError, match="groups other diseases"):
        r.put_rule(
            session,
            "icd10",
            "X",
            RuleIn(definition={"icd10_from": "A15", "icd10_to": "A15", "disease_code": "TB"}),
            "cdc",
        )
    with pytest.raises(r.RuleError, match="regular expression"):
        r.put_rule(
            session, "lab", "X", RuleIn(definition={"disease": "FLU", "test": "(?<=a)b"}), "cdc"
        )
    # the CDC maps herpangina (B08.5) to HFMD locally
    r.put_rule(
        session,
        "icd10",
        "B08.5",
        RuleIn(definition={"icd10_from": "B08.5", "icd10_to": "B08.5", "disease_code": "HFMD"}),
        "cdc",
    )
    r.put_rule(
        session,
        "icd10",
        "A00",
        RuleIn(
            definition={"icd10_from": "A00", "icd10_to": "A00", "disease_code": "CHOLERA"},
            active=False,
        ),
        "cdc",
    )
    session.commit()
    report = r.load_rules(session)
    assert report.kept_edited == 1  # A00 is edited (inactive); B08.5 is new, not in the files
    rs = r.ruleset(session)
    assert diseases_of(rs, "B08.5", "A00") == ["HFMD", None]


def test_rules_api(client, session, tokens):
    listed = client.get("/api/hospital/rules?kind=syndrome", headers=bearer(tokens["viewer"]))
    assert listed.status_code == 200
    assert {x["code"] for x in listed.json()} >= {"fever_respiratory", "diarrhoea", "jaundice"}
    body = {"definition": {"keywords": "发热|发烧", "icd10": ["R50"], "min_temperature_c": 38.0}}
    denied = client.put("/api/hospital/rules/sign/fever", json=body, headers=bearer(tokens["his"]))
    assert denied.status_code == 403
    ok = client.put("/api/hospital/rules/sign/fever", json=body, headers=bearer(tokens["cdc"]))
    assert ok.status_code == 200 and ok.json()["edited_by"] == "user_cdc"
    bad = client.put(
        "/api/hospital/rules/syndrome/x",
        json={"definition": {"name_zh": "x", "name_en": "x", "all": ["nonsense"]}},
        headers=bearer(tokens["cdc"]),
    )
    assert bad.status_code == 422 and "unknown signs" in bad.json()["message_en"]
