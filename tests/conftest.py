"""Shared fixtures: a fresh database per test on SQLite or PostgreSQL.

``YIFANG_TEST_DB`` picks the store (``sqlite``, the default, or ``postgres``, which needs
``YIFANG_TEST_POSTGRES_URL`` pointing at a server where we may create databases; the test
command starts one). A template database with the schema and the catalog is built once per
worker and copied for each test (a file copy on SQLite, ``CREATE DATABASE … TEMPLATE`` on
PostgreSQL), so every test starts from the same known state and tests never see each
other's rows.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from yifang.core import db as core_db
from yifang.core.audit import install_append_only_triggers
from yifang.models import Base

BACKEND = os.environ.get("YIFANG_TEST_DB", "sqlite")
PG_URL = os.environ.get("YIFANG_TEST_POSTGRES_URL", "")


def _populate(engine: Engine) -> None:
    """Schema plus the reference data every test may rely on."""
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        install_append_only_triggers(conn)
    try:
        from yifang.catalog.service import load_all
    except ImportError:  # the catalog loader is not there yet
        return
    with Session(engine) as session:
        load_all(session)
        session.commit()


def _admin_url(dbname: str) -> str:
    base, _, _ = PG_URL.rpartition("/")
    return f"{base}/{dbname}"


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> str:
    if BACKEND == "postgres":
        if not PG_URL:
            pytest.skip("YIFANG_TEST_POSTGRES_URL is not set")
        name = f"yifang_tpl_{worker_id}_{uuid.uuid4().hex[:6]}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine = core_db.make_engine(_admin_url(name))
        _populate(engine)
        engine.dispose()
        admin.dispose()
        return name
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    engine = core_db.make_engine(f"sqlite:///{path}")
    _populate(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return str(path)


@pytest.fixture()
def db_url(_template: str, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh database holding the schema and the catalog."""
    if BACKEND == "postgres":
        name = f"yifang_t_{uuid.uuid4().hex[:12]}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{_template}"'))
        yield _admin_url(name)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        return
    path = tmp_path / "test.db"
    shutil.copyfile(_template, path)
    yield f"sqlite:///{path}"


@pytest.fixture()
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the fresh database, also installed as the process-wide engine."""
    eng = core_db.make_engine(db_url)
    core_db.set_engine(eng)
    yield eng
    eng.dispose()


@pytest.fixture()
def session(engine: Engine) -> Iterator[Session]:
    """A session on the fresh database (commit freely: the database is thrown away)."""
    with Session(engine, expire_on_commit=False) as s:
        yield s


@pytest.fixture()
def client(engine: Engine):  # type: ignore[no-untyped-def]
    """A TestClient on the whole application, bound to the fresh database."""
    from fastapi.testclient import TestClient

    from yifang.web.app import create_app

    with TestClient(create_app()) as c:
        yield c
