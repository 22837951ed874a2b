"""Validation of the national report card (传染病报告卡): every rule, every field, zh and en.

A card is checked against a :class:`Reference`, a frozen snapshot of what the rules need from
the catalog (diseases and what they allow, address codes, organisations, code lists), so no
rule ever queries the database. The rules are written once, as Polars expressions over a
batch of cards (:func:`validate_frame`): the importer validates 25,000 rows at a time at
full speed, and :func:`validate_card` checks a single card by running the same rules on a
batch of one. Both take raw values (strings from a form or a file, national labels such as
男, 确诊病例 or "35岁") and never raise on bad input: every violation becomes a
:class:`~yifang.cases.schemas.FieldError` naming the field, with a message in Chinese and
English.

The rules (facts in ``shared/research/china-surveillance-facts.md`` §2):

* required fields of the card (those marked * on the 2019 card, plus reporting unit and
  doctor);
* patient name 2–20 characters, letters only (no digits or symbols); guardian's name and
  phone required for children aged ≤ 14 completed years (``codes.CHILD_MAX_AGE_YEARS``);
* resident ID (GB 11643-1999): 18 characters with the ISO 7064 MOD 11-2 check character,
  or the legacy 15-digit form (birth year 19YY); first two digits a province; the birth date
  and sex encoded in it must match the card's — except for a child's card carrying a parent's
  number (holder ≥ 14 years older than the patient), which the national rules allow;
  ``00000000000000000X`` means "unknown" and is accepted for any document type;
* birth date, or age with unit (岁/月/天); when both are given the age must lie between the
  age at onset and the age at the fill date;
* residence category against the address: 本县区 = address in the reporting organisation's
  county, 本市其他县区 = same city, other county, 本省其他地市 = same province, other city,
  外省 = another mainland province; 港澳台 and 外籍 are not checked (such patients may live
  anywhere);
* address code known, at township level (9 digits) inside the city, at least county level
  (6 digits) elsewhere; village codes (12 digits) are cut to their township;
* population group from the full list; 幼托儿童/散居儿童 only at age ≤ 14, and at age ≤ 14
  only those or 学生; work unit/school required for the groups in
  ``codes.WORK_UNIT_REQUIRED_OCCUPATIONS``;
* classification allowed for the disease; acute/chronic required where the disease asks
  for it and refused where it does not; subtype from the disease's list;
* dates: birth ≤ onset ≤ diagnosis ≤ fill date ≤ today, death ≥ diagnosis (and ≥ onset) and
  ≤ today, diagnosis time ≤ now, stored to the hour;
* lengths: work unit, address detail and remarks ≤ 50 characters.

Times: ``now`` is an instant — aware, or naive UTC like every stored timestamp — and is
compared in the city's time zone with the card's dates and diagnosis time, which are
wall-clock values as written on the card.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yifang.cases import codes
from yifang.cases.codes import Code, label_index, normalise_label
from yifang.cases.schemas import CARD_FIELDS, CardIn
from yifang.catalog.models import Disease, Organisation, Region
from yifang.core.errors import FieldError
from yifang.core.settings import get_settings

#: Longest text accepted in the free-text fields (national filling rules; characters).
MAX_LENGTHS: dict[str, int] = {
    "work_unit": 50,
    "address_detail": 50,
    "remarks": 50,
    "occupation_other": 15,
    "guardian_name": 20,
    "card_number": 32,
}
#: Largest plausible age per unit (岁, 月, 天). [INF] the national system's own limits were
#: not confirmed; ages in months and days are meant for infants.
MAX_AGE = {codes.AGE_YEARS: 120, codes.AGE_MONTHS: 36, codes.AGE_DAYS: 366}
#: First two digits of a valid resident ID: the provinces of GB/T 2260, plus 71/81/82/83 for
#: Taiwan, Hong Kong and Macao residents' numbers.
PROVINCE_PREFIXES = frozenset(
    {
        *("11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35"),
        *("36", "37", "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54"),
        *("61", "62", "63", "64", "65", "71", "81", "82", "83"),
    }
)
#: Province codes of Taiwan, Hong Kong and Macao (not "another province" for residence).
NON_MAINLAND = ("71", "81", "82")
#: Raw values that mean "empty" (the national export writes ".").
EMPTY_VALUES = ("", ".")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID18 = r"^\d{17}[\dX]$"
_ID15 = r"^\d{15}$"
_NAME_CHARS = r"^[\p{L}\p{M}·•．. ]+$"
_PHONE = (
    r"^(?:(?:\+?86[- ]?)?1[3-9]\d{9}"
    r"|(?:0\d{2,3}[- ]?)?[1-9]\d{6,7}(?:[- ]?\d{1,6})?"
    r"|(?:\+?852|\+?853|\+?886)[- ]?\d{7,10})$"
)
_CARD_NUMBER = r"^[0-9A-Za-z_-]{1,32}$"


# --------------------------------------------------------------------------- reference


@dataclass(frozen=True, slots=True)
class DiseaseRule:
    """What a card of one disease may say. Limits in hours; sets hold card codes."""

    code: str
    name_zh: str
    classifications: frozenset[str] = frozenset()
    chronicity: frozenset[str] = frozenset()
    subtypes: Mapping[str, str] = field(default_factory=dict)  # code → Chinese name
    subtype_required: bool = True
    report_limit_hours: int = 24
    review_limit_hours: int = 24
    active: bool = True
    national_code: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    leaf: bool = True  # a card names a leaf disease (乙型肝炎), not a group (病毒性肝炎)
    parent_name: str | None = None
    aliases: tuple[str, ...] = ()
    max_age_days_at_report: int | None = None  # e.g. neonatal tetanus: birth → report ≤ 28 d


@dataclass(frozen=True, slots=True)
class OrganisationRule:
    """A reporting organisation as the rules see it: its county decides 本县区."""

    code: str
    name: str
    region_code: str
    active: bool = True

    @property
    def county(self) -> str:
        """The 6-digit county code of the organisation's region."""
        return self.region_code[:6]


