"""A route's answer is sent only after its session has committed.

If the commit ran after the answer (FastAPI's default scope for dependencies with
``yield``), a browser that reloads on success could read the state from before the change,
and a commit that then failed would leave the user told of a success that never happened.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.web.conftest import log_in


@pytest.fixture()
def quiet_client(engine, demo):
    """A logged-in client that gets server errors as 500 answers instead of exceptions."""
    from yifang.web.app import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as client:
        yield log_in(client, "zn_cdc_epi", demo["zn_cdc_epi"])


def test_a_failed_commit_is_an_error_answer_not_a_success(quiet_client, monkeypatch):
    def refuse(self: Session) -> None:
        raise RuntimeError("commit refused by the test")

    monkeypatch.setattr(Session, "commit", refuse)
    r = quiet_client.get("/api/events")
    assert r.status_code == 500
