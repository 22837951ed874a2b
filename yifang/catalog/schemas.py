"""Pydantic shapes of the catalog: what the data files and the API accept and return.

``DiseaseCreate`` is the one definition of a valid disease: the loader checks every entry of
``diseases.yaml`` with it and the API checks every new or edited disease with it, so a rule
cannot be bypassed by choosing one path over the other. ``OrganisationCreate`` plays the same
part for organisations. Code-list fields are checked against ``codes.yaml``.

Rules that span fields raise :func:`rule_error`, which carries the field at fault and a
Chinese message besides pydantic's English one; :func:`field_errors` turns any pydantic error
list into the bilingual :class:`~yifang.core.errors.FieldError` entries the API answers with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from yifang.catalog.codes import code_list
from yifang.core.errors import FieldError

DiseaseClass = Literal["A", "B", "C", "other"]

DISEASE_CODE_PATTERN = r"^[A-Z][A-Z0-9_]{0,15}$"
NATIONAL_CODE_PATTERN = r"^\d{4}$"
SUBTYPE_CODE_PATTERN = r"^[A-Za-z0-9_]{1,16}$"

#: Organisation codes: the owner's admin code (6-digit city/county or 9-digit township code),
#: two capital letters for the kind and a 2-digit sequence, e.g. ``640521HP01``.
ORGANISATION_CODE_PATTERN = r"^\d{6}(\d{3})?[A-Z]{2}\d{2}$"

#: The error type of the catalog's own cross-field rules (see :func:`rule_error`).
RULE_ERROR = "catalog_rule"


def rule_error(field: str, message_en: str, message_zh: str) -> PydanticCustomError:
    """A broken catalog rule, reported on ``field`` in English and Chinese.

    The English text keeps the ``field: …`` form the data-file loader prints; the field and
    the Chinese text travel in the error's context for :func:`field_errors`.
    """
    return PydanticCustomError(
        RULE_ERROR,
        message_en,
        {"field": field, "zh": message_zh},
    )


class Subtype(BaseModel):
    """A laboratory subtype recorded in the card's subtype field (e.g. H7N9, EV71)."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=SUBTYPE_CODE_PATTERN)
    name_zh: str = Field(min_length=1, max_length=64)
    name_en: str = Field(min_length=1, max_length=128)


def _check_codes(values: list[str], list_name: str, field: str) -> list[str]:
    known = code_list(list_name)
    unknown = [v for v in values if v not in known]
    if unknown:
        raise rule_error(
            field,
            f"{field}: unknown code(s) {unknown}; allowed: {', '.join(known)} ({list_name})",
            f"代码 {'、'.join(unknown)} 不在代码表 {list_name} 中（可用："
            + "、".join(f"{code} {label.zh}" for code, label in known.items())
            + "）",
        )
    if len(set(values)) != len(values):
        raise rule_error(field, f"{field}: codes repeat", "代码重复")
    return values


