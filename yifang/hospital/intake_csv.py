"""CSV extracts from hospital systems: encounters (one row per visit, diagnoses in the row)
and laboratory results (one row per result), UTF-8 or GB18030, read in batches.

Encounter columns (English names, or the Chinese header in brackets):
``org_code`` (机构编码), ``visit_number`` (就诊号), ``patient_number`` (病案号),
``patient_name`` (姓名), ``id_number`` (身份证号), ``sex`` (性别: 男/女, M/F, 1/2),
``birth_date`` (出生日期), ``phone`` (联系电话), ``guardian_name`` (家长姓名),
``address_code`` (现住址编码), ``address_detail`` (现住址), ``occupation`` (人群分类 code),
``work_unit`` (工作单位), ``visit_time`` (就诊时间), ``encounter_class`` (就诊类型),
``department`` (科室), ``doctor_name`` (医生), ``chief_complaint`` (主诉),
``temperature_c`` (体温), ``onset_date`` (发病日期), ``icd10`` (诊断编码: several separated by
``;`` ``|`` or ``，``), ``diagnosis_text`` (诊断名称, in the same order), ``diagnosed_at``
(诊断时间).

Result columns: ``org_code``, ``visit_number``, ``result_key`` (报告单号; default: visit,
test and time), ``test_code`` (检验项目编码), ``test_name`` (检验项目), ``result_text``
(结果), ``positive`` (阳性标志: 1/0, 阳性/阴性, Y/N), ``unit``, ``observed_at`` (报告时间),
plus the patient columns above for results whose visit is not stored yet.

Every row is checked (required keys, dates, times, numbers, codes, known hospital); a bad
row is left out with an error naming its line and column, and the good rows are stored
(:func:`yifang.hospital.service.ingest_frames`). The file itself is kept as one
:class:`~yifang.hospital.models.IntakeMessage` (inline when small, else its path and SHA-256).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from yifang.catalog.models import Organisation
from yifang.core.db import utcnow
from yifang.core.settings import get_settings
from yifang.hospital import service
from yifang.hospital.models import IntakeMessage
from yifang.hospital.schemas import RecordError

BATCH_ROWS = 100_000
MAX_LISTED_ERRORS = 1_000

ALIASES: dict[str, str] = {
    "机构编码": "org_code",
    "医疗机构编码": "org_code",
    "就诊号": "visit_number",
    "就诊流水号": "visit_number",
    "门诊号": "visit_number",
    "病案号": "patient_number",
    "患者编号": "patient_number",
    "姓名": "patient_name",
    "患者姓名": "patient_name",
    "身份证号": "id_number",
    "有效证件号": "id_number",
    "性别": "sex",
    "出生日期": "birth_date",
    "联系电话": "phone",
    "家长姓名": "guardian_name",
    "现住址编码": "address_code",
    "现住址国标": "address_code",
    "现住址": "address_detail",
    "现住详细地址": "address_detail",
    "人群分类": "occupation",
    "工作单位": "work_unit",
    "就诊时间": "visit_time",
    "就诊类型": "encounter_class",
    "科室": "department",
    "医生": "doctor_name",
    "接诊医生": "doctor_name",
    "主诉": "chief_complaint",
    "体温": "temperature_c",
    "发病日期": "onset_date",
    "诊断编码": "icd10",
    "诊断名称": "diagnosis_text",
    "诊断时间": "diagnosed_at",
    "报告单号": "result_key",
    "检验项目编码": "test_code",
    "检验项目": "test_name",
    "结果": "result_text",
    "检验结果": "result_text",
    "阳性标志": "positive",
    "单位": "unit",
    "报告时间": "observed_at",
    # the simulated city's encounter files (yifang.simulate.encounter_files)
    "encounter_id": "visit_number",
    "patient_id": "patient_number",
    "temperature": "temperature_c",
    "diagnosis": "diagnosis_text",
    "result": "result_text",
    "abnormal_flag": "positive",
    "reported_at": "observed_at",
    "order_id": "result_key",
}
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d")
TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y%m%d%H%M%S",
    "%Y%m%d%H%M",
    "%Y-%m-%d",
)
SEXES = {"男": "1", "M": "1", "1": "1", "女": "2", "F": "2", "2": "2"}
POSITIVE = {"1": True, "Y": True, "阳性": True, "+": True, "POS": True, "TRUE": True, "A": True}
NEGATIVE = {"0": False, "N": False, "阴性": False, "-": False, "NEG": False, "FALSE": False}


@dataclass
class CsvReport:
    """What a CSV extract did: rows read, stored, left out, and the figures of processing."""

    message_id: int | None = None
    kind: str = "encounters"
    rows: int = 0
    stored: int = 0
    rejected: int = 0
    errors: list[RecordError] = field(default_factory=list)
    figures: dict[str, int] = field(default_factory=dict)
    duplicate_of: int | None = None


def _date(col: str) -> pl.Expr:
    text = pl.col(col).str.strip_chars()
    return pl.coalesce([text.str.to_date(f, strict=False) for f in DATE_FORMATS])


def _time(col: str) -> pl.Expr:
    text = pl.col(col).str.strip_chars()
    return pl.coalesce(
        [text.str.to_datetime(f, strict=False, time_unit="us") for f in TIME_FORMATS]
    )


def _checks(frame: pl.DataFrame, orgs: set[str], kind: str) -> list[tuple[str, str, pl.Expr]]:
    """(column, error code, violated) of every row rule that applies to the frame."""
    rules: list[tuple[str, str, pl.Expr]] = []
    for col in ("org_code", "visit_number"):
        rules.append((col, "required", pl.col(col).is_null()))
    rules.append(
        (
            "org_code",
            "unknown_organisation",
            pl.col("org_code").is_not_null() & ~pl.col("org_code").is_in(sorted(orgs)),
        )
    )
    for col in ("birth_date", "onset_date"):
        if col in frame.columns:
            rules.append((col, "invalid_date", pl.col(col).is_not_null() & _date(col).is_null()))
    for col in ("visit_time", "diagnosed_at", "observed_at"):
        if col in frame.columns:
            rules.append((col, "invalid_time", pl.col(col).is_not_null() & _time(col).is_null()))
    if "temperature_c" in frame.columns:
        t = pl.col("temperature_c").cast(pl.Float64, strict=False)
        rules.append(
            (
                "temperature_c",
                "invalid_number",
                pl.col("temperature_c").is_not_null() & (t.is_null() | (t < 25) | (t > 45)),
            )
        )
    if "sex" in frame.columns:
        rules.append(
            (
                "sex",
                "invalid_code",
                pl.col("sex").is_not_null() & ~pl.col("sex").str.to_uppercase().is_in(list(SEXES)),
            )
        )
    if "address_code" in frame.columns:
        rules.append(
            (
                "address_code",
                "invalid_code",
                pl.col("address_code").is_not_null()
                & ~pl.col("address_code").str.contains(r"^\d{6,12}$"),
            )
        )
    if kind == "labs":
        rules.append(
            (
                "test_name",
                "required",
                pl.col("test_name").is_null() & pl.col("test_code").is_null()
                if "test_code" in frame.columns
                else pl.col("test_name").is_null(),
            )
        )
    return rules


MESSAGES = {
    "required": ("必填", "is required"),
    "unknown_organisation": ("机构编码不在目录中", "is not an organisation of the catalog"),
    "invalid_date": ("日期无效(应为 YYYY-MM-DD)", "is not a date (YYYY-MM-DD)"),
    "invalid_time": ("时间无效(应为 YYYY-MM-DD HH:MM)", "is not a time (YYYY-MM-DD HH:MM)"),
    "invalid_number": ("应为25–45之间的数字", "must be a number from 25 to 45"),
    "invalid_code": ("代码无效", "is not a valid code"),
}


def _clean(frame: pl.DataFrame) -> pl.DataFrame:
    renamed = {
        c: ALIASES.get(c.strip().lstrip("\ufeff"), c.strip().lstrip("\ufeff"))
        for c in frame.columns
    }
    frame = frame.rename(renamed)
    return frame.with_columns(
        [
            pl.when(pl.col(c).str.strip_chars().is_in(["", ".", "NULL", "null"]))
            .then(None)
            .otherwise(pl.col(c).str.strip_chars())
            .alias(c)
            for c in frame.columns
        ]
    )


def check_batch(
    frame: pl.DataFrame, orgs: set[str], first_line: int, kind: str
) -> tuple[pl.DataFrame, list[RecordError], int]:
    """The valid rows of a raw batch, the errors of the others (line numbers count the
    header as line 1), and how many rows were left out."""
    rules = _checks(frame, orgs, kind)
    flags = frame.select(
        [v.fill_null(False).alias(f"__r{i}") for i, (_c, _k, v) in enumerate(rules)]
    )
    bad = (
        flags.select(pl.any_horizontal(pl.all()).alias("bad"))["bad"]
        if rules
        else pl.Series([False] * frame.height)
    )
    errors: list[RecordError] = []
    if bad.any():
        positions = bad.arg_true().to_list()
        sub = flags[positions]
        for pos, row in zip(positions, sub.iter_rows(), strict=True):
            for i, hit in enumerate(row):
                if hit:
                    col, code, _ = rules[i]
                    zh, en = MESSAGES[code]
                    value = frame[col][pos] if col in frame.columns else None
                    errors.append(
                        RecordError(
                            location=f"line {first_line + pos}, {col}",
                            code=code,
                            message_zh=f"第 {first_line + pos} 行 {col}:{zh}(值:{value})",
                            message_en=f"line {first_line + pos}, {col}: {value!r} {en}",
                        )
                    )
    return frame.filter(~bad), errors, int(bad.sum())


def to_frames(frame: pl.DataFrame, kind: str) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Valid raw rows as the bulk frames (encounters, diagnoses, results) of
    :func:`yifang.hospital.service.ingest_frames`."""
    cols = frame.columns

    def opt(name: str, expr: pl.Expr | None = None) -> pl.Expr:
        if name not in cols:
            return pl.lit(None, pl.String).alias(name)
        return (expr if expr is not None else pl.col(name)).alias(name)

    typed = frame.with_columns(
        opt("birth_date", _date("birth_date"))
        if "birth_date" in cols
        else pl.lit(None, pl.Date).alias("birth_date"),
        opt("onset_date", _date("onset_date"))
        if "onset_date" in cols
        else pl.lit(None, pl.Date).alias("onset_date"),
        opt("visit_time", _time("visit_time"))
        if "visit_time" in cols
        else pl.lit(None, pl.Datetime("us")).alias("visit_time"),
        opt("sex", pl.col("sex").str.to_uppercase().replace_strict(SEXES, default=None))
        if "sex" in cols
        else pl.lit(None, pl.String).alias("sex"),
        opt("temperature_c", pl.col("temperature_c").cast(pl.Float64, strict=False))
        if "temperature_c" in cols
        else pl.lit(None, pl.Float64).alias("temperature_c"),
        opt("id_number", pl.col("id_number").str.to_uppercase())
        if "id_number" in cols
        else pl.lit(None, pl.String).alias("id_number"),
    )
    if kind == "labs":
        labs = typed.with_columns(
            opt("observed_at", _time("observed_at"))
            if "observed_at" in cols
            else pl.lit(None, pl.Datetime("us")).alias("observed_at"),
            opt(
                "positive",
                pl.col("positive")
                .str.to_uppercase()
                .replace_strict({**POSITIVE, **NEGATIVE}, default=None, return_dtype=pl.Boolean),
            )
            if "positive" in cols
            else pl.lit(None, pl.Boolean).alias("positive"),
        )
        if "result_key" not in cols:
            labs = labs.with_columns(
                pl.concat_str(
                    [
                        pl.col("visit_number"),
                        pl.col("test_code").fill_null("") if "test_code" in cols else pl.lit(""),
                        pl.col("test_name").fill_null("") if "test_name" in cols else pl.lit(""),
                        pl.col("observed_at").dt.to_string("%Y%m%d%H%M").fill_null(""),
                    ],
                    separator=":",
                ).alias("result_key")
            )
        encounters = labs.unique(subset=["org_code", "visit_number"], keep="first")
        return encounters, pl.DataFrame(), labs
    dx = pl.DataFrame()
    if "icd10" in cols or "diagnosis_text" in cols:
        at = _time("diagnosed_at") if "diagnosed_at" in cols else pl.lit(None, pl.Datetime("us"))
        split = r"[;|，,；]"
        parts = typed.select(
            "org_code",
            "visit_number",
            (
                pl.col("icd10").str.replace_all(split, ";").str.split(";")
                if "icd10" in cols
                else pl.lit(None, pl.List(pl.String))
            ).alias("icd10"),
            (
                pl.col("diagnosis_text").str.replace_all(split, ";").str.split(";")
                if "diagnosis_text" in cols
                else pl.lit(None, pl.List(pl.String))
            ).alias("text"),
            at.alias("diagnosed_at"),
        )
        longest = pl.max_horizontal(
            pl.col("icd10").list.len().fill_null(0), pl.col("text").list.len().fill_null(0)
        )
        parts = (
            parts.with_columns(pl.int_ranges(0, longest).alias("i"))
            .explode("i")
            .filter(pl.col("i").is_not_null())
        )
        dx = (
            parts.select(
                "org_code",
                "visit_number",
                pl.col("icd10")
                .list.get(pl.col("i"), null_on_oob=True)
                .str.strip_chars()
                .alias("icd10"),
                pl.col("text")
                .list.get(pl.col("i"), null_on_oob=True)
                .str.strip_chars()
                .alias("text"),
                "diagnosed_at",
            )
            .with_columns(
                pl.concat_str(
                    [pl.lit("csv"), pl.col("icd10").fill_null(""), pl.col("text").fill_null("")],
                    separator=":",
                ).alias("entry_key"),
                pl.lit("final").alias("kind"),
                pl.lit(False).alias("refuted"),
            )
            .filter(pl.col("icd10").is_not_null() | pl.col("text").is_not_null())
        )
    return typed, dx, pl.DataFrame()


