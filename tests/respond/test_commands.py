"""``yifang respond …`` on a fresh database."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.respond.conftest import NOW, make_signal
from yifang.respond.commands import app

runner = CliRunner()


def test_tick_opens_and_escalates_then_lists(engine, tmp_path):
    with Session(engine) as s:
        make_signal(s, "CHOLERA", "640521100")
        s.commit()
    r = runner.invoke(app, ["tick", "--at", NOW.isoformat()])
    assert r.exit_code == 0, r.output
    assert "verifications opened" in r.output
    later = (NOW + timedelta(hours=3)).isoformat()
    r = runner.invoke(app, ["escalate", "--at", later])
    assert r.exit_code == 0 and "1 verification(s) escalated" in r.output
    r = runner.invoke(app, ["verifications", "--overdue"])
    assert r.exit_code == 0 and "CHOLERA" in r.output
    assert runner.invoke(app, ["plans"]).exit_code == 0
    r = runner.invoke(app, ["tick", "--at", "yesterday"])
    assert r.exit_code == 2
    r = runner.invoke(app, ["address", "organisation", "640521CD01", "--email", "bad"])
    assert r.exit_code == 2
    r = runner.invoke(app, ["report", "999", "--out", str(tmp_path / "x.docx")])
    assert r.exit_code == 1