class DiseaseFields(BaseModel):
    """Every setting of a disease except its code (shared by create and output)."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)

    national_code: str | None = Field(default=None, pattern=NATIONAL_CODE_PATTERN)
    icd10: str | None = Field(default=None, max_length=32)
    name_zh: str = Field(min_length=1, max_length=64)
    name_en: str = Field(min_length=1, max_length=128)
    disease_class: DiseaseClass
    managed_as_class_a: bool = False
    parent_code: str | None = Field(default=None, pattern=DISEASE_CODE_PATTERN)
    report_limit_hours: int = Field(default=24, ge=1, le=720, description="hours")
    review_limit_hours: int = Field(default=24, ge=1, le=720, description="hours")
    classifications: list[str] = Field(default_factory=lambda: ["1", "2", "3"], min_length=1)
    chronicity: list[str] = Field(default_factory=list)
    subtypes: list[Subtype] = Field(default_factory=list)
    incubation_min_days: float | None = Field(default=None, ge=0)
    incubation_mean_days: float | None = Field(default=None, ge=0)
    incubation_max_days: float | None = Field(default=None, ge=0)
    serial_interval_mean_days: float | None = Field(default=None, gt=0)
    serial_interval_sd_days: float | None = Field(default=None, ge=0)
    duplicate_window_days: int = Field(default=90, ge=1, le=36500, description="days")
    transmission_route: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    active: bool = True
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("classifications")
    @classmethod
    def _classifications(cls, v: list[str]) -> list[str]:
        return _check_codes(v, "case_classification", "classifications")

    @field_validator("chronicity")
    @classmethod
    def _chronicity(cls, v: list[str]) -> list[str]:
        return _check_codes(v, "chronicity", "chronicity")

    @field_validator("transmission_route")
    @classmethod
    def _route(cls, v: str | None) -> str | None:
        if v is not None:
            _check_codes([v], "transmission_route", "transmission_route")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> DiseaseFields:
        if self.managed_as_class_a and self.disease_class != "B":
            raise rule_error(
                "managed_as_class_a",
                "managed_as_class_a: only a class B disease is managed as class A",
                "只有乙类传染病可按甲类管理",
            )
        lo, mean, hi = self.incubation_min_days, self.incubation_mean_days, self.incubation_max_days
        present = [x for x in (lo, mean, hi) if x is not None]
        if present != sorted(present):
            at_fault = "incubation_mean_days" if mean is not None else "incubation_max_days"
            raise rule_error(
                at_fault,
                "incubation: need min ≤ mean ≤ max (days)",
                "潜伏期须满足 最短 ≤ 平均 ≤ 最长（天）",
            )
        if (self.serial_interval_sd_days is not None) and self.serial_interval_mean_days is None:
            raise rule_error(
                "serial_interval_sd_days",
                "serial_interval_sd_days: given without serial_interval_mean_days",
                "填写代间隔标准差时须同时填写代间隔均值",
            )
        if self.valid_from and self.valid_to and self.valid_from > self.valid_to:
            raise rule_error("valid_to", "valid_to: before valid_from", "失效日期早于生效日期")
        codes = [s.code for s in self.subtypes]
        if len(set(codes)) != len(codes):
            raise rule_error("subtypes", "subtypes: codes repeat", "亚型代码重复")
        return self


class DiseaseCreate(DiseaseFields):
    """A new disease (API POST) or one entry of ``diseases.yaml`` after inheritance."""

    code: str = Field(pattern=DISEASE_CODE_PATTERN, description="Yifang's stable code")

    @model_validator(mode="after")
    def _not_own_parent(self) -> DiseaseCreate:
        if self.parent_code == self.code:
            raise rule_error(
                "parent_code",
                "parent_code: a disease cannot be its own parent",
                "病种不能以自身为上级病种",
            )
        return self


class DiseaseUpdate(BaseModel):
    """A partial change of a disease's settings (API PATCH); the code cannot change."""

    model_config = ConfigDict(extra="forbid")

    national_code: str | None = None
    icd10: str | None = None
    name_zh: str | None = None
    name_en: str | None = None
    disease_class: DiseaseClass | None = None
    managed_as_class_a: bool | None = None
    parent_code: str | None = None
    report_limit_hours: int | None = None
    review_limit_hours: int | None = None
    classifications: list[str] | None = None
    chronicity: list[str] | None = None
    subtypes: list[Subtype] | None = None
    incubation_min_days: float | None = None
    incubation_mean_days: float | None = None
    incubation_max_days: float | None = None
    serial_interval_mean_days: float | None = None
    serial_interval_sd_days: float | None = None
    duplicate_window_days: int | None = None
    transmission_route: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    active: bool | None = None
    extra: dict[str, Any] | None = None
    reason: str | None = Field(default=None, max_length=500, description="why (kept in audit)")


class DiseaseOut(DiseaseFields):
    """A disease as stored, with who last edited it."""

    code: str
    leaf: bool = Field(default=True, description="True if cards may name it (no children)")
    source_version: str | None = None
    edited_by: str | None = None
    updated_at: datetime | None = None


