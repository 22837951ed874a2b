"""`yifang cards …`: listing, review, return, overdue, duplicates and export, scoped."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.cases.test_workflow_factories import (
    CITY,
    ORG_SPT,
    TOWN_SPT,
    card_data,
    catalog,  # noqa: F401 - fixture
    make_card,
)
from yifang.cases import service
from yifang.cases.commands import app
from yifang.cases.models import Card
from yifang.core.db import utcnow

pytestmark = pytest.mark.usefixtures("catalog", "wide_console")
runner = CliRunner()


@pytest.fixture()
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables wide enough that no cell is cut, whatever terminal runs the tests."""
    from rich.console import Console

    from yifang.cases import commands

    monkeypatch.setattr(commands, "console", Console(width=240))


def _run(*args: str) -> str:
    result = runner.invoke(app, [*args, "--user", "tester"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_list_is_masked_and_scoped(session: Session) -> None:
    zn = make_card(session)
    spt = make_card(session, address=TOWN_SPT, org=ORG_SPT, seq=103, name="王五")
    out = _run("list")
    assert "张*" in out and "王*" in out and "张三" not in out
    out = _run("list", "--scope-region", "640521")
    assert zn.card_number in out and spt.card_number not in out
    out = _run("list", "--reveal", "--disease", "T_FLU", "--region", "640502")
    assert "王五" in out and zn.card_number not in out


def test_show_review_and_return(session: Session) -> None:
    a = make_card(session)
    b = make_card(session, seq=103, name="李四")
    out = _run("show", str(a.id))
    assert a.card_number in out and "张*" in out
    assert "reviewed" in _run("review", str(a.id))
    assert "returned" in _run("return", str(b.id), "--reason", "电话缺失")
    session.expire_all()
    assert session.get(Card, a.id).status == service.REVIEWED
    assert session.get(Card, b.id).returned_reason == "电话缺失"
    refused = runner.invoke(app, ["review", str(a.id), "--version", "1"])
    assert refused.exit_code == 1 and "stale_version" in refused.stderr
    hidden = runner.invoke(app, ["review", str(b.id), "--scope-region", "640502"])
    assert hidden.exit_code == 1


def test_overdue_and_duplicates(session: Session) -> None:
    late = service.create_card(session, card_data(), scope=CITY, now=utcnow() - timedelta(days=2))
    session.commit()
    make_card(session)
    assert late.card_number in _run("overdue")
    out = _run("duplicates")
    assert "id_number" in out
    assert "merge" in _run("resolve", "1", "merge")


def test_export_csv_and_xlsx_respect_scope(session: Session, tmp_path: Path) -> None:
    import openpyxl

    zn = make_card(session)
    make_card(session, address=TOWN_SPT, org=ORG_SPT, seq=103, name="王五")
    out = tmp_path / "cards.csv"
    _run("export", str(out), "--scope-region", "640521")
    with out.open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["id"]) for r in rows] == [zn.id]
    assert rows[0]["patient_name"] == "张*" and rows[0]["address_detail"] == ""
    xlsx = tmp_path / "cards.xlsx"
    _run("export", str(xlsx), "--format", "xlsx")
    sheet = openpyxl.load_workbook(xlsx, read_only=True)["cards"]
    assert len(list(sheet.iter_rows(values_only=True))) == 3
    bad = runner.invoke(app, ["export", str(out), "--format", "pdf"])
    assert bad.exit_code != 0