def _organisations(session: Session) -> set[str]:
    return set(session.scalars(select(Organisation.code).where(Organisation.active.is_(True))))


def _utf8_copy(path: Path) -> tuple[Path, str]:
    """The file as UTF-8 (a GB18030 file is transcoded to a temporary copy) and its encoding."""
    with path.open("rb") as fh:
        head = fh.read(1 << 20)
    try:
        head.decode("utf-8")
        return path, "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start > len(head) - 4:  # a character cut at the end of the sample
            return path, "utf-8"
    tmp = Path(tempfile.mkstemp(suffix=".csv")[1])
    with (
        path.open("r", encoding="gb18030", errors="replace") as src,
        tmp.open("w", encoding="utf-8") as dst,
    ):
        shutil.copyfileobj(src, dst, 1 << 20)
    return tmp, "gb18030"


def _keep(path: Path, digest: str) -> str:
    """The file kept under the data folder; returns what goes in the message's raw text."""
    size = path.stat().st_size
    if size <= service.MAX_INLINE_RAW:
        return path.read_text(encoding="utf-8", errors="replace")
    folder = get_settings().data_dir / "hospital_intake"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{digest}.csv"
    if not target.exists():
        shutil.copyfile(path, target)
    return f"file:{target} sha256:{digest} bytes:{size}"


