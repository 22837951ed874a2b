"""Importing card files: formats, quarantine, re-import, unreadable files, error reports."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.cases.data import samples
from yifang.cases import importing
from yifang.cases.import_formats import (
    CorruptFileError,
    EmptyFileError,
    ImportFileError,
    MissingColumnsError,
    NoDataRowsError,
    UndecodableFileError,
    UnsupportedFormatError,
)
from yifang.cases.importing import error_report, import_file
from yifang.cases.models import Card, ImportBatch, QuarantinedRow

NOW = samples.NOW


@pytest.fixture()
def db(engine: Engine, session: Session) -> Engine:
    samples.install(session)
    return engine


def counts(engine: Engine) -> tuple[int, int, int]:
    with Session(engine) as s:
        return (
            s.scalar(select(func.count()).select_from(Card)) or 0,
            s.scalar(select(func.count()).select_from(QuarantinedRow)) or 0,
            s.scalar(
                select(func.count()).select_from(ImportBatch).where(ImportBatch.status == "done")
            )
            or 0,
        )


def distinct_cards(n: int) -> list[dict[str, Any]]:
    """``n`` valid, distinct adult cards."""
    names = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超兰霞平"
    return [
        samples.valid_card(
            patient_name=f"张{names[i % 20]}{names[(i // 20) % 20]}", phone=f"139{i:08d}"
        )
        for i in range(n)
    ]


def write_csv(path: Path, rows: list[dict[str, Any]], encoding: str = "utf-8") -> Path:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="", encoding=encoding) as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


BAD_CHANGES: list[tuple[dict[str, Any], str]] = [
    ({"sex": "X"}, "sex.invalid_code"),
    ({"id_number": "640502198005171230"}, "id_number.checksum"),
    ({"onset_date": "2025-06-27"}, "onset_date.after_diagnosis"),
    ({"disease_code": "NOPE"}, "disease_code.unknown"),
    ({"patient_name": "王2"}, "patient_name.characters"),
]


def test_ten_percent_bad_rows_keep_every_good_row(db: Engine, tmp_path: Path) -> None:
    rows = distinct_cards(200)
    bad_rows: dict[int, str] = {}
    for i in range(0, 200, 10):
        change, code = BAD_CHANGES[(i // 10) % len(BAD_CHANGES)]
        rows[i] = {**rows[i], **change}
        bad_rows[i + 2] = code  # header is row 1
    result = import_file(db, write_csv(tmp_path / "cards.csv", rows), now=NOW, chunk_rows=64)
    assert (result.rows_total, result.rows_stored, result.rows_quarantined) == (200, 180, 20)
    with Session(db) as s:
        quarantined = {q.row_number: q for q in s.scalars(select(QuarantinedRow))}
        assert set(quarantined) == set(bad_rows)
        for row_number, code in bad_rows.items():
            assert code in {e["code"] for e in quarantined[row_number].errors}
            assert (
                quarantined[row_number].raw["patient_name"] == rows[row_number - 2]["patient_name"]
            )
        stored = s.scalars(select(Card).order_by(Card.id)).all()
        assert len(stored) == 180
        card = stored[0]
        assert (card.status, card.source, card.import_batch_id) == ("submitted", "import", 1)
        assert card.entered_at == NOW and card.review_due_at == NOW + timedelta(hours=24)
        assert (
            card.card_number
            and card.content_hash
            and card.diagnosis_time == datetime(2025, 6, 25, 10)
        )
        batch = s.get(ImportBatch, result.batch_id)
        assert batch is not None and batch.status == "done" and batch.rows_quarantined == 20


def test_importing_the_same_file_or_rows_again_adds_nothing(db: Engine, tmp_path: Path) -> None:
    rows = distinct_cards(30)
    path = write_csv(tmp_path / "cards.csv", rows)
    first = import_file(db, path, now=NOW)
    assert first.rows_stored == 30
    before = counts(db)
    again = import_file(db, path, now=NOW)
    assert again.already_imported and again.batch_id == first.batch_id
    assert counts(db) == before
    forced = import_file(db, path, now=NOW, force=True)
    assert (forced.rows_stored, forced.rows_duplicate) == (0, 30)
    # Another file holding some of the same rows (and a row twice) adds only the new ones.
    overlap = write_csv(tmp_path / "overlap.csv", [*rows[:5], *distinct_cards(35)[30:], rows[0]])
    result = import_file(db, overlap, now=NOW)
    assert (result.rows_stored, result.rows_duplicate) == (5, 6)
    assert counts(db)[0] == 35


def test_a_card_number_taken_by_another_card_is_quarantined(db: Engine, tmp_path: Path) -> None:
    first, second = distinct_cards(2)
    import_file(db, write_csv(tmp_path / "a.csv", [{**first, "card_number": "C001"}]), now=NOW)
    result = import_file(
        db, write_csv(tmp_path / "b.csv", [{**second, "card_number": "C001"}]), now=NOW
    )
    assert (result.rows_stored, result.rows_quarantined) == (0, 1)
    with Session(db) as s:
        row = s.scalars(select(QuarantinedRow)).one()
        assert row.errors[0]["code"] == "card_number.exists"
        assert row.raw["card_number"] == "C001"


def test_review_due_time_follows_the_disease(db: Engine, tmp_path: Path) -> None:
    plague = samples.valid_card(disease_code="T-PLAGUE", chronicity=None, classification="1")
    import_file(db, write_csv(tmp_path / "p.csv", [plague]), now=NOW)
    with Session(db) as s:
        card = s.scalars(select(Card)).one()
        assert card.review_due_at == NOW + timedelta(hours=2)


NATIONAL_HEADER = [
    "卡片ID", "卡片编号", "卡片状态", "患者姓名", "患儿家长姓名", "有效证件号", "性别", "出生日期",
    "年龄", "患者工作单位", "联系电话", "病人属于", "现住地址国标", "现住详细地址", "人群分类",
    "病例分类", "病例分类2", "发病日期", "诊断时间", "死亡日期", "疾病名称", "填卡医生",
    "医生填卡日期", "报告单位", "报告卡录入时间", "审核状态", "备注",
]  # fmt: skip


def national_rows() -> list[list[str]]:
    adult_id = samples.valid_card()["id_number"]
    child = samples.child_card()
    return [
        ["1", "64050200001", "原始卡", "张伟", ".", adult_id, "男", "1980/5/17", "45岁",
         "中卫市建筑公司", "13912345678", "本县区", "640502100000", "滨河镇某村", "农民",
         "确诊病例", "慢性", "2025/6/20", "2025-06-25 10:30", ".", "乙型肝炎", "李医生",
         "2025/6/25", "中卫市人民医院", "2025-06-25 11:02", "未审核卡", "."],
        ["2", "64050200002", "原始卡", "王小明", "王大明", child["id_number"], "男", "2021/3/2",
         "4岁", ".", "13912345679", "本市其它县区", "640521100000", ".", "散居儿童",
         "临床诊断病例", ".", "2025/6/20", "2025-06-21 08:00", ".", "手足口病", "李医生",
         "2025/6/21", "中卫市人民医院", "2025-06-21 09:00", "已终审卡", "."],
        ["3", "64050200003", "原始卡", "李四", ".", adult_id, "女", "1980/5/17", "45岁",
         ".", ".", "本县区", "640502100000", ".", "农民", "确诊病例", "慢性", "2025/6/20",
         "2025-06-25 10:30", ".", "乙型肝炎", "李医生", "2025/6/25", "中卫市人民医院",
         ".", "未审核卡", "."],
    ]  # fmt: skip


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig", "utf-8"])
def test_national_export_columns_in_every_encoding(
    db: Engine, tmp_path: Path, encoding: str
) -> None:
    path = tmp_path / "export.csv"
    with path.open("w", newline="", encoding=encoding) as fh:
        writer = csv.writer(fh)
        writer.writerow(NATIONAL_HEADER)
        writer.writerows(national_rows())
    result = import_file(db, path, now=NOW)
    assert result.encoding == {"utf-8-sig": "utf-8-sig"}.get(encoding, encoding)
    assert (result.rows_stored, result.rows_quarantined) == (2, 1)
    assert {"卡片ID", "报告卡录入时间", "审核状态"} <= set(result.ignored_columns)
    with Session(db) as s:
        cards = {c.card_number: c for c in s.scalars(select(Card))}
        adult = cards["64050200001"]
        assert (adult.sex, adult.occupation, adult.classification, adult.chronicity) == (
            "1",
            "18",
            "3",
            "2",
        )
        assert (adult.disease_code, adult.org_code, adult.address_code) == (
            "T-HBV",
            "T-H1",
            "640502100",
        )
        assert adult.diagnosis_time == datetime(2025, 6, 25, 10)
        assert adult.guardian_name is None and adult.remarks is None
        child = cards["64050200002"]
        assert (child.age_value, child.age_unit, child.residence_category) == (4, "01", "2")
        bad = s.scalars(select(QuarantinedRow)).one()
        assert bad.row_number == 4
        assert "id_number.sex_mismatch" in {e["code"] for e in bad.errors}


def test_xlsx_with_typed_cells(db: Engine, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    card = samples.valid_card()
    header = list(card)
    sheet.append(header)
    typed = {
        **card,
        "birth_date": datetime(1980, 5, 17),
        "diagnosis_time": datetime(2025, 6, 25, 10, 0),
        "onset_date": datetime(2025, 6, 20),
        "fill_date": datetime(2025, 6, 25),
        "occupation": 18,
        "sex": 1,
    }
    sheet.append([typed[k] for k in header])
    sheet.append([None] * len(header))  # blank rows are skipped
    sheet.append([*[typed[k] for k in header[:-1]], "NOPE"])  # bad org code
    path = tmp_path / "cards.xlsx"
    book.save(path)
    result = import_file(db, path, now=NOW)
    assert (result.file_format, result.rows_stored, result.rows_quarantined) == ("xlsx", 1, 1)
    with Session(db) as s:
        assert s.scalars(select(QuarantinedRow.row_number)).one() == 4


def test_json_lines_with_a_broken_line(db: Engine, tmp_path: Path) -> None:
    rows = distinct_cards(3)
    rows[1]["age_value"] = None
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    lines.insert(2, "{not json")
    path = tmp_path / "cards.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = import_file(db, path, now=NOW)
    assert (result.file_format, result.rows_stored, result.rows_quarantined) == ("jsonl", 3, 1)
    with Session(db) as s:
        row = s.scalars(select(QuarantinedRow)).one()
        assert (row.row_number, row.errors[0]["code"]) == (3, "row.invalid_json")


def test_a_csv_row_with_the_wrong_number_of_fields_is_quarantined(
    db: Engine, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "cards.csv", distinct_cards(3))
    text = path.read_text(encoding="utf-8").splitlines()
    text[2] = text[2] + ",extra,cells"
    text.append(text[3].rsplit(",", 5)[0])  # a last line cut short
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    result = import_file(db, path, now=NOW)
    assert (result.rows_stored, result.rows_quarantined) == (2, 2)
    with Session(db) as s:
        rows = s.scalars(select(QuarantinedRow).order_by(QuarantinedRow.row_number)).all()
        assert [r.row_number for r in rows] == [3, 5]
        assert {r.errors[0]["code"] for r in rows} == {"row.field_count"}


def _xlsx_bytes() -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    card = samples.valid_card()
    sheet.append(list(card))
    for _ in range(50):
        sheet.append(list(card.values()))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _header_only() -> bytes:
    return (",".join(samples.valid_card()) + "\n").encode()


def _missing_columns() -> bytes:
    card = samples.valid_card()
    del card["onset_date"], card["org_code"]
    return (",".join(card) + "\n" + ",".join(str(v) for v in card.values()) + "\n").encode()


MALFORMED: list[tuple[str, bytes, type[ImportFileError]]] = [
    ("empty.csv", b"", EmptyFileError),
    ("blank.csv", b"\n\r\n   \n", EmptyFileError),
    ("bom-only.csv", b"\xef\xbb\xbf", EmptyFileError),
    ("header.csv", _header_only(), NoDataRowsError),
    ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, UnsupportedFormatError),
    ("scan.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + b"x" * 100, UnsupportedFormatError),
    ("binary.csv", bytes(range(256)) * 4, UnsupportedFormatError),
    ("truncated.xlsx", _xlsx_bytes()[:900], CorruptFileError),
    ("latin.csv", _header_only() + b"\xff\xfe\xff\x80,\x81\xff\n", UndecodableFileError),
    ("columns.csv", _missing_columns(), MissingColumnsError),
    ("notjson.jsonl", b"[1, 2, 3]\n", UnsupportedFormatError),
]


@pytest.mark.parametrize(("name", "content", "error"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_unreadable_files_get_one_clear_error_and_change_nothing(
    db: Engine, tmp_path: Path, name: str, content: bytes, error: type[ImportFileError]
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    before = counts(db)
    with pytest.raises(error) as caught:
        import_file(db, path, now=NOW)
    assert caught.value.message_zh and caught.value.message_en
    assert counts(db) == before
    with Session(db) as s:
        assert s.scalar(select(func.count()).select_from(ImportBatch)) == 0


def test_missing_columns_are_named(db: Engine, tmp_path: Path) -> None:
    path = tmp_path / "columns.csv"
    path.write_bytes(_missing_columns())
    with pytest.raises(MissingColumnsError) as caught:
        import_file(db, path, now=NOW)
    assert "发病日期" in caught.value.message_zh and "org_code" in caught.value.message_en


def test_damage_found_midway_undoes_the_import(
    db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_csv(tmp_path / "cards.csv", distinct_cards(40))
    real = importing._check
    calls = {"n": 0}

    def failing(*args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise CorruptFileError("文件损坏", "damaged")
        return real(*args)

    monkeypatch.setattr(importing, "_check", failing)
    before = counts(db)
    with pytest.raises(CorruptFileError):
        import_file(db, path, now=NOW, chunk_rows=10)
    assert counts(db) == before
    with Session(db) as s:
        batch = s.scalars(select(ImportBatch)).one()
        assert batch.status == "failed" and "damaged" in (batch.error or "")


def test_progress_is_reported_per_chunk(db: Engine, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    path = write_csv(tmp_path / "cards.csv", distinct_cards(25))
    import_file(
        db,
        path,
        now=NOW,
        chunk_rows=10,
        progress=lambda p: seen.append((p.rows_read, p.position)),
    )
    assert [r for r, _ in seen] == [10, 20, 25]
    assert seen[-1][1] == path.stat().st_size


def test_error_report_as_csv_and_xlsx(db: Engine, tmp_path: Path, session: Session) -> None:
    rows = distinct_cards(5)
    rows[1]["sex"] = "X"
    rows[3]["fill_date"] = "2025-07-09"
    result = import_file(db, write_csv(tmp_path / "cards.csv", rows), now=NOW)
    report = b"".join(error_report(session, result.batch_id, "csv")).decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(report)))
    assert table[0][:3] == ["行号 row", "错误 errors", "errors (English)"]
    assert [r[0] for r in table[1:]] == ["3", "5"]
    assert "性别" in table[1][1] and "fill date is in the future" in table[2][2]
    assert "patient_name" in table[0]
    book = openpyxl.load_workbook(
        io.BytesIO(b"".join(error_report(session, result.batch_id, "xlsx")))
    )
    sheet = book.worksheets[0]
    assert sheet.max_row == 3 and sheet.cell(2, 1).value == 3
    # The corrected report imports again: the extra columns are ignored.
    fixed = tmp_path / "fixed.csv"
    table[1][table[0].index("sex")] = "1"
    table[2][table[0].index("fill_date")] = "2025-06-25"
    with fixed.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(table)
    again = import_file(db, fixed, now=NOW)
    assert (again.rows_stored, again.rows_quarantined) == (2, 0)


def test_command_line_import(db: Engine, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from yifang.cli import app

    rows = distinct_cards(4)
    rows[2]["sex"] = "X"
    path = write_csv(tmp_path / "cards.csv", rows)
    report = tmp_path / "errors.csv"
    runner = CliRunner()
    result = runner.invoke(app, ["import", str(path), "--errors", str(report)])
    assert result.exit_code == 0, result.output
    assert "3 入库 stored" in result.output.replace(",", "")
    assert report.read_text(encoding="utf-8-sig").splitlines()[1].startswith("4,")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    refused = runner.invoke(app, ["import", str(empty)])
    assert refused.exit_code == 2 and "the file is empty" in refused.output


def _index_names(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return importing._index_names(conn)


def test_a_bulk_load_builds_the_indexes_at_the_end(
    db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = {str(ix.name) for ix in importing.deferred_indexes()}
    assert wanted <= _index_names(db)
    monkeypatch.setattr(importing, "BULK_MIN_ROWS", 10)
    seen: list[tuple[str, set[str]]] = []

    def progress(p: importing.ImportProgress) -> None:
        seen.append((p.phase, _index_names(db)))

    path = write_csv(tmp_path / "cards.csv", distinct_cards(40))
    result = import_file(db, path, now=NOW, chunk_rows=10, progress=progress)
    assert result.rows_stored == 40
    # while rows went in the non-unique indexes were gone; at the end all are back
    assert not wanted & seen[0][1]
    assert seen[-1][0] == "indexes"
    assert wanted <= _index_names(db)


def test_indexes_a_killed_bulk_load_dropped_come_back(db: Engine, tmp_path: Path) -> None:
    with db.begin() as conn:
        for index in importing.deferred_indexes():
            index.drop(conn)
    path = write_csv(tmp_path / "cards.csv", distinct_cards(5))
    import_file(db, path, now=NOW)
    assert {str(ix.name) for ix in importing.deferred_indexes()} <= _index_names(db)


def test_a_failed_bulk_load_leaves_no_rows_and_every_index(
    db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importing, "BULK_MIN_ROWS", 10)
    real = importing._check
    calls = {"n": 0}

    def failing(*args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise CorruptFileError("文件损坏", "damaged")
        return real(*args)

    monkeypatch.setattr(importing, "_check", failing)
    before = counts(db)
    path = write_csv(tmp_path / "cards.csv", distinct_cards(40))
    with pytest.raises(CorruptFileError):
        import_file(db, path, now=NOW, chunk_rows=10)
    assert counts(db) == before
    assert {str(ix.name) for ix in importing.deferred_indexes()} <= _index_names(db)
