"""Short-lived, per-process caches of what many users read alike: the dashboard's figures
of a jurisdiction and the catalog's reference data the pages embed (diseases, regions,
organisations).

Why: the dashboard aggregates months of cards (a 26-week curve over 1,000,000 cards reads
~170,000 rows) and every page embeds the same reference lists; recomputing them for each
of 50 users who open the same page within a minute costs far more than the answer is
worth. Figures are therefore at most ``dashboard_cache_seconds`` old (the dashboard shows
when they were computed) and reference lists at most ``reference_cache_seconds``.

Entries are keyed by the database (its URL) as well, so two databases in one process (the
tests) never share figures. When an entry has expired, the first caller recomputes it
while the others keep getting the previous value (no stampede, no latency spike); a cold
entry is computed once while concurrent callers wait for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.orm import Session

T = TypeVar("T")


class CacheSettings(BaseSettings):
    """Cache lifetimes, read from ``YIFANG_*`` variables (0 turns a cache off)."""

    model_config = SettingsConfigDict(env_prefix="YIFANG_", env_file=".env", extra="ignore")

    dashboard_cache_seconds: float = Field(
        default=60.0, ge=0, description="How old the dashboard's figures may be, seconds."
    )
    reference_cache_seconds: float = Field(
        default=300.0, ge=0, description="How old the pages' reference lists may be, seconds."
    )


@lru_cache(maxsize=1)
def get_cache_settings() -> CacheSettings:
    """The process-wide cache settings, read once."""
    return CacheSettings()


@dataclass
class _Entry:
    value: Any
    computed_at: float
    lock: threading.Lock
    ready: bool = False


class TTLCache:
    """A thread-safe map of computed values that expire after a number of seconds."""

    def __init__(self, max_entries: int = 1024) -> None:
        self._entries: dict[Hashable, _Entry] = {}
        self._guard = threading.Lock()
        self.max_entries = max_entries

    def get(self, key: Hashable, ttl: float, compute: Callable[[], T]) -> tuple[T, float]:
        """The value under ``key`` and when it was computed (``time.time()``), computing it
        when missing or older than ``ttl`` seconds."""
        if ttl <= 0:
            return compute(), time.time()
        with self._guard:
            entry = self._entries.get(key)
            if entry is None:
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
                entry = _Entry(None, 0.0, threading.Lock())
                self._entries[key] = entry
        fresh = entry.ready and time.time() - entry.computed_at < ttl
        if fresh:
            return entry.value, entry.computed_at
        if entry.ready and not entry.lock.acquire(blocking=False):
            return entry.value, entry.computed_at  # another caller is refreshing it
        if not entry.ready:
            entry.lock.acquire()  # wait for the first computation, or do it
            if entry.ready:
                entry.lock.release()
                return entry.value, entry.computed_at
        try:
            value = compute()
            entry.value, entry.computed_at, entry.ready = value, time.time(), True
            return value, entry.computed_at
        finally:
            entry.lock.release()

    def clear(self) -> None:
        """Forget every entry."""
        with self._guard:
            self._entries.clear()


dashboard_cache = TTLCache()
reference_cache = TTLCache()


def database_key(session: Session) -> str:
    """The identity of the session's database, part of every cache key."""
    return str(session.get_bind().engine.url)


def reference(session: Session, name: str, compute: Callable[[], T]) -> T:
    """Reference data ``name`` of the session's database, cached."""
    ttl = get_cache_settings().reference_cache_seconds
    value, _ = reference_cache.get((database_key(session), name), ttl, compute)
    return value


def clear_all() -> None:
    """Empty every cache (tests; after bulk changes of the catalog)."""
    dashboard_cache.clear()
    reference_cache.clear()
