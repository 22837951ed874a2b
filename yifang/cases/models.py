"""Tables of the report card, its history, duplicate flags and the import quarantine.

A card row always holds its current state; every change also leaves a ``card_revision`` row
(the full card as it was) and an audit entry, so corrections (订正) keep their history.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    literal_column,
)
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, mapped_column

from yifang.core.audit import BigId
from yifang.core.db import Base, utcnow

_NAME_NOISE = re.compile(r"[\s·•・.．\-_]+")


def name_key(name: str | None) -> str | None:
    """A patient name reduced for duplicate matching (重卡): NFKC (full-width → half-width),
    no spaces or separator dots (``买买提·艾力`` = ``买买提艾力``), lower case."""
    if not name:
        return None
    key = _NAME_NOISE.sub("", unicodedata.normalize("NFKC", name)).lower()
    return key[:40] or None


def _name_key_default(context: DefaultExecutionContext) -> str | None:
    """Fill ``card.name_key`` on every insert, ORM or Core, from the row's patient name."""
    return name_key(context.get_current_parameters().get("patient_name"))


class Card(Base):
    """One report card. Column comments give the card's field names.

    Status values: ``draft`` (草稿), ``submitted`` (未审核), ``returned`` (退卡, awaiting the
    hospital's fix), ``reviewed`` (已终审), ``deleted`` (已删除, soft). ``version`` is the
    optimistic-locking counter: an update carrying an older version is refused.
    """

    __tablename__ = "card"
    __table_args__ = (
        Index("ix_card_keyset", "diagnosis_time", "id"),
        # disease then diagnosis time for lists by disease; the other columns make it
        # cover the dashboard's aggregates (weekly totals, the 26-week curve by onset, the
        # township map), which then read the index alone instead of ~170,000 cards.
        Index(
            "ix_card_disease_diag",
            "disease_code",
            "diagnosis_time",
            "onset_date",
            "status",
            "address_code",
            "org_code",
        ),
        Index("ix_card_region_diag", "address_code", "diagnosis_time"),
        Index("ix_card_status_due", "status", "review_due_at"),
        Index("ix_card_id_number", "id_number"),
        # a hospital's cards newest first; the disease is read from the index, so a hospital
        # filtering by a disease it rarely reports skips the other cards without reading them
        Index("ix_card_org_diag", "org_code", "diagnosis_time", "disease_code"),
        Index("ix_card_person", "name_key", "birth_date"),
        Index("ix_card_batch", "import_batch_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    card_number: Mapped[str] = mapped_column(String(32), unique=True)  # 卡片编号
    report_type: Mapped[str] = mapped_column(String(1), default="1")  # 报卡类别 1 初次 2 订正
    # indexed as the prefix of ix_card_status_due
    status: Mapped[str] = mapped_column(String(16), default="submitted")
    version: Mapped[int] = mapped_column(Integer, default=1)

    patient_name: Mapped[str] = mapped_column(String(40))  # 患者姓名
    guardian_name: Mapped[str | None] = mapped_column(String(40))  # 患儿家长姓名
    id_type: Mapped[str | None] = mapped_column(String(2))  # 证件类型
    id_number: Mapped[str | None] = mapped_column(String(32))  # 有效证件号
    sex: Mapped[str] = mapped_column(String(1))  # 性别 1 男 2 女
    birth_date: Mapped[date | None] = mapped_column()  # 出生日期
    age_value: Mapped[int | None] = mapped_column(Integer)  # 实足年龄
    age_unit: Mapped[str | None] = mapped_column(String(2))  # 年龄单位 01 岁 02 月 03 天
    work_unit: Mapped[str | None] = mapped_column(String(100))  # 工作单位(学校)
    phone: Mapped[str | None] = mapped_column(String(20))  # 联系电话
    residence_category: Mapped[str] = mapped_column(String(1))  # 病人属于 1..6
    address_code: Mapped[str] = mapped_column(String(12))  # 现住地址国标 (to township)
    address_detail: Mapped[str | None] = mapped_column(String(100))  # 现住详细地址
    occupation: Mapped[str] = mapped_column(String(2))  # 人群分类
    occupation_other: Mapped[str | None] = mapped_column(String(30))
    classification: Mapped[str] = mapped_column(String(2))  # 病例分类
    chronicity: Mapped[str | None] = mapped_column(String(2))  # 病例分类2 急性/慢性
    onset_date: Mapped[date] = mapped_column()  # 发病日期
    diagnosis_time: Mapped[datetime] = mapped_column()  # 诊断时间 (to the hour)
    death_date: Mapped[date | None] = mapped_column()  # 死亡日期
    disease_code: Mapped[str] = mapped_column(ForeignKey("disease.code"))  # 疾病名称
    subtype_code: Mapped[str | None] = mapped_column(String(16))
    org_code: Mapped[str] = mapped_column(ForeignKey("organisation.code"))  # 报告单位
    doctor_name: Mapped[str] = mapped_column(String(40))  # 填卡医生
    fill_date: Mapped[date] = mapped_column()  # 填卡日期
    remarks: Mapped[str | None] = mapped_column(String(200))  # 备注

    entered_at: Mapped[datetime] = mapped_column(default=utcnow)  # 报告卡录入时间 (UTC)
    submitted_at: Mapped[datetime | None] = mapped_column()
    review_due_at: Mapped[datetime | None] = mapped_column()
    reviewed_at: Mapped[datetime | None] = mapped_column()  # 县区审核时间
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    returned_reason: Mapped[str | None] = mapped_column(Text)  # 退卡原因
    corrected_at: Mapped[datetime | None] = mapped_column()  # 订正报告时间
    deleted_at: Mapped[datetime | None] = mapped_column()
    deleted_reason_code: Mapped[str | None] = mapped_column(String(8))
    deleted_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64), default="system")
    source: Mapped[str] = mapped_column(String(16), default="web")  # web, import, api, hospital
    import_batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batch.id"))
    # Hash of the normalised card content; re-importing the same row adds nothing.
    content_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Normalised patient name for duplicate matching; filled on insert (see ``name_key``).
    name_key: Mapped[str | None] = mapped_column(String(40), default=_name_key_default)
    # Set when the card was deleted as a duplicate (重复报告) of another, kept card.
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("card.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # Optimistic locking: every ORM UPDATE carries ``WHERE version = <seen>`` and bumps it.
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


def county_of(address_code: Any) -> Any:
    """SQL: the 6-digit county code of an address, ``substr(address_code, 1, 6)`` with
    literal arguments, so that queries written with it match ``ix_card_county_diag``."""
    return func.substr(address_code, literal_column("1"), literal_column("6"))


# The county of the address, indexed with the diagnosis time: county lists page in index
# order, and PostgreSQL gathers statistics on the expression (its row estimates stay right).
Index("ix_card_county_diag", county_of(Card.address_code), Card.diagnosis_time)


class CardRevision(Base):
    """The whole card as it stood before a change (订正 history, returns, deletions)."""

    __tablename__ = "card_revision"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("card.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(24))
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str | None] = mapped_column(Text)


class DuplicateFlag(Base):
    """A suspected duplicate (重卡) pair awaiting a reviewer's decision; never auto-merged.

    ``decision``: ``None`` (open), ``merge`` (the later card is deleted as 重复报告 and linked
    to the kept one), ``keep`` (both stand).
    """

    __tablename__ = "duplicate_flag"
    __table_args__ = (UniqueConstraint("card_id", "other_card_id", name="duplicate_pair"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("card.id"), index=True)
    other_card_id: Mapped[int] = mapped_column(ForeignKey("card.id"), index=True)
    rule: Mapped[str] = mapped_column(String(16))  # id_number, fuzzy
    score: Mapped[float] = mapped_column(default=1.0)
    flagged_at: Mapped[datetime] = mapped_column(default=utcnow)
    decision: Mapped[str | None] = mapped_column(String(8))
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column()


class ImportBatch(Base):
    """One imported file: what it was, how it went."""

    __tablename__ = "import_batch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    filename: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64), index=True)
    file_format: Mapped[str] = mapped_column(String(8))
    encoding: Mapped[str | None] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_stored: Mapped[int] = mapped_column(Integer, default=0)
    rows_duplicate: Mapped[int] = mapped_column(Integer, default=0)
    rows_quarantined: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="running")
    error: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64), default="system")


class QuarantinedRow(Base):
    """An imported row that failed validation, kept whole with every error found."""

    __tablename__ = "quarantined_row"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("import_batch.id"), index=True)
    row_number: Mapped[int] = mapped_column(Integer)
    raw: Mapped[dict[str, Any]] = mapped_column(JSON)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)