@dataclass(frozen=True)
class Reference:
    """A frozen snapshot of the catalog, as the card rules need it.

    ``townships`` are the 9-digit codes inside the city (``city_prefix``, 4 digits);
    ``counties`` the 6-digit codes of the whole country. Lookup tables map every accepted
    spelling (code, national code, Chinese name; normalised with
    :func:`yifang.cases.codes.normalise_label`) to the catalog code.
    """

    diseases: Mapping[str, DiseaseRule]
    organisations: Mapping[str, OrganisationRule]
    townships: frozenset[str]
    counties: frozenset[str]
    city_prefix: str
    code_lists: Mapping[str, Mapping[str, Code]]
    disease_keys: Mapping[str, str] = field(default_factory=dict)
    subtype_keys: Mapping[str, str] = field(default_factory=dict)
    organisation_keys: Mapping[str, str] = field(default_factory=dict)
    fingerprint: tuple[Any, ...] = ()

    @classmethod
    def build(
        cls,
        diseases: Iterable[DiseaseRule],
        organisations: Iterable[OrganisationRule],
        regions: Iterable[tuple[str, int]],
        city_code: str | None = None,
        fingerprint: tuple[Any, ...] = (),
    ) -> Reference:
        """Assemble a reference from plain rules; ``regions`` are (code, level) pairs."""
        city_prefix = (city_code or get_settings().city_code)[:4]
        disease_map = {d.code: d for d in diseases}
        org_map = {o.code: o for o in organisations}
        townships: set[str] = set()
        counties: set[str] = set()
        for code, level in regions:
            if level == 3 or len(code) == 6:
                counties.add(code[:6])
            elif (level == 4 or len(code) == 9) and code.startswith(city_prefix):
                townships.add(code[:9])
        return cls(
            diseases=disease_map,
            organisations=org_map,
            townships=frozenset(townships),
            counties=frozenset(counties),
            city_prefix=city_prefix,
            code_lists=CODE_LISTS,
            disease_keys=_disease_keys(disease_map.values()),
            subtype_keys={
                f"{d.code}|{normalise_label(key)}": sub
                for d in disease_map.values()
                for sub, name in d.subtypes.items()
                for key in (sub, name)
            },
            organisation_keys=_organisation_keys(org_map.values()),
            fingerprint=fingerprint,
        )

    @classmethod
    def from_session(cls, session: Session) -> Reference:
        """The reference of the database behind ``session``, rebuilt only when the catalog
        changed (row counts and the newest disease edit are compared on every call)."""
        fingerprint = _catalog_fingerprint(session)
        bind = session.get_bind()
        key = bind.url.render_as_string(hide_password=True) if hasattr(bind, "url") else id(bind)
        with _CACHE_LOCK:
            cached = _CACHE.get(key)
            if cached is not None and cached.fingerprint == fingerprint:
                return cached
        rows = list(session.scalars(select(Disease)))
        parents = {d.parent_code for d in rows if d.parent_code}
        names = {d.code: d.name_zh for d in rows}
        ref = cls.build(
            diseases=[_disease_rule(d, parents, names) for d in rows],
            organisations=[
                OrganisationRule(o.code, o.name, o.region_code, o.active)
                for o in session.scalars(select(Organisation))
            ],
            regions=[(c, lvl) for c, lvl in session.execute(select(Region.code, Region.level))],
            fingerprint=fingerprint,
        )
        with _CACHE_LOCK:
            _CACHE[key] = ref
        return ref

    def review_limit_hours(self, disease_code: str) -> int:
        """The county CDC's review limit for a disease (hours; 24 if unknown)."""
        rule = self.diseases.get(disease_code)
        return rule.review_limit_hours if rule else 24


CODE_LISTS: Mapping[str, Mapping[str, Code]] = {
    "report_type": codes.REPORT_TYPES,
    "sex": codes.SEXES,
    "id_type": codes.ID_TYPES,
    "age_unit": codes.AGE_UNITS,
    "residence_category": codes.RESIDENCE_CATEGORIES,
    "occupation": codes.OCCUPATIONS,
    "classification": codes.CLASSIFICATIONS,
    "chronicity": codes.CHRONICITIES,
}

_CACHE: dict[Any, Reference] = {}
_CACHE_LOCK = threading.Lock()


def _catalog_fingerprint(session: Session) -> tuple[Any, ...]:
    diseases = session.execute(select(func.count(), func.max(Disease.updated_at))).one()
    regions = session.scalar(select(func.count()).select_from(Region))
    orgs = session.scalar(select(func.count()).select_from(Organisation))
    active_orgs = session.scalar(
        select(func.count()).select_from(Organisation).where(Organisation.active.is_(True))
    )
    return (tuple(diseases), regions, orgs, active_orgs)


def _codes_of(values: Iterable[Any], table: Mapping[str, Code]) -> frozenset[str]:
    index = label_index(table)
    found = set()
    for value in values or ():
        code = index.get(normalise_label(str(value)))
        if code is not None:
            found.add(code)
    return frozenset(found)


def _disease_rule(d: Disease, parents: set[str], names: Mapping[str, str]) -> DiseaseRule:
    subtypes: dict[str, str] = {}
    for entry in d.subtypes or ():
        if isinstance(entry, Mapping):
            code = str(entry.get("code") or entry.get("name_zh") or entry.get("name") or "")
            name = str(entry.get("name_zh") or entry.get("name") or entry.get("zh") or code)
        else:
            code = name = str(entry)
        if code:
            subtypes[code] = name
    extra = d.extra or {}
    rules = extra.get("rules") or {}
    max_days = rules.get("max_age_days_at_report") if isinstance(rules, Mapping) else None
    return DiseaseRule(
        code=d.code,
        name_zh=d.name_zh,
        classifications=_codes_of(d.classifications, codes.CLASSIFICATIONS),
        chronicity=_codes_of(d.chronicity, codes.CHRONICITIES),
        subtypes=subtypes,
        subtype_required=bool(extra.get("subtype_required", bool(subtypes))),
        report_limit_hours=d.report_limit_hours,
        review_limit_hours=d.review_limit_hours,
        active=d.active,
        national_code=d.national_code,
        valid_from=d.valid_from,
        valid_to=d.valid_to,
        leaf=d.code not in parents,
        parent_name=names.get(d.parent_code) if d.parent_code else None,
        aliases=tuple(str(a) for a in extra.get("aliases") or ()),
        max_age_days_at_report=int(max_days) if max_days else None,
    )


def _disease_keys(diseases: Iterable[DiseaseRule]) -> dict[str, str]:
    """Spelling → "code" or "code|subtype". Active diseases win a name clash."""
    keys: dict[str, str] = {}
    ordered = sorted(diseases, key=lambda d: (d.active, d.code))  # active last → wins
    for d in ordered:
        for name in (d.name_zh, d.national_code, *d.aliases):
            if name:
                keys[normalise_label(name)] = d.code
        if d.parent_name:  # 肺结核(利福平耐药), 利福平耐药肺结核
            for spelled in (f"{d.parent_name}({d.name_zh})", f"{d.name_zh}{d.parent_name}"):
                keys[normalise_label(spelled)] = d.code
        for sub, sub_name in d.subtypes.items():
            for base in (d.name_zh, d.code):
                for spelled in (sub_name, sub):
                    keys[normalise_label(f"{base}({spelled})")] = f"{d.code}|{sub}"
                    keys[normalise_label(f"{base}{spelled}")] = f"{d.code}|{sub}"
    for d in ordered:  # the code itself always means that disease
        keys[normalise_label(d.code)] = d.code
    return keys


