"""The report-card rules: each broken rule gives the right field error, in zh and en."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.cases.data import samples
from yifang.cases.validation import (
    MESSAGES,
    Reference,
    validate_card,
    validate_frame,
)

REF = samples.reference()


def codes_of(card: dict[str, object]) -> set[str]:
    return {e.code for e in validate_card(card, REF, samples.NOW).errors}


def test_valid_cards_pass_and_come_back_parsed() -> None:
    outcome = validate_card(samples.valid_card(), REF, samples.NOW)
    assert outcome.ok, outcome.errors
    card = outcome.card
    assert card is not None
    assert card.birth_date == date(1980, 5, 17)
    assert card.diagnosis_time == datetime(2025, 6, 25, 10)
    assert card.disease_code == "T-HBV"
    assert validate_card(samples.child_card(), REF, samples.NOW).ok


def test_labels_and_national_spellings_are_accepted() -> None:
    card = samples.valid_card(
        sex="男",
        residence_category="本县区",
        occupation="农民",
        classification="实验室确诊病例",
        chronicity="慢性",
        disease_code="乙型肝炎",
        org_code="中卫市人民医院",
        birth_date="1980/5/17",
        onset_date="2025/6/20",
        diagnosis_time="2025-06-25 10:35",
        fill_date="2025年6月25日",
        id_type=None,
    )
    outcome = validate_card(card, REF, samples.NOW)
    assert outcome.ok, outcome.errors
    assert outcome.card is not None
    assert (outcome.card.sex, outcome.card.classification, outcome.card.id_type) == ("1", "3", "1")
    assert outcome.card.diagnosis_time == datetime(2025, 6, 25, 10)  # to the hour


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"patient_name": None}, "patient_name", "patient_name.required"),
        ({"patient_name": "张"}, "patient_name", "patient_name.length"),
        ({"patient_name": "张三丰" * 7}, "patient_name", "patient_name.length"),
        ({"patient_name": "张3"}, "patient_name", "patient_name.characters"),
        ({"patient_name": "张@三"}, "patient_name", "patient_name.characters"),
        ({"sex": "3"}, "sex", "sex.invalid_code"),
        ({"id_number": None}, "id_number", "id_number.required"),
        ({"id_number": "64050219800517123"}, "id_number", "id_number.format"),
        ({"id_number": "990502198005171231"}, "id_number", "id_number.province"),
        ({"id_type": "9"}, "id_type", "id_type.invalid_code"),
        ({"id_type": "3", "id_number": "E1234@5"}, "id_number", "id_number.other_format"),
        ({"sex": "2"}, "id_number", "id_number.sex_mismatch"),
        ({"birth_date": "1980-05-18"}, "id_number", "id_number.birth_mismatch"),
        ({"birth_date": "1980-02-30"}, "birth_date", "birth_date.invalid_date"),
        (
            {"birth_date": None, "id_number": "00000000000000000X"},
            "birth_date",
            "birth_date.required",
        ),
        ({"age_value": "45", "age_unit": None}, "age_unit", "age_unit.required"),
        ({"age_value": "30", "age_unit": "岁"}, "age_value", "age_value.inconsistent"),
        ({"age_value": "abc", "age_unit": "岁"}, "age_value", "age_value.invalid"),
        ({"phone": "12345"}, "phone", "phone.format"),
        ({"residence_category": "2"}, "residence_category", "residence_category.address"),
        ({"residence_category": "4"}, "residence_category", "residence_category.address"),
        ({"address_code": "640502999"}, "address_code", "address_code.unknown"),
        ({"address_code": "640502"}, "address_code", "address_code.level"),
        ({"address_code": "64050210"}, "address_code", "address_code.format"),
        ({"occupation": "10"}, "occupation", "occupation.invalid_code"),
        ({"occupation": "2"}, "occupation", "occupation.child_only"),
        ({"occupation": "4", "work_unit": None}, "work_unit", "work_unit.required"),
        ({"work_unit": "某" * 51}, "work_unit", "work_unit.too_long"),
        ({"remarks": "备" * 51}, "remarks", "remarks.too_long"),
        ({"classification": "5"}, "classification", "classification.not_allowed"),
        ({"chronicity": None}, "chronicity", "chronicity.required"),
        (
            {"disease_code": "T-TB", "subtype_code": "RR", "chronicity": "2"},
            "chronicity",
            "chronicity.not_allowed",
        ),
        ({"disease_code": "T-TB", "chronicity": None}, "subtype_code", "subtype_code.required"),
        (
            {"disease_code": "T-TB", "chronicity": None, "subtype_code": "XX"},
            "subtype_code",
            "subtype_code.not_allowed",
        ),
        ({"disease_code": "T-NONE"}, "disease_code", "disease_code.unknown"),
        ({"disease_code": "T-OLD", "chronicity": None}, "disease_code", "disease_code.inactive"),
        ({"org_code": "T-XX"}, "org_code", "org_code.unknown"),
        ({"org_code": "T-C9"}, "org_code", "org_code.inactive"),
        ({"onset_date": "2025-06-26"}, "onset_date", "onset_date.after_diagnosis"),
        ({"birth_date": "2025-06-21"}, "birth_date", "birth_date.after_onset"),
        ({"fill_date": "2025-06-24"}, "fill_date", "fill_date.before_diagnosis"),
        ({"fill_date": "2025-07-01"}, "fill_date", "fill_date.future"),
        ({"diagnosis_time": "2025-06-30 13"}, "diagnosis_time", "diagnosis_time.future"),
        ({"diagnosis_time": "2025-06-25 25"}, "diagnosis_time", "diagnosis_time.invalid_datetime"),
        ({"death_date": "2025-06-24"}, "death_date", "death_date.before_diagnosis"),
        ({"death_date": "2025-07-02"}, "death_date", "death_date.future"),
        ({"card_number": "卡-1"}, "card_number", "card_number.invalid"),
    ],
)
def test_each_broken_rule_names_its_field(
    overrides: dict[str, object], field: str, code: str
) -> None:
    errors = validate_card(samples.valid_card(**overrides), REF, samples.NOW).errors
    found = [e for e in errors if e.code == code]
    assert found, [e.code for e in errors]
    assert found[0].field == field
    assert found[0].message_zh and found[0].message_en
    assert found[0].message_zh != found[0].message_en


def test_child_rules() -> None:
    child = samples.child_card
    assert "guardian_name.required" in codes_of(child(guardian_name=None))
    assert "phone.required" in codes_of(child(phone=None))
    assert "occupation.child_group" in codes_of(child(occupation="18"))
    assert validate_card(child(occupation="3", work_unit="第一小学"), REF, samples.NOW).ok
    # A child's card may carry a parent's ID number (holder much older, sex may differ).
    parent = samples.resident_id("640521", date(1990, 4, 1), 22)
    assert validate_card(child(id_number=parent), REF, samples.NOW).ok


def test_birth_date_may_be_replaced_by_age_with_unit() -> None:
    unknown_id = "00000000000000000X"
    for age, unit in (("45", "岁"), ("45", "01")):
        card = samples.valid_card(
            birth_date=None, id_number=unknown_id, age_value=age, age_unit=unit
        )
        assert validate_card(card, REF, samples.NOW).ok
    infant = samples.child_card(
        birth_date=None, id_number=unknown_id, age_value="5", age_unit="月", occupation="2"
    )
    assert validate_card(infant, REF, samples.NOW).ok
    export_style = samples.valid_card(birth_date=None, id_number=unknown_id, age="45岁")
    assert validate_card(export_style, REF, samples.NOW).ok
    too_old = samples.valid_card(
        birth_date=None, id_number=unknown_id, age_value="130", age_unit="岁"
    )
    assert "age_value.range" in codes_of(too_old)


def test_birth_date_is_taken_from_the_resident_id_when_missing() -> None:
    outcome = validate_card(samples.valid_card(birth_date=None), REF, samples.NOW)
    assert outcome.ok and outcome.card is not None
    assert outcome.card.birth_date == date(1980, 5, 17)


def test_legacy_15_digit_id_is_checked_for_birth_and_sex() -> None:
    legacy = "640502800517123"  # 1980-05-17, odd = male
    assert validate_card(samples.valid_card(id_number=legacy), REF, samples.NOW).ok
    assert "id_number.sex_mismatch" in codes_of(samples.valid_card(id_number=legacy, sex="2"))


def test_residence_category_follows_the_reporting_county() -> None:
    ok = validate_card
    # 中宁县 address reported by a 沙坡头区 hospital: another county of the city.
    other_county = samples.valid_card(residence_category="2", address_code="640521100")
    assert ok(other_county, REF, samples.NOW).ok
    other_city = samples.valid_card(residence_category="3", address_code="640104")
    assert ok(other_city, REF, samples.NOW).ok
    other_province = samples.valid_card(residence_category="4", address_code="110101")
    assert ok(other_province, REF, samples.NOW).ok
    hong_kong = samples.valid_card(residence_category="5", address_code="810001")
    assert ok(hong_kong, REF, samples.NOW).ok
    assert "residence_category.address" in codes_of(
        samples.valid_card(residence_category="4", address_code="810001")
    )


def test_village_code_is_cut_to_its_township() -> None:
    outcome = validate_card(samples.valid_card(address_code="640502100201"), REF, samples.NOW)
    assert outcome.ok and outcome.card is not None
    assert outcome.card.address_code == "640502100"
    padded = validate_card(samples.valid_card(address_code="640502100000"), REF, samples.NOW)
    assert padded.card is not None and padded.card.address_code == "640502100"


def test_disease_with_subtype_given_by_name() -> None:
    card = samples.valid_card(disease_code="肺结核(利福平耐药)", chronicity=None)
    outcome = validate_card(card, REF, samples.NOW)
    assert outcome.ok, outcome.errors
    assert outcome.card is not None
    assert (outcome.card.disease_code, outcome.card.subtype_code) == ("T-TB", "RR")


def test_bad_input_never_raises() -> None:
    junk: dict[str, object] = {f: "\x00☃" * 3 for f in samples.valid_card()}
    junk["age_value"] = -1
    outcome = validate_card(junk, REF, samples.NOW)
    assert not outcome.ok and outcome.card is None
    assert validate_card({}, REF, samples.NOW).errors
    assert validate_card({"birth_date": date(2020, 1, 1), "age_value": 3}, REF, samples.NOW).errors


def test_every_message_code_has_both_languages() -> None:
    for code, (zh, en) in MESSAGES.items():
        assert zh and en, code


def test_frame_reports_every_bad_row_by_position() -> None:
    rows = [samples.valid_card(), samples.valid_card(sex="9"), samples.child_card()]
    frame = pl.DataFrame(
        [{k: (None if v is None else str(v)) for k, v in r.items()} for r in rows],
        schema={k: pl.String for r in rows for k in r},
    )
    outcome = validate_frame(frame, REF, samples.NOW)
    assert outcome.cards.height == 2
    assert [p for p, _ in outcome.invalid] == [1]
    assert outcome.invalid[0][1][0].code == "sex.invalid_code"


def test_now_may_be_aware_or_naive_utc() -> None:
    card = samples.valid_card(diagnosis_time="2025-06-30 11", fill_date="2025-06-30")
    assert validate_card(card, REF, samples.NOW).ok  # 12:00 in the city
    assert validate_card(card, REF, samples.NOW.replace(tzinfo=UTC)).ok
    assert not validate_card(card, REF, samples.NOW - timedelta(hours=2)).ok


# --------------------------------------------------------------------------- hypothesis

births = st.dates(min_value=date(1920, 1, 1), max_value=date(2024, 12, 31))
areas = st.sampled_from(["640502", "640521", "110101", "310104", "440305"])


@settings(max_examples=60, deadline=None)
@given(area=areas, born=births, sequence=st.integers(0, 999))
def test_generated_resident_ids_are_accepted(area: str, born: date, sequence: int) -> None:
    number = samples.resident_id(area, born, sequence)
    sex = "1" if sequence % 2 else "2"
    card = samples.valid_card(
        id_number=number,
        sex=sex,
        birth_date=born.isoformat(),
        occupation="18" if (date(2025, 6, 20) - born).days > 15 * 366 else "3",
        guardian_name="王大明",
    )
    assert "id_number" not in {e.field for e in validate_card(card, REF, samples.NOW).errors}


@settings(max_examples=60, deadline=None)
@given(born=births, sequence=st.integers(0, 999), position=st.integers(0, 17), data=st.data())
def test_one_changed_character_is_caught(
    born: date, sequence: int, position: int, data: st.DataObject
) -> None:
    number = samples.resident_id("640502", born, sequence)
    alphabet = "0123456789X" if position == 17 else "0123456789"
    replacement = data.draw(st.sampled_from([c for c in alphabet if c != number[position]]))
    mutated = number[:position] + replacement + number[position + 1 :]
    card = samples.valid_card(id_number=mutated, birth_date=born.isoformat())
    codes = {e.code for e in validate_card(card, REF, samples.NOW).errors}
    # MOD 11-2 catches every single-character change in the checksum itself, and a changed
    # digit always fails the checksum (the weights are all non-zero modulo 11).
    assert "id_number.checksum" in codes, (number, mutated, codes)


day_offsets = st.integers(min_value=0, max_value=400)


@settings(max_examples=80, deadline=None)
@given(birth=day_offsets, onset=day_offsets, diagnosis=day_offsets, fill=day_offsets)
def test_date_order_is_enforced(birth: int, onset: int, diagnosis: int, fill: int) -> None:
    """With dates counted back from today: errors iff birth ≤ onset ≤ diagnosis ≤ fill fails."""
    today = date(2025, 6, 30)
    b, o, d, f = (today - timedelta(days=x + 1) for x in (birth + 20000, onset, diagnosis, fill))
    card = samples.valid_card(
        birth_date=b.isoformat(),
        id_number=samples.resident_id("640502", b, 123),
        onset_date=o.isoformat(),
        diagnosis_time=f"{d.isoformat()} 08",
        fill_date=f.isoformat(),
    )
    codes = codes_of(card)
    assert ("onset_date.after_diagnosis" in codes) == (o > d)
    assert ("fill_date.before_diagnosis" in codes) == (f < d)
    assert not (codes - {"onset_date.after_diagnosis", "fill_date.before_diagnosis"})


@settings(max_examples=40, deadline=None)
@given(death=st.integers(-30, 30))
def test_death_is_not_before_diagnosis(death: int) -> None:
    died = date(2025, 6, 25) + timedelta(days=death)
    codes = codes_of(samples.valid_card(death_date=died.isoformat()))
    assert ("death_date.before_diagnosis" in codes) == (death < 0)
    assert ("death_date.future" in codes) == (died > date(2025, 6, 30))


def test_reference_from_session_is_cached_until_the_catalog_changes(session) -> None:  # type: ignore[no-untyped-def]
    ref = samples.install(session)
    assert Reference.from_session(session) is ref
    assert "T-HBV" in ref.diseases and "640502100" in ref.townships
    from yifang.catalog.models import Disease

    session.get(Disease, "T-HFMD").review_limit_hours = 12
    session.commit()
    fresh = Reference.from_session(session)
    assert fresh is not ref and fresh.diseases["T-HFMD"].review_limit_hours == 12
