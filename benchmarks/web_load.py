"""How fast the card list, the signal list and the dashboard answer 50 concurrent users.

Fills a database with N synthetic cards (default 1,000,000; the bulk filler of
``benchmarks/list_cards.py``, with diagnosis times over the three years up to now so the
dashboard's week, curve and 5-year baseline have data) and ``--signals`` synthetic signals
(each with a 60-period chart, as the detection engine writes them), then starts the whole
app under uvicorn on 127.0.0.1 at a free port (``--workers`` processes) and drives
``--users`` virtual users from httpx on loopback.

Each virtual user logs in as one of the demo roles (city CDC, health commission, two county
reviewers, a county epidemiologist, a hospital), then visits its pages in turn as a
browser does: the page's HTML, then the data request its script makes —

* card list: ``/cards`` then ``GET /api/cards?limit=50`` (every 3rd visit with a disease
  filter, every 3rd with a county filter, every 4th also follows ``next_cursor``);
* signal list: ``/signals`` then ``GET /api/signals?status=open`` (every 3rd without status);
* dashboard: ``/`` then ``GET /api/web/dashboard``;

waiting a think time between visits (uniform on 0.5–1.5 × ``--think`` seconds; ``--think
0`` saturates the server). The run stops after ``--duration`` seconds or ``--requests``
requests. The figures are p50/p95/p99 latencies in milliseconds per request kind, measured by
the client from sending the request to the last byte of the answer; the goals (p95) are
card list and signal list < 100 ms and dashboard < 500 ms, checked on the data requests
(and shown for the whole visit, HTML then data).

    .venv/bin/python benchmarks/web_load.py -n 200000               # temporary SQLite file
    .venv/bin/python benchmarks/web_load.py --sqlite /tmp/load.db   # keep and reuse the file
    .venv/bin/python benchmarks/web_load.py --postgres postgresql+psycopg://postgres@127.0.0.1:55432/postgres
    .venv/bin/python benchmarks/web_load.py --url postgresql+psycopg://…/yifang_load  # keep

The load generator shares the machine with the server: on a 2-core machine its own CPU use
is part of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import signal as signals
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import Engine, create_engine, func, insert, inspect, select, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import list_cards  # noqa: E402
from yifang.cases.models import Card  # noqa: E402
from yifang.catalog.models import Disease, Region  # noqa: E402
from yifang.core import accounts  # noqa: E402
from yifang.core.db import make_engine  # noqa: E402
from yifang.detect.models import Signal  # noqa: E402

#: Goals, p95 in milliseconds, of each page's data request.
GOALS = {"card list": 100.0, "signal list": 100.0, "dashboard": 500.0}
ALL = ("card list", "signal list", "dashboard")
CITY = ("640502", "640521", "640522")
#: Demo accounts the virtual users log in as: the pages each visits and the counties its
#: card list offers in the county filter (the page offers only those in the jurisdiction;
#: a hospital gets no county filter).
ROLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "city_cdc": (ALL, CITY),
    "commission": (ALL, CITY),
    "zn_cdc_review": (ALL, ("640521",)),
    "sps_cdc_review": (ALL, ("640502",)),
    "zn_cdc_epi": (ALL, ("640521",)),
    "zn_hospital": (("card list", "dashboard"), ()),
}
#: Seconds between two requests of the reference probe (``/api/health``, no database).
PROBE_EVERY = 0.2
CHART_PERIODS = 60


# --------------------------------------------------------------------------------------------
# Data


def has_table_rows(engine: Engine, table: Any) -> bool:
    if not inspect(engine).has_table(table.__tablename__):
        return False
    with engine.connect() as conn:
        return bool(conn.execute(select(func.count()).select_from(table)).scalar())


def fill_cards(engine: Engine, rows: int) -> None:
    """Catalog and ``rows`` cards over the three years up to now (list_cards' bulk filler)."""
    t0 = time.perf_counter()
    list_cards.populate_catalog(engine)
    list_cards.END = datetime.now().replace(minute=0, second=0, microsecond=0)
    seconds = list_cards.fill(engine, rows)
    print(
        f"catalog and {rows:,} cards in {time.perf_counter() - t0:.0f} s "
        f"({rows / seconds:,.0f} cards/s, indexes built after)"
    )


def fill_signals(engine: Engine, n: int, seed: int = 2) -> None:
    """``n`` signals over three years in the city's townships and counties, each with the
    60-period chart the engine keeps; a tenth of them still open."""
    rng = np.random.default_rng(seed)
    with Session(engine) as session:
        diseases = list(session.scalars(select(Disease.code).where(Disease.active.is_(True))))
        places = list(
            session.scalars(
                select(Region.code).where(Region.level.in_((3, 4)), Region.code.like("6405%"))
            )
        )
    today = datetime.now().date()
    rows = []
    for i in range(n):
        last = today - timedelta(days=int(rng.integers(0, 3 * 365)))
        region = places[int(rng.integers(0, len(places)))]
        observed = [float(x) for x in rng.poisson(2.0, CHART_PERIODS)]
        dates = [(last - timedelta(days=CHART_PERIODS - 1 - k)).isoformat() for k in range(60)]
        rows.append(
            {
                "disease_code": diseases[int(rng.integers(0, len(diseases)))],
                "region_code": region,
                "region_level": "township" if len(region) > 6 else "county",
                "granularity": "day",
                "rule": "bench",
                "method": "ears_c3",
                "params": {},
                "status": "open" if i % 10 == 0 else "closed",
                "first_date": last - timedelta(days=2),
                "last_date": last,
                "alarm_periods": 1,
                "observed": observed[-1] + 6,
                "expected": 2.0,
                "upperbound": 5.0,
                "cases_total": int(sum(observed)),
                "series": {
                    "dates": dates,
                    "observed": observed,
                    "upperbound": [5.0] * CHART_PERIODS,
                    "expected": [2.0] * CHART_PERIODS,
                },
                "explanation_zh": "近 7 天病例数超过阈值",
                "explanation_en": "7-day count above the threshold",
                "version": 1,
            }
        )
    t0 = time.perf_counter()
    with engine.begin() as conn:
        for start in range(0, n, 5_000):
            conn.execute(insert(Signal), rows[start : start + 5_000])
        conn.exec_driver_sql("ANALYZE")
    print(f"{n:,} signals in {time.perf_counter() - t0:.0f} s")


def demo_passwords(engine: Engine) -> dict[str, str]:
    """The demo accounts with fresh passwords (created if missing)."""
    with Session(engine) as session:
        made = accounts.create_demo_users(session)
        session.commit()
    return {username: password for username, password, _ in made}


# --------------------------------------------------------------------------------------------
# Server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """uvicorn with ``workers`` processes on a free loopback port; waits until it answers."""
    port = free_port()
    env = {**os.environ, "YIFANG_DATABASE_URL": url}
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "yifang.web.app:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_server(proc)
    raise RuntimeError("uvicorn did not answer within 120 s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server's process group (the workers with their parent)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signals.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signals.SIGKILL)
            proc.wait()


# --------------------------------------------------------------------------------------------
# Load


@dataclass
class Stats:
    """Latencies in milliseconds by request kind, and errors."""

    ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    requests: int = 0


async def log_in(base: str, username: str, password: str) -> httpx.Cookies:
    """The cookies of a logged-in session of ``username``."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        csrf = (await client.get("/api/auth/csrf")).json()["csrf_token"]
        r = await client.post(
            "/api/auth/login",
            json={"username": username, "password": password},
            headers={"X-CSRF-Token": csrf},
        )
        r.raise_for_status()
        return client.cookies


class User:
    """One virtual user: a browser's cookie jar and its own connection."""

    def __init__(self, base: str, role: str, cookies: httpx.Cookies, seed: int) -> None:
        self.role = role
        self.pages, self.counties = ROLES[role]
        self.client = httpx.AsyncClient(base_url=base, cookies=cookies, timeout=60)
        self.rng = random.Random(seed)
        self.visits = 0

    async def get(self, kind: str, url: str, stats: Stats) -> httpx.Response | None:
        t0 = time.perf_counter()
        try:
            r = await self.client.get(url)
        except httpx.HTTPError:
            stats.errors[kind] += 1
            return None
        stats.requests += 1
        if r.status_code != 200:
            stats.errors[kind] += 1
            return None
        stats.ms[kind].append((time.perf_counter() - t0) * 1000)
        return r

    async def visit(self, page: str, stats: Stats, diseases: list[str]) -> None:
        """Load one page as a browser does: HTML, then its data request(s)."""
        self.visits += 1
        t0 = time.perf_counter()
        if page == "card list":
            await self.get("card list (HTML)", "/cards", stats)
            query = "limit=50"
            if self.visits % 3 == 1 or (self.visits % 3 == 2 and not self.counties):
                query += f"&disease_code={self.rng.choice(diseases)}"
            elif self.visits % 3 == 2:
                query += f"&region={self.rng.choice(self.counties)}"
            r = await self.get("card list", f"/api/cards?{query}", stats)
            cursor = r.json().get("next_cursor") if r is not None else None
            if cursor and self.visits % 4 == 0:
                await self.get("card list", f"/api/cards?{query}&cursor={cursor}", stats)
        elif page == "signal list":
            await self.get("signal list (HTML)", "/signals", stats)
            query = "limit=50" + ("" if self.visits % 3 == 0 else "&status=open")
            await self.get("signal list", f"/api/signals?{query}", stats)
        else:
            await self.get("dashboard (HTML)", "/", stats)
            await self.get("dashboard", "/api/web/dashboard", stats)
        stats.ms[f"{page} (whole visit)"].append((time.perf_counter() - t0) * 1000)

    async def run(
        self, stats: Stats, until: float, budget: int, think: float, diseases: list[str]
    ) -> None:
        await asyncio.sleep(self.rng.uniform(0, max(think, 0.05)))  # users do not start at once
        i = self.rng.randrange(len(self.pages))
        while time.monotonic() < until and stats.requests < budget:
            await self.visit(self.pages[i % len(self.pages)], stats, diseases)
            i += 1
            if think > 0:
                await asyncio.sleep(self.rng.uniform(0.5 * think, 1.5 * think))


async def drive(
    base: str,
    passwords: dict[str, str],
    users: int,
    duration: float,
    budget: int,
    think: float,
    diseases: list[str],
) -> tuple[Stats, float]:
    """Run the virtual users; returns their figures and the seconds the run took."""
    cookies = {role: await log_in(base, role, passwords[role]) for role in ROLES}
    roles = list(ROLES)
    crowd = [
        User(base, roles[k % len(roles)], cookies[roles[k % len(roles)]], k) for k in range(users)
    ]
    warm = Stats()
    for user in crowd[: len(roles)]:  # each role's pages once, not counted
        for page in user.pages:
            await user.visit(page, warm, diseases)
    stats = Stats()
    t0 = time.monotonic()
    probe = asyncio.create_task(reference_probe(base, stats, t0 + duration))
    await asyncio.gather(*(u.run(stats, t0 + duration, budget, think, diseases) for u in crowd))
    seconds = time.monotonic() - t0
    probe.cancel()
    for user in crowd:
        await user.client.aclose()
    return stats, seconds


async def reference_probe(base: str, stats: Stats, until: float) -> None:
    """``/api/health`` (no login, no database) every :data:`PROBE_EVERY` seconds: the
    latency floor of the server and the machine under the same load, for reference."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        while time.monotonic() < until:
            t0 = time.perf_counter()
            r = await client.get("/api/health")
            if r.status_code == 200:
                stats.ms["reference: /api/health"].append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(PROBE_EVERY)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def report(stats: Stats, seconds: float, label: str, users: int, think: float) -> bool:
    """Print the table; True when every goal is met."""
    print(
        f"\n{label}: {users} users, think {think:g} s, {stats.requests:,} requests in "
        f"{seconds:.0f} s ({stats.requests / seconds:.0f}/s)"
    )
    print(f"{'request':<28}{'n':>6}{'p50':>9}{'p95':>9}{'p99':>9}{'goal p95':>10}  {'':<4}errors")
    ok = True
    order = [
        "card list",
        "card list (HTML)",
        "card list (whole visit)",
        "signal list",
        "signal list (HTML)",
        "signal list (whole visit)",
        "dashboard",
        "dashboard (HTML)",
        "dashboard (whole visit)",
        "reference: /api/health",
    ]
    for kind in order:
        values = stats.ms.get(kind, [])
        if not values:
            continue
        p95 = percentile(values, 95)
        goal = GOALS.get(kind)
        verdict = "" if goal is None else ("met" if p95 < goal else "MISS")
        ok &= verdict != "MISS"
        print(
            f"{kind:<28}{len(values):>6}{statistics.median(values):>9.1f}{p95:>9.1f}"
            f"{percentile(values, 99):>9.1f}{'' if goal is None else f'< {goal:g}':>10}  "
            f"{verdict:<4}  {stats.errors.get(kind, 0)}"
        )
    return ok


# --------------------------------------------------------------------------------------------


def bench(url: str, args: argparse.Namespace) -> None:
    engine = make_engine(url)
    if not has_table_rows(engine, Card):
        fill_cards(engine, args.rows)
    if not has_table_rows(engine, Signal):
        fill_signals(engine, args.signals)
    with Session(engine) as session:
        cards = session.scalar(select(func.count()).select_from(Card))
        n_signals = session.scalar(select(func.count()).select_from(Signal))
        diseases = list(
            session.scalars(
                select(Card.disease_code)
                .group_by(Card.disease_code)
                .order_by(func.count().desc())
                .limit(8)
            )
        )
    passwords = demo_passwords(engine)
    engine.dispose()
    label = f"{engine.dialect.name}, {cards:,} cards, {n_signals:,} signals, {args.workers} workers"
    proc, base = start_server(url, args.workers)
    own0, server0 = os.times(), resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        stats, seconds = asyncio.run(
            drive(base, passwords, args.users, args.duration, args.requests, args.think, diseases)
        )
    finally:
        own1 = os.times()
        stop_server(proc)
        server1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    report(stats, seconds, label, args.users, args.think)
    generator = own1.user + own1.system - own0.user - own0.system
    server = server1.ru_utime + server1.ru_stime - server0.ru_utime - server0.ru_stime
    print(
        f"CPU: server {server:.0f} s (with its start-up), load generator {generator:.0f} s, "
        f"in {seconds:.0f} s on {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--rows", type=int, default=1_000_000, help="cards to fill")
    parser.add_argument("--signals", type=int, default=20_000, help="signals to fill")
    parser.add_argument("--users", type=int, default=50, help="concurrent virtual users")
    parser.add_argument("--think", type=float, default=1.0, help="mean think time, seconds")
    parser.add_argument("--duration", type=float, default=60.0, help="time cap, seconds")
    parser.add_argument("--requests", type=int, default=20_000, help="request cap")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument(
        "--postgres", help="PostgreSQL server URL: a database is made there, then dropped"
    )
    parser.add_argument("--url", help="database to use and keep (filled if empty)")
    parser.add_argument("--sqlite", type=Path, help="SQLite file to use and keep")
    args = parser.parse_args()
    if args.url or args.sqlite:
        bench(args.url or f"sqlite:///{args.sqlite.resolve()}", args)
        return
    if args.postgres:
        name = f"yifang_bench_web_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        base, _, _ = args.postgres.rpartition("/")
        try:
            bench(f"{base}/{name}", args)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        return
    with tempfile.TemporaryDirectory() as tmp:
        bench(f"sqlite:///{tmp}/load.db", args)


if __name__ == "__main__":
    main()