def _organisation_keys(orgs: Iterable[OrganisationRule]) -> dict[str, str]:
    """Spelling (code or name) → code. A name shared by several organisations resolves to
    the only active one among them, or to nothing."""
    keys: dict[str, str] = {}
    names: dict[str, list[OrganisationRule]] = {}
    for o in orgs:
        names.setdefault(normalise_label(o.name), []).append(o)
    for name, found in names.items():
        active = [o for o in found if o.active]
        if len(found) == 1 or len(active) == 1:
            keys[name] = (active or found)[0].code
    for o in orgs:
        keys[normalise_label(o.code)] = o.code
    return keys


# --------------------------------------------------------------------------- messages

#: Error code → (Chinese, English) message. ``{value}`` is the value as given.
MESSAGES: dict[str, tuple[str, str]] = {
    "required": ("必填项未填写", "is required"),
    "too_long": ("超过最大长度 {limit} 个字符", "is longer than {limit} characters"),
    "invalid_code": ("「{value}」不是有效的代码或名称", "'{value}' is not a valid code or label"),
    "invalid_date": ("「{value}」不是有效日期", "'{value}' is not a valid date"),
    "invalid_datetime": (
        "「{value}」不是有效的日期时间(应为 年-月-日 时)",
        "'{value}' is not a valid date and hour (YYYY-MM-DD HH)",
    ),
    "card_number.invalid": (
        "卡片编号只能由字母、数字、-、_ 组成,不超过32位",
        "card number may hold letters, digits, - and _ only, at most 32",
    ),
    "patient_name.length": ("患者姓名应为2–20个字符", "patient name must be 2–20 characters"),
    "patient_name.characters": (
        "患者姓名不能含数字或特殊符号",
        "patient name must not contain digits or symbols",
    ),
    "guardian_name.characters": (
        "家长姓名不能含数字或特殊符号",
        "guardian name must not contain digits or symbols",
    ),
    "guardian_name.required": (
        "14岁及以下患儿须填写家长姓名",
        "guardian name is required for a patient aged 14 or under",
    ),
    "doctor_name.length": ("填卡医生姓名应为2–20个字符", "doctor name must be 2–20 characters"),
    "id_number.required": (
        "有效证件号必填;不详时填写 00000000000000000X",
        "ID number is required; write 00000000000000000X if unknown",
    ),
    "id_number.format": (
        "身份证号应为18位(末位可为X)或15位数字",
        "resident ID must be 18 characters (last may be X) or 15 digits",
    ),
    "id_number.province": (
        "身份证号前两位不是有效的省级代码",
        "the first two digits of the resident ID are not a province code",
    ),
    "id_number.checksum": (
        "身份证号校验位错误(GB 11643)",
        "resident ID check character is wrong (GB 11643)",
    ),
    "id_number.birth_date": (
        "身份证号中的出生日期无效",
        "the birth date encoded in the resident ID is not a valid date",
    ),
    "id_number.birth_mismatch": (
        "身份证号中的出生日期与出生日期不一致",
        "the birth date in the resident ID differs from the card's birth date",
    ),
    "id_number.sex_mismatch": (
        "身份证号中的性别与性别不一致",
        "the sex encoded in the resident ID differs from the card's sex",
    ),
    "id_number.other_format": (
        "证件号只能由字母、数字、括号和-组成(4–32位)",
        "document number may hold letters, digits, brackets and - only (4–32)",
    ),
    "birth_date.required": (
        "出生日期与年龄至少填写一项",
        "give the birth date or the age with its unit",
    ),
    "birth_date.future": ("出生日期不能晚于今天", "birth date is in the future"),
    "birth_date.after_onset": ("出生日期不能晚于发病日期", "birth date is after the onset date"),
    "age_value.invalid": ("年龄「{value}」应为非负整数", "age '{value}' must be a whole number"),
    "age_value.range": ("年龄超出合理范围", "age is out of the plausible range for its unit"),
    "age_value.inconsistent": (
        "年龄与出生日期不符(按发病至填卡日期计算)",
        "age does not match the birth date (at onset to fill date)",
    ),
    "age_unit.required": ("填写年龄时须填写年龄单位(岁/月/天)", "age needs a unit (岁/月/天)"),
    "phone.format": ("联系电话格式不正确", "phone number is not in a valid format"),
    "phone.required": (
        "14岁及以下患儿须填写联系电话",
        "phone is required for a patient aged 14 or under",
    ),
    "residence_category.address": (
        "病人属于「{value}」与现住地址及报告单位所在地不符",
        "residence category '{value}' does not match the address and the reporting unit",
    ),
    "address_code.format": (
        "现住地址国标应为6、9或12位数字",
        "address code must be 6, 9 or 12 digits",
    ),
    "address_code.unknown": ("现住地址国标「{value}」不存在", "address code '{value}' is unknown"),
    "address_code.level": (
        "本市现住地址须填写到乡镇(街道)",
        "an address in the city must be given to township level",
    ),
    "occupation.child_only": (
        "幼托儿童、散居儿童仅适用于14岁及以下",
        "childcare/home-cared child applies only at age 14 or under",
    ),
    "occupation.child_group": (
        "14岁及以下患儿人群分类只能为幼托儿童、散居儿童或学生",
        "a patient aged 14 or under must be a childcare child, home-cared child or student",
    ),
    "work_unit.required": (
        "该人群分类须填写工作单位(学校)",
        "work unit or school is required for this population group",
    ),
    "classification.not_allowed": (
        "该病种不允许病例分类「{value}」",
        "classification '{value}' is not allowed for this disease",
    ),
    "chronicity.required": (
        "该病种须填写急性/慢性分类",
        "this disease requires the acute/chronic classification",
    ),
    "chronicity.not_allowed": (
        "该病种不适用急性/慢性分类「{value}」",
        "acute/chronic classification '{value}' does not apply to this disease",
    ),
    "subtype_code.required": ("该病种须填写分型", "this disease requires a subtype"),
    "subtype_code.not_allowed": (
        "分型「{value}」不属于该病种",
        "subtype '{value}' does not belong to this disease",
    ),
    "disease_code.unknown": (
        "疾病「{value}」不在病种目录中",
        "disease '{value}' is not in the catalog",
    ),
    "disease_code.not_leaf": (
        "请填写具体病种(如 乙型肝炎,而非 病毒性肝炎)",
        "name the specific disease (e.g. hepatitis B, not viral hepatitis)",
    ),
    "birth_date.disease_age": (
        "该病种仅适用于规定日龄内的患儿(出生至报告天数超限)",
        "this disease applies only to infants up to its age limit (birth to report)",
    ),
    "disease_code.inactive": (
        "疾病「{value}」在诊断日期不是有效病种",
        "disease '{value}' is not in force at the diagnosis date",
    ),
    "org_code.unknown": ("报告单位「{value}」不存在", "reporting unit '{value}' is unknown"),
    "org_code.inactive": ("报告单位「{value}」已停用", "reporting unit '{value}' is inactive"),
    "onset_date.future": ("发病日期不能晚于今天", "onset date is in the future"),
    "onset_date.after_diagnosis": (
        "发病日期不能晚于诊断时间",
        "onset date is after the diagnosis time",
    ),
    "diagnosis_time.future": ("诊断时间不能晚于当前时间", "diagnosis time is in the future"),
    "fill_date.before_diagnosis": (
        "填卡日期不能早于诊断日期",
        "fill date is before the diagnosis date",
    ),
    "fill_date.future": ("填卡日期不能晚于今天", "fill date is in the future"),
    "death_date.before_diagnosis": (
        "死亡日期不能早于诊断日期",
        "death date is before the diagnosis date",
    ),
    "death_date.before_onset": ("死亡日期不能早于发病日期", "death date is before the onset date"),
    "death_date.future": ("死亡日期不能晚于今天", "death date is in the future"),
}