def ingest_csv(
    session: Session,
    path: Path,
    *,
    actor: str = "system",
    org_code: str | None = None,
    batch_rows: int = BATCH_ROWS,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> CsvReport:
    """Read a CSV extract in batches, store the good rows, keep the file and every error.
    ``org_code`` (a hospital's account) refuses rows of other hospitals."""
    now = now or utcnow()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    report = CsvReport()
    dup = service.find_duplicate(session, org_code, None, digest)
    utf8, encoding = _utf8_copy(path)
    header = pl.read_csv(utf8, n_rows=0, infer_schema=False).columns
    names = {ALIASES.get(c.strip().lstrip("\ufeff"), c.strip().lstrip("\ufeff")) for c in header}
    report.kind = "labs" if {"test_name", "test_code"} & names else "encounters"
    message = IntakeMessage(
        source="csv",
        format=f"csv/{report.kind}/{encoding}",
        org_code=org_code,
        message_key=path.name[:128],
        content_sha256=digest,
        received_at=now,
        raw=_keep(utf8, digest),
        status=service.ACCEPTED,
        errors=[],
        actor=actor,
    )
    if dup is not None:
        message.status = service.DUPLICATE
        message.duplicate_of_id = dup.id
        session.add(message)
        session.flush()
        report.message_id, report.duplicate_of = message.id, dup.id
        return report
    session.add(message)
    session.flush()
    report.message_id = message.id
    orgs = _organisations(session) if org_code is None else {org_code}
    line = 2
    totals: dict[str, int] = {}
    for raw in pl.scan_csv(utf8, infer_schema=False).collect_batches(chunk_size=batch_rows):
        batch = _clean(raw)
        if "org_code" not in batch.columns and org_code is not None:
            batch = batch.with_columns(pl.lit(org_code).alias("org_code"))  # the sender's own
        for needed in ("org_code", "visit_number", "test_name"):
            if needed not in batch.columns:
                batch = batch.with_columns(pl.lit(None, pl.String).alias(needed))
        good, errors, bad = check_batch(batch, orgs, line, report.kind)
        report.rows += batch.height
        report.rejected += bad
        report.errors += errors[: max(0, MAX_LISTED_ERRORS - len(report.errors))]
        line += batch.height
        if good.is_empty():
            continue
        enc, dx, labs = to_frames(good, report.kind)
        result = service.ingest_frames(session, enc, dx, labs, message.id, now)
        report.stored += good.height
        for k, v in result.process.as_dict().items():
            totals[k] = totals.get(k, 0) + int(v)
        message.encounters += result.encounters_new + result.encounters_updated
        message.lab_results += result.lab_results
        if progress:
            progress(report.rows)
    if utf8 != path:
        utf8.unlink(missing_ok=True)
    report.figures = totals
    message.errors = [e.model_dump() for e in report.errors]
    if report.stored == 0 and report.rows > 0:
        message.status = service.REJECTED
    session.flush()
    return report
