"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from tests.conftest import BACKEND, PG_URL, _admin_url
from yifang.core import migrate
from yifang.core.audit import record
from yifang.core.db import make_engine
from yifang.models import Base


@pytest.fixture()
def empty_engine(tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    if BACKEND == "postgres":
        name = f"yifang_m_{uuid.uuid4().hex[:10]}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        eng = make_engine(_admin_url(name))
        yield eng
        eng.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        eng = make_engine(f"sqlite:///{tmp_path}/m.db")
        yield eng
        eng.dispose()


def test_migrations_match_models(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diffs == [], "models and migrations differ: run `yifang db revision`"


def test_downgrade_to_base_and_up_again(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    migrate.downgrade(empty_engine, "base")
    migrate.upgrade(empty_engine)


def test_audit_trail_is_append_only(empty_engine: Engine) -> None:
    from sqlalchemy.orm import Session

    migrate.upgrade(empty_engine)
    with Session(empty_engine) as session:
        record(session, actor="a", action="test", entity_type="x", entity_id=1)
        session.commit()
    with pytest.raises(DBAPIError), empty_engine.begin() as conn:
        conn.execute(text("UPDATE audit_entry SET actor = 'b'"))
    with pytest.raises(DBAPIError), empty_engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_entry"))