#: Chinese names of the fields, for messages and reports.
FIELD_LABELS: dict[str, str] = {
    "card_number": "卡片编号",
    "report_type": "报卡类别",
    "patient_name": "患者姓名",
    "guardian_name": "患儿家长姓名",
    "id_type": "证件类型",
    "id_number": "有效证件号",
    "sex": "性别",
    "birth_date": "出生日期",
    "age_value": "年龄",
    "age_unit": "年龄单位",
    "work_unit": "工作单位(学校)",
    "phone": "联系电话",
    "residence_category": "病人属于",
    "address_code": "现住地址国标",
    "address_detail": "现住详细地址",
    "occupation": "人群分类",
    "occupation_other": "其他人群",
    "classification": "病例分类",
    "chronicity": "病例分类2",
    "onset_date": "发病日期",
    "diagnosis_time": "诊断时间",
    "death_date": "死亡日期",
    "disease_code": "疾病名称",
    "subtype_code": "疾病分型",
    "org_code": "报告单位",
    "doctor_name": "填卡医生",
    "fill_date": "填卡日期",
    "remarks": "备注",
}


def field_error(field_name: str, code: str, value: Any = None, **params: Any) -> FieldError:
    """A :class:`FieldError` with the messages of ``code`` (generic codes are per field)."""
    zh, en = MESSAGES.get(code) or MESSAGES[code.rpartition(".")[2]]
    shown = "" if value is None else str(value)
    label = FIELD_LABELS.get(field_name, field_name)
    zh = zh.format(value=shown, **params)
    en = en.format(value=shown, **params)
    if not code.startswith(field_name + "."):
        zh, en = f"{label}:{zh}", f"{field_name}: {en}"
        code = f"{field_name}.{code}"
    return FieldError(field=field_name, code=code, message_zh=zh, message_en=en)


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class Rule:
    """A broken rule shows as ``violated`` being true on a row (null counts as false)."""

    field_name: str
    code: str
    violated: pl.Expr
    params: Mapping[str, Any] = field(default_factory=dict)


def _raw(name: str) -> pl.Expr:
    return pl.col(f"raw_{name}")


def _lookup(series: pl.Series, index: Mapping[str, str]) -> pl.Series:
    """Map raw labels to codes through ``index`` (keys normalised with
    :func:`~yifang.cases.codes.normalise_label`). Only the distinct values are normalised,
    in Python: a chunk of 100,000 cards has a few dozen distinct sexes or diseases."""
    mapping: dict[str, str] = {}
    for value in series.drop_nulls().unique().to_list():
        code = index.get(normalise_label(value))
        if code is not None:
            mapping[value] = code
    return series.replace_strict(mapping, default=None, return_dtype=pl.String)


def _fold(series: pl.Series) -> pl.Series:
    """Each value normalised for lookup (see :func:`_lookup`)."""
    folded = {v: normalise_label(v) for v in series.drop_nulls().unique().to_list()}
    return series.replace_strict(folded, default=None, return_dtype=pl.String)


def _key(name: str) -> pl.Expr:
    return pl.col(f"key_{name}")


def _add_lookups(frame: pl.DataFrame, ref: Reference) -> pl.DataFrame:
    """Columns ``key_<field>``: the codes of the code fields, disease ("code" or
    "code|subtype") and organisation; ``key_subtype`` the folded subtype."""
    indexes: dict[str, Mapping[str, str]] = {
        name: _label_index_cached(ref, name) for name in ref.code_lists
    }
    indexes["disease_code"] = ref.disease_keys
    indexes["org_code"] = ref.organisation_keys
    columns = []
    for name, index in indexes.items():
        source = "raw_age_unit_eff" if name == "age_unit" else f"raw_{name}"
        values = frame[source]
        if name == "report_type":
            values = values.fill_null("1")
        columns.append(_lookup(values, index).alias(f"key_{name}"))
    columns.append(_fold(frame["raw_subtype_code"]).alias("key_subtype"))
    return frame.with_columns(columns)


def _label_index_cached(ref: Reference, name: str) -> Mapping[str, str]:
    cache = ref.__dict__.setdefault("_label_indexes", {})
    if name not in cache:
        cache[name] = label_index(ref.code_lists[name])
    return cast(Mapping[str, str], cache[name])


#: Spellings of a date accepted before the time part (chrono formats; %m and %d also take
#: one digit). Time parts: "10", "10:30", "10:30:00", "10时".
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d", "%Y年%m月%d日")
_TIME_PART = r"^\d{1,2}(?:[时点])?(?::?\d{1,2}分?(?::?\d{1,2}(?:\.\d+)?秒?)?)?$"


