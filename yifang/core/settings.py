"""Runtime settings, read from ``YIFANG_*`` environment variables (and a ``.env`` file).

The default database is an embedded SQLite file in the working directory, so that the demo
needs no server; ``YIFANG_DATABASE_URL`` points the platform at PostgreSQL instead.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob the platform reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="YIFANG_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///yifang.db",
        description="SQLAlchemy URL; sqlite:///path for the embedded store, "
        "postgresql+psycopg://user:pass@host/db for PostgreSQL.",
    )
    data_dir: Path = Field(default=Path("."), description="Where uploads and reports are kept.")
    timezone: str = Field(default="Asia/Shanghai", description="Local time zone of the city.")
    city_code: str = Field(default="640500", description="GB/T 2260 code of the default city.")
    language: str = Field(default="zh", description="Default UI language: zh or en.")
    echo_sql: bool = Field(default=False, description="Log every SQL statement (debugging).")
    db_pool_size: int = Field(
        default=20,
        ge=1,
        le=500,
        description="Database connections each server process keeps open for reuse. Above "
        "it (up to db_max_overflow more) a connection is opened for one request and closed "
        "after; on PostgreSQL that costs a new server process each time, so this should "
        "cover the requests one process runs at once.",
    )
    db_max_overflow: int = Field(
        default=10, ge=0, le=500, description="Connections beyond the pool at busy times."
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
