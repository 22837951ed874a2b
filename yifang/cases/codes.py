"""Code lists of the national report card (传染病报告卡) and the spellings that map onto them.

Each list maps the code stored on a :class:`~yifang.cases.models.Card` to its Chinese and
English label. The catalog's ``codes.yaml`` (:mod:`yifang.catalog.codes`) is the authority:
where it defines a list, its codes and labels are used, and the lists here only add the
other spellings an import meets — the national system's labels, older wordings of the 2006
card (实验室确诊病例, 患者职业), half-width/full-width variants — so that :func:`lookup`
accepts a code or any of those labels. The built-in lists stand in when the catalog has
none.

Sources: the 2019 card and the national upload interface as summarised in
``shared/research/china-surveillance-facts.md`` §2.1–2.2.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Code:
    """One entry of a code list."""

    code: str
    zh: str
    en: str
    aliases: tuple[str, ...] = ()


def _catalog_list(name: str) -> Mapping[str, Any] | None:
    """The catalog's version of a code list (``yifang.catalog.codes``), if it has one."""
    try:
        from yifang.catalog.codes import code_list
    except ImportError:
        return None
    try:
        return code_list(name)
    except (KeyError, OSError, ValueError):
        return None


def _with_catalog(name: str, *builtin: Code) -> dict[str, Code]:
    """A code list as the catalog defines it (its codes and labels win), with the accepted
    spellings known here added; the built-in list when the catalog has none."""
    ours = {c.code: c for c in builtin}
    theirs = _catalog_list(name)
    if not theirs:
        return ours
    merged: dict[str, Code] = {}
    for code, label in theirs.items():
        known = ours.get(code)
        aliases = known.aliases if known else ()
        if known and known.zh != label.zh:
            aliases = (known.zh, *aliases)
        merged[code] = Code(code, label.zh, label.en, aliases)
    return merged


#: 报卡类别 report type.
REPORT_TYPES = _with_catalog(
    "report_type",
    Code("1", "初次报告", "initial report", ("原始卡", "初次")),
    Code("2", "订正报告", "correction", ("订正卡", "订正")),
)

#: 性别 (GB/T 2261.1, the two values the card allows).
SEXES = _with_catalog(
    "sex",
    Code("1", "男", "male", ("男性", "M", "male")),
    Code("2", "女", "female", ("女性", "F", "female")),
)

#: 证件类型 ID document types (national interface).
ID_TYPES = _with_catalog(
    "id_type",
    Code("1", "居民身份证", "resident ID card", ("身份证",)),
    Code("3", "护照", "passport"),
    Code("4", "军官证", "military officer card"),
    Code("6", "港澳居民来往内地通行证", "Hong Kong/Macao travel permit", ("港澳通行证",)),
    Code("7", "台湾居民来往大陆通行证", "Taiwan travel permit", ("台湾通行证", "台胞证")),
    Code("99", "其他法定有效证件", "other legal document", ("其他",)),
)
RESIDENT_ID = "1"
OTHER_ID = "99"

#: 年龄单位 age units.
AGE_UNITS = _with_catalog(
    "age_unit",
    Code("01", "岁", "years", ("1", "年", "周岁")),
    Code("02", "月", "months", ("2", "个月")),
    Code("03", "天", "days", ("3", "日")),
)
AGE_YEARS, AGE_MONTHS, AGE_DAYS = "01", "02", "03"

#: 病人属于 residence category, relative to the reporting organisation's county.
RESIDENCE_CATEGORIES = _with_catalog(
    "residence_category",
    Code("1", "本县区", "this county/district"),
    Code("2", "本市其他县区", "another county of this city", ("本市其它县区",)),
    Code("3", "本省其他地市", "another city of this province", ("本省其它地市",)),
    Code("4", "外省", "another province"),
    Code("5", "港澳台", "Hong Kong, Macao or Taiwan"),
    Code("6", "外籍", "foreign national"),
)