class RegionOut(BaseModel):
    """An administrative division (GB/T 2260 / NBS statistical code without zero padding)."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    level: int
    parent_code: str | None
    name_en: str | None = None
    kind: str | None = None
    urban: bool | None = None
    herding: bool | None = None
    longitude: float | None = None
    latitude: float | None = None
    active: bool = True
    source_version: str | None = None


REGION_CODE_PATTERN = r"^(\d{2}|\d{4}|\d{6}|\d{9}|\d{12})$"
PHONE_PATTERN = r"^[0-9+()\- ]{3,32}$"


class OrganisationFields(BaseModel):
    """Every setting of an organisation except its code (shared by create and output).

    ``region_code`` may be given padded (``640521100000``); the service stores it without
    padding after checking that the region exists. ``parent_code`` is the organisation that
    reviews its cards (a county CDC) or that it reports to.
    """

    model_config = ConfigDict(extra="forbid", from_attributes=True, str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=128)
    kind: str = Field(description="a code of codes.yaml's organisation_kind")
    region_code: str = Field(pattern=REGION_CODE_PATTERN, description="GB/T 2260 code")
    level: str | None = Field(default=None, max_length=16, description="三级/二级/一级, 市级…")
    parent_code: str | None = Field(default=None, max_length=32)
    phone: str | None = Field(default=None, pattern=PHONE_PATTERN)
    active: bool = True

    @field_validator("level", "parent_code", "phone", mode="before")
    @classmethod
    def _blank_is_none(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        _check_codes([v], "organisation_kind", "kind")
        return v


class OrganisationCreate(OrganisationFields):
    """A new organisation (API POST)."""

    code: str = Field(
        pattern=ORGANISATION_CODE_PATTERN,
        description="owner's 6- or 9-digit admin code + 2 capital letters + 2 digits",
    )

    @model_validator(mode="after")
    def _not_own_parent(self) -> OrganisationCreate:
        if self.parent_code == self.code:
            raise rule_error(
                "parent_code",
                "parent_code: an organisation cannot be its own parent",
                "机构不能以自身为上级机构",
            )
        return self


class OrganisationUpdate(BaseModel):
    """A partial change of an organisation (API PATCH); the code cannot change."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    kind: str | None = None
    region_code: str | None = None
    level: str | None = None
    parent_code: str | None = None
    phone: str | None = None
    active: bool | None = None
    reason: str | None = Field(default=None, max_length=500, description="why (kept in audit)")


class OrganisationOut(BaseModel):
    """A reporting or receiving organisation, with who last edited it (``None``: as in the
    data file)."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    kind: str
    region_code: str
    level: str | None = None
    parent_code: str | None = None
    phone: str | None = None
    active: bool = True
    synthetic: bool = False
    edited_by: str | None = None


class CatalogChange(BaseModel):
    """One entry of a disease's or an organisation's edit history (from the audit trail)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    reason: str | None = None


class PopulationBand(BaseModel):
    """Residents of one sex (M/F/T) in ages [age_from, age_to) years; age_to None = open."""

    sex: str
    age_from: int
    age_to: int | None
    count: int


class PopulationOut(BaseModel):
    """Resident population of a region in a year."""

    region_code: str
    year: int
    total: int
    synthetic: bool
    source: str | None = None
    bands: list[PopulationBand] = Field(default_factory=list)


class CodeLabel(BaseModel):
    """One code of a code list."""

    code: str
    zh: str
    en: str
    attributes: dict[str, Any] = Field(default_factory=dict)


# ------------------------------------------------------------------------------------------
# Errors by field, in Chinese and English
# ------------------------------------------------------------------------------------------

#: Chinese names of the fields, for messages (the API's field names stay English).
FIELD_NAMES_ZH: dict[str, str] = {
    "code": "编码",
    "national_code": "国家编码",
    "icd10": "ICD-10",
    "name_zh": "中文名称",
    "name_en": "英文名称",
    "disease_class": "类别",
    "managed_as_class_a": "按甲类管理",
    "parent_code": "上级",
    "report_limit_hours": "报告时限（小时）",
    "review_limit_hours": "审核时限（小时）",
    "classifications": "病例分类",
    "chronicity": "急慢性",
    "subtypes": "亚型",
    "incubation_min_days": "最短潜伏期（天）",
    "incubation_mean_days": "平均潜伏期（天）",
    "incubation_max_days": "最长潜伏期（天）",
    "serial_interval_mean_days": "代间隔均值（天）",
    "serial_interval_sd_days": "代间隔标准差（天）",
    "duplicate_window_days": "重卡判定期（天）",
    "transmission_route": "传播途径",
    "valid_from": "生效日期",
    "valid_to": "失效日期",
    "active": "启用",
    "extra": "其他设置",
    "reason": "修改原因",
    "name": "名称",
    "kind": "机构类型",
    "region_code": "所在地区",
    "level": "级别",
    "phone": "电话",
    "request": "请求",
}