def _date_parts(expr: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    """(date, hour, minute, readable) of any accepted spelling; date null if unreadable."""
    parts = expr.str.replace("T", " ", literal=True).str.splitn(" ", 2)
    day_text = parts.struct.field("field_0")
    time_text = parts.struct.field("field_1").str.strip_chars()
    time_text = pl.when(time_text == "").then(None).otherwise(time_text)
    day = pl.coalesce([day_text.str.to_date(f, strict=False) for f in _DATE_FORMATS])
    hour = time_text.str.extract(r"^(\d{1,2})", 1).cast(pl.Int32, strict=False)
    minute = time_text.str.extract(r"^\d{1,2}[时点]?:?(\d{1,2})", 1).cast(pl.Int32, strict=False)
    readable = time_text.is_null() | time_text.str.contains(_TIME_PART)
    return day, hour, minute, readable


def _completed_years(born: pl.Expr, at: pl.Expr) -> pl.Expr:
    def month_day(d: pl.Expr) -> pl.Expr:  # month and day are Int8: widen before scaling
        return d.dt.month().cast(pl.Int32) * 100 + d.dt.day().cast(pl.Int32)

    before_birthday = month_day(at) < month_day(born)
    return (
        at.dt.year().cast(pl.Int32) - born.dt.year().cast(pl.Int32) - before_birthday.cast(pl.Int32)
    )


def _completed_months(born: pl.Expr, at: pl.Expr) -> pl.Expr:
    months = (at.dt.year().cast(pl.Int32) - born.dt.year().cast(pl.Int32)) * 12 + (
        at.dt.month().cast(pl.Int32) - born.dt.month().cast(pl.Int32)
    )
    return months - (at.dt.day().cast(pl.Int32) < born.dt.day().cast(pl.Int32)).cast(pl.Int32)


def _age_in_unit(born: pl.Expr, at: pl.Expr, unit: pl.Expr) -> pl.Expr:
    return (
        pl.when(unit == codes.AGE_YEARS)
        .then(_completed_years(born, at))
        .when(unit == codes.AGE_MONTHS)
        .then(_completed_months(born, at))
        .when(unit == codes.AGE_DAYS)
        .then((at - born).dt.total_days().cast(pl.Int32))
    )


def _local_now(now: datetime) -> datetime:
    """``now`` as naive wall-clock time of the city (naive input is taken as UTC)."""
    aware = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    return aware.astimezone(ZoneInfo(get_settings().timezone)).replace(tzinfo=None)


def _stage_age() -> list[pl.Expr]:
    """Age value and unit as given: separate columns, or the export's "35岁" (unit 岁 when
    none is written)."""
    age_text = _raw("age").str.extract_groups(r"^(?P<v>\d+)\s*(?P<u>周岁|岁|个月|月|天|日)?$")
    value = pl.coalesce(_raw("age_value"), age_text.struct.field("v"), _raw("age"))
    unit = pl.coalesce(
        _raw("age_unit"),
        pl.when(age_text.struct.field("v").is_not_null()).then(
            pl.coalesce(age_text.struct.field("u"), pl.lit("岁"))
        ),
    )
    return [value.alias("raw_age_value_eff"), unit.alias("raw_age_unit_eff")]


def _stage_parse(ref: Reference) -> list[pl.Expr]:
    """Raw strings → codes, dates and numbers (null where absent or unreadable)."""
    id_number = _raw("id_number").str.to_uppercase().str.replace_all(r"[\s-]", "")
    looks_resident = id_number.str.contains(_ID18) | id_number.str.contains(_ID15)
    disease_key = _key("disease_code")
    org_code = _key("org_code")
    diag_day, diag_hour, diag_minute, diag_readable = _date_parts(_raw("diagnosis_time"))
    hour_ok = diag_hour.is_null() | diag_hour.is_between(0, 23)
    minute_ok = diag_minute.is_null() | diag_minute.is_between(0, 59)
    address = _raw("address_code").str.replace_all(r"\s", "")
    address = address.str.replace(r"^(\d{9})000$", "$1").str.replace(r"^(\d{6})000$", "$1")
    address = (  # a village (12 digits) in the city counts as its township
        pl.when(address.str.starts_with(ref.city_prefix) & address.str.contains(r"^\d{12}$"))
        .then(address.str.slice(0, 9))
        .otherwise(address)
    )
    exprs = [
        _key("report_type").alias("report_type"),
        _key("sex").alias("sex"),
        pl.coalesce(
            _key("id_type"),
            pl.when(_raw("id_type").is_null() & id_number.is_not_null()).then(
                pl.when(looks_resident)
                .then(pl.lit(codes.RESIDENT_ID))
                .otherwise(pl.lit(codes.OTHER_ID))
            ),
        ).alias("id_type"),
        id_number.alias("id_number"),
        _date_parts(_raw("birth_date"))[0].alias("birth_date_given"),
        _raw("age_value_eff").cast(pl.Int32, strict=False).alias("age_value"),
        _key("age_unit").alias("age_unit"),
        _key("residence_category").alias("residence_category"),
        address.alias("address_code"),
        _key("occupation").alias("occupation"),
        _key("classification").alias("classification"),
        _key("chronicity").alias("chronicity"),
        _date_parts(_raw("onset_date"))[0].alias("onset_date"),
        pl.when(hour_ok & minute_ok & diag_readable)
        .then(diag_day.cast(pl.Datetime("us")) + pl.duration(hours=diag_hour.fill_null(0)))
        .alias("diagnosis_time"),
        _date_parts(_raw("death_date"))[0].alias("death_date"),
        _date_parts(_raw("fill_date"))[0].alias("fill_date"),
        disease_key.str.split_exact("|", 1).struct.field("field_0").alias("disease_code"),
        disease_key.str.split_exact("|", 1).struct.field("field_1").alias("subtype_from_name"),
        org_code.alias("org_code"),
        org_code.replace_strict(
            {o.code: o.county for o in ref.organisations.values()},
            default=None,
            return_dtype=pl.String,
        ).alias("org_county"),
        org_code.replace_strict(
            {o.code: o.active for o in ref.organisations.values()},
            default=None,
            return_dtype=pl.Boolean,
        ).alias("org_active"),
    ]
    text_fields = (
        "card_number",
        "patient_name",
        "guardian_name",
        "work_unit",
        "phone",
        "address_detail",
        "occupation_other",
        "doctor_name",
        "remarks",
    )
    exprs += [_raw(f).alias(f) for f in text_fields]
    return exprs


def _stage_derive(ref: Reference) -> list[pl.Expr]:
    """The resident ID's parts, the patient's age and the disease's rules per row."""
    idn = pl.col("id_number")
    is18 = idn.str.contains(_ID18)
    is15 = idn.str.contains(_ID15)
    total = pl.sum_horizontal(
        [idn.str.slice(i, 1).cast(pl.Int32, strict=False) * w for i, w in enumerate(_ID_WEIGHTS)]
    )
    expected = (total % 11).replace_strict(
        dict(enumerate(_ID_CHECK)), default=None, return_dtype=pl.String
    )
    id_birth_text = (
        pl.when(is18).then(idn.str.slice(6, 8)).when(is15).then(pl.lit("19") + idn.str.slice(6, 6))
    )
    id_sex_digit = (
        pl.when(is18)
        .then(idn.str.slice(16, 1))
        .when(is15)
        .then(idn.str.slice(14, 1))
        .cast(pl.Int32, strict=False)
    )
    disease = pl.col("disease_code")
    return [
        (
            (pl.col("id_type") == codes.RESIDENT_ID)
            & ~idn.is_in(sorted(codes.UNKNOWN_ID_NUMBERS))
            & idn.is_not_null()
        ).alias("id_resident"),
        idn.is_in(sorted(codes.UNKNOWN_ID_NUMBERS)).alias("id_unknown"),
        (is18 | is15).alias("id_format_ok"),
        (~is18 | (expected == idn.str.slice(17, 1))).alias("id_checksum_ok"),
        id_birth_text.str.to_date("%Y%m%d", strict=False).alias("id_birth"),
        id_birth_text.is_not_null().alias("id_has_birth"),
        pl.when(id_sex_digit % 2 == 1).then(pl.lit("1")).otherwise(pl.lit("2")).alias("id_sex"),
        pl.coalesce(pl.col("subtype_from_name"), pl.lit(None, pl.String)).alias("subtype_name"),
        disease.replace_strict(
            {d.code: d.active for d in ref.diseases.values()}, default=None, return_dtype=pl.Boolean
        ).alias("disease_active"),
        disease.replace_strict(
            {d.code: d.leaf for d in ref.diseases.values()}, default=None, return_dtype=pl.Boolean
        ).alias("disease_leaf"),
        disease.replace_strict(
            {d.code: d.max_age_days_at_report for d in ref.diseases.values()},
            default=None,
            return_dtype=pl.Int32,
        ).alias("disease_max_age_days"),
        disease.replace_strict(
            {d.code: bool(d.chronicity) for d in ref.diseases.values()},
            default=None,
            return_dtype=pl.Boolean,
        ).alias("disease_asks_chronicity"),
        disease.replace_strict(
            {d.code: bool(d.subtypes) for d in ref.diseases.values()},
            default=None,
            return_dtype=pl.Boolean,
        ).alias("disease_has_subtypes"),
        disease.replace_strict(
            {d.code: d.subtype_required and bool(d.subtypes) for d in ref.diseases.values()},
            default=None,
            return_dtype=pl.Boolean,
        ).alias("disease_needs_subtype"),
        disease.replace_strict(
            {d.code: bool(d.classifications) for d in ref.diseases.values()},
            default=None,
            return_dtype=pl.Boolean,
        ).alias("disease_limits_classification"),
        disease.replace_strict(
            {d.code: d.valid_from for d in ref.diseases.values()},
            default=None,
            return_dtype=pl.Date,
        ).alias("disease_valid_from"),
        disease.replace_strict(
            {d.code: d.valid_to for d in ref.diseases.values()},
            default=None,
            return_dtype=pl.Date,
        ).alias("disease_valid_to"),
    ]


def _stage_resolve(ref: Reference) -> list[pl.Expr]:
    """Subtype code, effective birth date and age in completed years."""
    subtype_key = pl.concat_str(pl.col("disease_code"), pl.lit("|"), _key("subtype"))
    id_birth_usable = (
        pl.col("id_resident") & pl.col("id_checksum_ok") & pl.col("id_birth").is_not_null()
    )
    birth = pl.coalesce(
        pl.col("birth_date_given"),
        pl.when(pl.col("age_value").is_null() & id_birth_usable).then(pl.col("id_birth")),
    )
    at = pl.coalesce(pl.col("onset_date"), pl.col("diagnosis_time").dt.date())
    from_age = (
        pl.when(pl.col("age_unit") == codes.AGE_YEARS)
        .then(pl.col("age_value"))
        .when(pl.col("age_unit") == codes.AGE_MONTHS)
        .then(pl.col("age_value") // 12)
        .when(pl.col("age_unit") == codes.AGE_DAYS)
        .then(pl.col("age_value") // 365)
    )
    return [
        pl.coalesce(
            subtype_key.replace_strict(
                dict(ref.subtype_keys), default=None, return_dtype=pl.String
            ),
            pl.when(_raw("subtype_code").is_null()).then(pl.col("subtype_name")),
        ).alias("subtype_code"),
        birth.alias("birth_date"),
        pl.coalesce(pl.when(birth.is_not_null()).then(_completed_years(birth, at)), from_age).alias(
            "age_years"
        ),
        (
            pl.col("disease_code").is_not_null()
            & (
                pl.concat_str(pl.col("disease_code"), pl.lit("|"), pl.col("classification")).is_in(
                    [f"{d.code}|{c}" for d in ref.diseases.values() for c in d.classifications]
                )
                | ~pl.col("disease_limits_classification")
            )
        ).alias("classification_allowed"),
        pl.concat_str(pl.col("disease_code"), pl.lit("|"), pl.col("chronicity"))
        .is_in([f"{d.code}|{c}" for d in ref.diseases.values() for c in d.chronicity])
        .alias("chronicity_allowed"),
    ]


def _rules(ref: Reference) -> list[Rule]:
    """Every rule of the card, as a violation expression over the parsed columns (the
    current city time and date are the columns ``__now`` and ``__today``)."""
    col = pl.col
    local_now = col("__now")
    today = col("__today")
    present = {f: _raw(f).is_not_null() for f in (*CARD_FIELDS, "age_value_eff", "age_unit_eff")}
    child = col("age_years") <= codes.CHILD_MAX_AGE_YEARS
    adult = col("age_years") > codes.CHILD_MAX_AGE_YEARS
    diag_date = col("diagnosis_time").dt.date()
    birth = col("birth_date")
    # A child's card may carry a parent's ID number: holder at least 14 years older.
    parent_id = child & (
        ((birth - col("id_birth")).dt.total_days() >= 14 * 365)
        | (
            _completed_years(col("id_birth"), pl.coalesce(col("onset_date"), diag_date))
            - col("age_years")
            >= 14
        )
    )
    resident_ok = col("id_resident") & col("id_format_ok")
    addr = col("address_code")
    addr_in_city = addr.str.starts_with(ref.city_prefix)
    addr_known = (
        pl.when(addr_in_city)
        .then(addr.str.slice(0, 9).is_in(sorted(ref.townships)) & (addr.str.len_chars() >= 9))
        .otherwise(addr.str.slice(0, 6).is_in(sorted(ref.counties)))
    )
    addr_format = addr.str.contains(r"^\d{6}(\d{3})?(\d{3})?$")
    org = col("org_county")
    cat = col("residence_category")
    residence_wrong = (
        pl.when(~(addr_format & addr_known) | org.is_null())
        .then(False)
        .when(cat == "1")
        .then(addr.str.slice(0, 6) != org)
        .when(cat == "2")
        .then((addr.str.slice(0, 4) != org.str.slice(0, 4)) | (addr.str.slice(0, 6) == org))
        .when(cat == "3")
        .then(
            (addr.str.slice(0, 2) != org.str.slice(0, 2))
            | (addr.str.slice(0, 4) == org.str.slice(0, 4))
        )
        .when(cat == "4")
        .then(
            (addr.str.slice(0, 2) == org.str.slice(0, 2))
            | addr.str.slice(0, 2).is_in(list(NON_MAINLAND))
        )
        .otherwise(False)
    )
    age_low = _age_in_unit(birth, pl.coalesce(col("onset_date"), diag_date), col("age_unit"))
    age_high = _age_in_unit(
        birth, pl.coalesce(col("fill_date"), diag_date, col("onset_date")), col("age_unit")
    )
    max_age = col("age_unit").replace_strict(MAX_AGE, default=None, return_dtype=pl.Int32)

    rules: list[Rule] = []

    def add(fld: str, code: str, violated: pl.Expr, **params: Any) -> None:
        rules.append(Rule(fld, code, violated, params))

    for fld in (
        "patient_name",
        "sex",
        "residence_category",
        "address_code",
        "occupation",
        "classification",
        "onset_date",
        "diagnosis_time",
        "disease_code",
        "org_code",
        "doctor_name",
        "fill_date",
    ):
        add(fld, "required", ~present[fld])
    for fld in (
        "report_type",
        "sex",
        "id_type",
        "residence_category",
        "occupation",
        "classification",
        "chronicity",
    ):
        add(fld, "invalid_code", present[fld] & col(fld).is_null())
    add("age_unit", "invalid_code", present["age_unit_eff"] & col("age_unit").is_null())
    for fld in ("birth_date", "onset_date", "death_date", "fill_date"):
        parsed = "birth_date_given" if fld == "birth_date" else fld
        add(fld, "invalid_date", present[fld] & col(parsed).is_null())
    add(
        "diagnosis_time",
        "invalid_datetime",
        present["diagnosis_time"] & col("diagnosis_time").is_null(),
    )
    for fld, limit in MAX_LENGTHS.items():
        add(fld, "too_long", col(fld).str.len_chars() > limit, limit=limit)
    add("card_number", "card_number.invalid", ~col("card_number").str.contains(_CARD_NUMBER))

    name = col("patient_name")
    add("patient_name", "patient_name.length", ~name.str.len_chars().is_between(2, 20))
    add("patient_name", "patient_name.characters", ~name.str.contains(_NAME_CHARS))
    add(
        "guardian_name", "guardian_name.characters", ~col("guardian_name").str.contains(_NAME_CHARS)
    )
    add("guardian_name", "guardian_name.required", child & ~present["guardian_name"])
    add("doctor_name", "doctor_name.length", ~col("doctor_name").str.len_chars().is_between(2, 20))

    idn = col("id_number")
    add("id_number", "id_number.required", ~present["id_number"])
    add("id_number", "id_number.format", col("id_resident") & ~col("id_format_ok"))
    add(
        "id_number",
        "id_number.province",
        resident_ok & ~idn.str.slice(0, 2).is_in(sorted(PROVINCE_PREFIXES)),
    )
    add("id_number", "id_number.checksum", resident_ok & ~col("id_checksum_ok"))
    add(
        "id_number",
        "id_number.birth_date",
        resident_ok & (col("id_birth").is_null() | (col("id_birth") > today)),
    )
    add(
        "id_number",
        "id_number.birth_mismatch",
        resident_ok
        & col("id_checksum_ok")
        & (col("birth_date_given") != col("id_birth"))
        & ~parent_id.fill_null(False),
    )
    add(
        "id_number",
        "id_number.sex_mismatch",
        resident_ok
        & col("id_checksum_ok")
        & col("id_birth").is_not_null()
        & (col("sex") != col("id_sex"))
        & ~parent_id.fill_null(False),
    )
    add(
        "id_number",
        "id_number.other_format",
        ~col("id_resident") & ~col("id_unknown") & ~idn.str.contains(r"^[0-9A-Z()（）-]{4,32}$"),
    )

    add(
        "birth_date",
        "birth_date.required",
        ~present["birth_date"] & ~present["age_value_eff"] & birth.is_null(),
    )
    add("birth_date", "birth_date.future", col("birth_date_given") > today)
    add("birth_date", "birth_date.after_onset", birth > col("onset_date"))
    add(
        "age_value",
        "age_value.invalid",
        present["age_value_eff"] & (col("age_value").is_null() | (col("age_value") < 0)),
    )
    add("age_unit", "age_unit.required", present["age_value_eff"] & ~present["age_unit_eff"])
    add("age_value", "age_value.range", col("age_value") > max_age)
    add(
        "age_value",
        "age_value.inconsistent",
        col("birth_date_given").is_not_null()
        & ((col("age_value") < age_low) | (col("age_value") > age_high)),
    )

    add("phone", "phone.format", ~col("phone").str.contains(_PHONE))
    add("phone", "phone.required", child & ~present["phone"])
    add("residence_category", "residence_category.address", residence_wrong)
    add("address_code", "address_code.format", present["address_code"] & ~addr_format)
    add(
        "address_code",
        "address_code.level",
        addr_format & addr_in_city & (addr.str.len_chars() == 6) & addr.is_in(sorted(ref.counties)),
    )
    add(
        "address_code",
        "address_code.unknown",
        addr_format
        & ~addr_known
        & ~(addr_in_city & (addr.str.len_chars() == 6) & addr.is_in(sorted(ref.counties))),
    )

    occ = col("occupation")
    add("occupation", "occupation.child_only", adult & occ.is_in(sorted(codes.CHILD_OCCUPATIONS)))
    add(
        "occupation",
        "occupation.child_group",
        child & ~occ.is_in(sorted(codes.CHILD_ALLOWED_OCCUPATIONS)),
    )
    add(
        "work_unit",
        "work_unit.required",
        occ.is_in(sorted(codes.WORK_UNIT_REQUIRED_OCCUPATIONS)) & ~present["work_unit"],
    )

    known_disease = col("disease_active").is_not_null()
    add("disease_code", "disease_code.unknown", present["disease_code"] & ~known_disease)
    add("disease_code", "disease_code.not_leaf", known_disease & ~col("disease_leaf"))
    age_days_at_fill = pl.coalesce(
        (pl.coalesce(col("fill_date"), diag_date) - birth).dt.total_days(),
        col("age_value")
        * col("age_unit").replace_strict(
            {codes.AGE_YEARS: 365, codes.AGE_MONTHS: 30, codes.AGE_DAYS: 1},
            default=None,
            return_dtype=pl.Int32,
        ),
    )
    add(
        "birth_date",
        "birth_date.disease_age",
        age_days_at_fill > col("disease_max_age_days"),
    )
    add(
        "disease_code",
        "disease_code.inactive",
        known_disease
        & (
            ~col("disease_active")
            | (diag_date < col("disease_valid_from"))
            | (diag_date > col("disease_valid_to"))
        ),
    )
    add(
        "classification",
        "classification.not_allowed",
        known_disease & col("classification").is_not_null() & ~col("classification_allowed"),
    )
    not_typed = col("chronicity").is_null() | (col("chronicity") == codes.NOT_TYPED)
    add(
        "chronicity",
        "chronicity.required",
        col("disease_asks_chronicity") & col("chronicity").is_null() & ~present["chronicity"],
    )
    add(
        "chronicity",
        "chronicity.not_allowed",
        known_disease
        & col("chronicity").is_not_null()
        & pl.when(col("disease_asks_chronicity"))
        .then(~col("chronicity_allowed"))
        .otherwise(~not_typed),
    )
    add(
        "subtype_code",
        "subtype_code.not_allowed",
        known_disease & present["subtype_code"] & col("subtype_code").is_null(),
    )
    add(
        "subtype_code",
        "subtype_code.required",
        col("disease_needs_subtype") & col("subtype_code").is_null() & ~present["subtype_code"],
    )
    add("org_code", "org_code.unknown", present["org_code"] & col("org_code").is_null())
    add("org_code", "org_code.inactive", col("org_active") == False)  # noqa: E712

    onset = col("onset_date")
    fill = col("fill_date")
    death = col("death_date")
    add("onset_date", "onset_date.future", onset > today)
    add("onset_date", "onset_date.after_diagnosis", onset > diag_date)
    add("diagnosis_time", "diagnosis_time.future", col("diagnosis_time") > local_now)
    add("fill_date", "fill_date.before_diagnosis", fill < diag_date)
    add("fill_date", "fill_date.future", fill > today)
    add("death_date", "death_date.before_diagnosis", death < diag_date)
    add("death_date", "death_date.before_onset", death < onset)
    add("death_date", "death_date.future", death > today)
    return rules


# --------------------------------------------------------------------------- entry points

#: Raw input columns the rules read: the card's fields plus the combined "age" ("35岁").
RAW_COLUMNS: tuple[str, ...] = (*CARD_FIELDS, "age")

#: Output columns of a valid card and their Polars types.
CARD_TYPES: dict[str, Any] = {
    **{f: pl.String for f in CARD_FIELDS},
    "birth_date": pl.Date,
    "onset_date": pl.Date,
    "death_date": pl.Date,
    "fill_date": pl.Date,
    "diagnosis_time": pl.Datetime("us"),
    "age_value": pl.Int32,
}


@dataclass
class FrameOutcome:
    """The valid cards of a batch (typed columns of :data:`CARD_TYPES`, plus any columns
    passed through) and, for every invalid row, its position in the batch and its errors."""

    cards: pl.DataFrame
    invalid: list[tuple[int, list[FieldError]]]


@dataclass
class ValidationOutcome:
    """The result of checking one card: the card if valid, and every error found."""

    card: CardIn | None
    errors: list[FieldError]

    @property
    def ok(self) -> bool:
        """True when the card broke no rule."""
        return not self.errors


def _clean(name: str, frame_columns: Sequence[str]) -> pl.Expr:
    if name not in frame_columns:
        return pl.lit(None, pl.String).alias(f"raw_{name}")
    text = pl.col(name).cast(pl.String).str.strip_chars()
    return pl.when(text.is_in(list(EMPTY_VALUES))).then(None).otherwise(text).alias(f"raw_{name}")


def _compiled(ref: Reference) -> tuple[list[list[pl.Expr]], list[Rule]]:
    """The parsing stages and rules of ``ref``, built once per reference."""
    cached = ref.__dict__.get("_compiled_rules")
    if cached is None:
        rules = _rules(ref)
        stages = [
            _stage_parse(ref),
            _stage_derive(ref),
            _stage_resolve(ref),
            [r.violated.fill_null(False).alias(f"__rule{i}") for i, r in enumerate(rules)],
        ]
        cached = (stages, rules)
        ref.__dict__["_compiled_rules"] = cached  # frozen dataclass: bypass __setattr__
    return cast(tuple[list[list[pl.Expr]], list[Rule]], cached)


def validate_frame(
    raw: pl.DataFrame, ref: Reference, now: datetime, keep: Sequence[str] = ()
) -> FrameOutcome:
    """Check a batch of raw cards (string columns named as :data:`RAW_COLUMNS`; missing
    columns count as empty). ``keep`` names extra columns carried through to the valid cards
    (e.g. the row number)."""
    stages, rules = _compiled(ref)
    local_now = _local_now(now)
    checked = raw.select(
        *[_clean(c, raw.columns) for c in RAW_COLUMNS],
        *[pl.col(k) for k in keep],
        pl.lit(local_now, pl.Datetime("us")).alias("__now"),
        pl.lit(local_now.date(), pl.Date).alias("__today"),
    )
    checked = _add_lookups(checked.with_columns(_stage_age()), ref)
    for stage in stages:  # eager: planning a lazy query costs more than it saves here
        checked = checked.with_columns(stage)
    flags = checked.select([f"__rule{i}" for i in range(len(rules))]).to_numpy()
    bad = flags.any(axis=1) if flags.size else np.zeros(checked.height, dtype=bool)
    invalid: list[tuple[int, list[FieldError]]] = []
    if bad.any():
        raw_rows = checked.filter(pl.Series(bad)).select(
            [f"raw_{c}" for c in RAW_COLUMNS] + ["raw_age_value_eff", "raw_age_unit_eff"]
        )
        for position, raw_row, row_flags in zip(
            np.flatnonzero(bad), raw_rows.iter_rows(named=True), flags[bad], strict=True
        ):
            errors = []
            for i in np.flatnonzero(row_flags):
                rule = rules[i]
                value = raw_row.get(f"raw_{rule.field_name}")
                if rule.field_name in ("age_value", "age_unit"):
                    value = raw_row.get(f"raw_{rule.field_name}_eff")
                errors.append(field_error(rule.field_name, rule.code, value, **rule.params))
            invalid.append((int(position), _dedupe(errors)))
    cards = checked.filter(pl.Series(~bad)).select(
        [pl.col(f).cast(t) for f, t in CARD_TYPES.items()] + [pl.col(k) for k in keep]
    )
    return FrameOutcome(cards=cards, invalid=invalid)


def _dedupe(errors: list[FieldError]) -> list[FieldError]:
    """Drop follow-on errors: a field that is missing or unreadable gets that error only."""
    primary = {
        e.field
        for e in errors
        if e.code.endswith((".required", ".invalid_code", ".invalid_date", ".invalid_datetime"))
        and e.code != "birth_date.required"
    }
    kept = []
    for e in errors:
        is_primary = e.code.endswith(
            (".required", ".invalid_code", ".invalid_date", ".invalid_datetime")
        )
        if e.field in primary and not is_primary:
            continue
        kept.append(e)
    return kept


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return str(int(value))
    return str(value)


def validate_card(data: Mapping[str, Any], ref: Reference, now: datetime) -> ValidationOutcome:
    """Check one card given as raw values under the ``card`` column names (labels, codes,
    strings or Python dates all accepted). Never raises on bad input."""
    row = {c: [_as_text(data.get(c))] for c in RAW_COLUMNS}
    frame = pl.DataFrame(row, schema={c: pl.String for c in RAW_COLUMNS})
    outcome = validate_frame(frame, ref, now)
    if outcome.invalid:
        return ValidationOutcome(card=None, errors=outcome.invalid[0][1])
    values = outcome.cards.row(0, named=True)
    return ValidationOutcome(card=CardIn.model_construct(**values), errors=[])