#: 人群分类 population group / occupation (the online system's 20 values; 10–15 and 25–27
#: are unused in the national numbering).
OCCUPATIONS = _with_catalog(
    "population_group",
    Code("1", "幼托儿童", "child in childcare"),
    Code("2", "散居儿童", "child cared for at home"),
    Code("3", "学生(大中小学)", "student", ("学生",)),
    Code("4", "教师", "teacher"),
    Code("5", "保育员及保姆", "nursery worker or nanny"),
    Code("6", "餐饮食品业", "catering and food industry"),
    Code("7", "公共场所服务员", "public-venue service staff"),
    Code("8", "商业服务", "commercial services"),
    Code("9", "医务人员", "medical staff"),
    Code("16", "工人", "worker"),
    Code("17", "民工", "migrant worker"),
    Code("18", "农民", "farmer"),
    Code("19", "牧民", "herder"),
    Code("20", "渔(船)民", "fisherman or boatman", ("渔民", "船民")),
    Code("21", "海员及长途驾驶员", "seaman or long-distance driver"),
    Code("22", "干部职员", "cadre or office staff"),
    Code("23", "离退人员", "retired"),
    Code("24", "家务及待业", "housework or unemployed"),
    Code("28", "不详", "unknown"),
    Code("29", "其他", "other", ("其它",)),
)
CHILD_OCCUPATIONS = frozenset({"1", "2"})
#: Groups allowed for a patient aged ≤ :data:`CHILD_MAX_AGE_YEARS` (national interface rule).
CHILD_ALLOWED_OCCUPATIONS = frozenset({"1", "2", "3"})
#: Groups whose card must name the work unit or school (national filling rules, [C1]).
WORK_UNIT_REQUIRED_OCCUPATIONS = frozenset({"1", "3", "4", "9", "16", "17", "22"})

#: 病例分类 (1) case classification.
CLASSIFICATIONS = _with_catalog(
    "case_classification",
    Code("1", "疑似病例", "suspected case", ("疑似",)),
    Code("2", "临床诊断病例", "clinically diagnosed case", ("临床诊断",)),
    Code("3", "确诊病例", "confirmed case", ("实验室确诊病例", "实验室确诊", "确诊")),
    Code("4", "病原携带者", "pathogen carrier", ("病原携带",)),
    Code("5", "阳性检测结果", "positive test", ("阳性检测", "阳性检测结果(献血员)")),
    Code("6", "留观病例", "case under observation", ("埃博拉留观病例",)),
)

#: 病例分类 (2) acute/chronic, asked for hepatitis B and C and schistosomiasis.
CHRONICITIES = _with_catalog(
    "chronicity",
    Code("1", "急性", "acute"),
    Code("2", "慢性", "chronic"),
    Code("3", "未分型", "not typed", ("未分类",)),
)
NOT_TYPED = "3"

#: Card rules that depend on the patient being a child: guardian's name, phone and the
#: child population groups apply at ages ≤ 14 completed years.
CHILD_MAX_AGE_YEARS = 14

#: The ID number written when the patient's document number is unknown.
UNKNOWN_ID_NUMBERS = frozenset({"00000000000000000X", "000000000000000000", "000000000000000"})

_PAREN = re.compile(r"[(（][^)）]*[)）]")


def normalise_label(text: str) -> str:
    """Fold a label for lookup: NFKC (full-width → half-width), no spaces, lower case."""
    folded = unicodedata.normalize("NFKC", text).replace(" ", "").lower()
    return folded.replace("其它", "其他")


def label_index(table: Mapping[str, Code]) -> dict[str, str]:
    """Every accepted spelling of a list's values (code, labels, aliases) → its code."""
    index: dict[str, str] = {}
    for code in table.values():
        names = (code.code, code.zh, code.en, *code.aliases)
        for name in names:
            key = normalise_label(name)
            index.setdefault(key, code.code)
            stripped = _PAREN.sub("", key)
            if stripped:
                index.setdefault(stripped, code.code)
        if code.code.isdigit():
            index.setdefault(code.code.zfill(2), code.code)
    return index


def lookup(table: Mapping[str, Code], value: str) -> str | None:
    """The code of ``value`` given as a code or any accepted label, or None."""
    return label_index(table).get(normalise_label(value))