#: Chinese text of pydantic's error types ({name} from the error's context).
_TYPE_ZH: dict[str, str] = {
    "missing": "必填",
    "extra_forbidden": "不是可设置的字段",
    "string_pattern_mismatch": "格式不正确",
    "string_too_short": "至少 {min_length} 个字符",
    "string_too_long": "最多 {max_length} 个字符",
    "string_type": "须为文字",
    "too_short": "至少 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "greater_than_equal": "不能小于 {ge}",
    "greater_than": "须大于 {gt}",
    "less_than_equal": "不能大于 {le}",
    "less_than": "须小于 {lt}",
    "int_parsing": "须为整数",
    "int_type": "须为整数",
    "int_from_float": "须为整数",
    "float_parsing": "须为数字",
    "float_type": "须为数字",
    "finite_number": "须为有限的数字",
    "bool_parsing": "须为是或否",
    "bool_type": "须为是或否",
    "literal_error": "须为以下之一：{expected}",
    "date_parsing": "日期格式应为 YYYY-MM-DD",
    "date_from_datetime_parsing": "日期格式应为 YYYY-MM-DD",
    "date_type": "日期格式应为 YYYY-MM-DD",
    "list_type": "须为列表",
    "dict_type": "格式不正确",
    "model_type": "格式不正确",
    "model_attributes_type": "格式不正确",
    "json_invalid": "不是有效的 JSON",
}

#: What a pattern asks for, in words (Chinese, English), instead of the regular expression.
_PATTERN_WORDS: dict[str, tuple[str, str]] = {
    DISEASE_CODE_PATTERN: (
        "须以大写字母开头，只含大写字母、数字和下划线，最多 16 位",
        "a capital letter, then capitals, digits or _ (at most 16)",
    ),
    NATIONAL_CODE_PATTERN: ("须为 4 位数字", "4 digits"),
    SUBTYPE_CODE_PATTERN: ("只含字母、数字和下划线，1–16 位", "1 to 16 letters, digits or _"),
    ORGANISATION_CODE_PATTERN: (
        "须为 6 或 9 位行政区划代码 + 2 位大写字母 + 2 位序号，如 640521HP01",
        "a 6- or 9-digit admin code, 2 capital letters and 2 digits, e.g. 640521HP01",
    ),
    REGION_CODE_PATTERN: ("须为 2、4、6、9 或 12 位数字", "2, 4, 6, 9 or 12 digits"),
    PHONE_PATTERN: ("只含数字、空格和 + - ( )，3–32 位", "3 to 32 digits, spaces or + - ( )"),
}

_LOCATIONS = ("body", "query", "path", "header")


def _zh_text(error_type: str, context: Mapping[str, Any], message: str) -> str:
    template = _TYPE_ZH.get(error_type)
    if template is None:
        return f"无效（{message}）"
    try:
        return template.format(**{k: str(v) for k, v in context.items()})
    except (KeyError, IndexError, ValueError):
        return template


def field_errors(errors: Iterable[Mapping[str, Any]]) -> list[FieldError]:
    """Pydantic (or FastAPI request) errors as bilingual field errors.

    The field is the error's location without the request part (``subtypes.0.code``), or,
    for a rule spanning fields (:func:`rule_error`), the field the rule names. Messages start
    with the field's name: Chinese (``报告时限（小时）：不能大于 720``) and English
    (``report_limit_hours: Input should be less than or equal to 720``).
    """
    out: list[FieldError] = []
    for err in errors:
        error_type = str(err.get("type", "invalid"))
        context = err.get("ctx") or {}
        message = str(err.get("msg", "invalid"))
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in _LOCATIONS)
        words = _PATTERN_WORDS.get(str(context.get("pattern", "")))
        if error_type == RULE_ERROR:
            field = str(context.get("field") or loc or "request")
            zh, en = str(context.get("zh", message)), message
        elif error_type == "string_pattern_mismatch" and words is not None:
            field = loc or "request"
            zh, en = words[0], f"{field}: {words[1]}"
        else:
            field = loc or "request"
            zh, en = _zh_text(error_type, context, message), f"{field}: {message}"
        name = FIELD_NAMES_ZH.get(field.split(".")[0], field)
        out.append(
            FieldError(
                field=field,
                code=f"{field}.{error_type}",
                message_zh=f"{name}：{zh}",
                message_en=en,
            )
        )
    return out
