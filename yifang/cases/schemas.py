"""Pydantic shapes of the report card: what comes in, what goes out, and a field's error.

``CardIn`` carries the national card's fields under the names of the ``card`` table's
columns, already normalised (codes, not labels; dates parsed). It is what
:func:`yifang.cases.validation.validate_card` returns for a valid card; raw input (strings
from a form or a file, national labels such as 男 or 确诊病例) goes through that function,
never straight into ``CardIn``, so that every problem is reported by field in Chinese and
English rather than as a type error.

Times: ``diagnosis_time`` is the wall-clock time written on the card in the city's time zone,
to the hour, like the card's other dates (onset, birth); the system timestamps of
``CardOut`` (entered, submitted, review due …) are naive UTC.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

#: The card's own fields, in the order of the printed card (and of the import templates).
CARD_FIELDS: tuple[str, ...] = (
    "card_number",
    "report_type",
    "patient_name",
    "guardian_name",
    "id_type",
    "id_number",
    "sex",
    "birth_date",
    "age_value",
    "age_unit",
    "work_unit",
    "phone",
    "residence_category",
    "address_code",
    "address_detail",
    "occupation",
    "occupation_other",
    "classification",
    "chronicity",
    "onset_date",
    "diagnosis_time",
    "death_date",
    "disease_code",
    "subtype_code",
    "org_code",
    "doctor_name",
    "fill_date",
    "remarks",
)


class CardIn(BaseModel):
    """A card's content as entered: the national card's fields, normalised to codes."""

    card_number: str | None = Field(
        None, max_length=32, description="卡片编号; generated if absent."
    )
    report_type: str = Field("1", description="报卡类别: 1 初次报告, 2 订正报告.")
    patient_name: str = Field(description="患者姓名, 2–20 characters, no digits.")
    guardian_name: str | None = Field(None, description="患儿家长姓名, required at age ≤ 14.")
    id_type: str | None = Field(None, description="证件类型: 1 居民身份证, 3 护照 … 99 其他.")
    id_number: str | None = Field(None, description="有效证件号; 00000000000000000X if unknown.")
    sex: str = Field(description="性别: 1 男, 2 女.")
    birth_date: date | None = Field(None, description="出生日期; or age_value + age_unit.")
    age_value: int | None = Field(None, description="实足年龄 (at onset).")
    age_unit: str | None = Field(None, description="年龄单位: 01 岁, 02 月, 03 天.")
    work_unit: str | None = Field(None, description="工作单位(学校), ≤ 50 characters.")
    phone: str | None = Field(None, description="联系电话, required at age ≤ 14.")
    residence_category: str = Field(description="病人属于: 1 本县区 … 6 外籍.")
    address_code: str = Field(description="现住地址国标: township (9 digits) in the city.")
    address_detail: str | None = Field(None, description="现住详细地址, ≤ 50 characters.")
    occupation: str = Field(description="人群分类 code (see yifang.cases.codes.OCCUPATIONS).")
    occupation_other: str | None = Field(None, description="人群分类 '其他' free text.")
    classification: str = Field(
        description="病例分类: 1 疑似 2 临床诊断 3 确诊 4 病原携带 5 阳性检测."
    )
    chronicity: str | None = Field(None, description="病例分类(2): 1 急性 2 慢性 3 未分型.")
    onset_date: date = Field(description="发病日期 (city calendar date).")
    diagnosis_time: datetime = Field(description="诊断时间, local wall-clock time, to the hour.")
    death_date: date | None = Field(None, description="死亡日期.")
    disease_code: str = Field(description="Catalog disease code.")
    subtype_code: str | None = Field(None, description="Disease subtype code from the catalog.")
    org_code: str = Field(description="报告单位 organisation code.")
    doctor_name: str = Field(description="填卡医生.")
    fill_date: date = Field(description="填卡日期.")
    remarks: str | None = Field(None, description="备注, ≤ 50 characters.")


class CardOut(CardIn):
    """A stored card: its content plus workflow state and system timestamps (naive UTC)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    card_number: str | None = None
    status: str = Field(description="draft, submitted, returned, reviewed or deleted.")
    version: int
    entered_at: datetime
    submitted_at: datetime | None = None
    review_due_at: datetime | None = None
    reviewed_at: datetime | None = None
    reviewed_by: str | None = None
    returned_reason: str | None = None
    corrected_at: datetime | None = None
    deleted_at: datetime | None = None
    deleted_reason: str | None = None
    created_by: str
    source: str
    import_batch_id: int | None = None
    updated_at: datetime
