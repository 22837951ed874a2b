"""The simulator's entry points: build the city into a database, or into files.

``build_city(session, years=3, seed=20240601)`` is what the demo calls: it reads the
catalog from the database, simulates ``years`` years up to ``end_date`` (default:
yesterday), removes any earlier simulated cards and writes the new ones with their ground
truth. The caller commits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from yifang.simulate.city import assemble_city
from yifang.simulate.config import (
    CatalogFacts,
    catalog_from_files,
    catalog_from_session,
    load_city,
    load_diseases,
)
from yifang.simulate.engine import SimulationResult, content_digest, simulate_city

DEFAULT_SEED = 20240601


@dataclass(frozen=True)
class SimulationReport:
    """What a run made: counts, period, the database run id (if written) and timing."""

    run_id: int | None
    start: date
    end: date
    seed: int
    cards: int
    outbreaks: int
    errors: int
    digest: str
    seconds: float
    files: tuple[Path, ...] = ()


def period(years: float, end_date: date | None, start: date | None = None) -> tuple[date, date]:
    """(start, end) covering ``years`` years up to ``end_date`` (default yesterday)."""
    end = end_date or (date.today() - timedelta(days=1))
    if start is None:
        start = end - timedelta(days=round(years * 365.25) - 1)
    if start > end:
        raise ValueError("start must not be after the end date")
    return start, end


def simulate(
    facts: CatalogFacts,
    years: float = 3.0,
    seed: int = DEFAULT_SEED,
    end_date: date | None = None,
    start: date | None = None,
    city: Path | str | None = None,
    diseases: Path | str | None = None,
    errors_share: float | None = None,
    scale: float = 1.0,
) -> SimulationResult:
    """Run the simulation against the given catalog facts (nothing is written)."""
    if scale <= 0:
        raise ValueError("scale must be > 0")
    cfg = load_city(city)
    model = assemble_city(cfg, facts)
    s, e = period(years, end_date, start)
    return simulate_city(model, load_diseases(diseases), facts, s, e, seed, errors_share, scale)


def build_city(
    session: Session,
    years: float = 3.0,
    seed: int = DEFAULT_SEED,
    end_date: date | None = None,
    *,
    start: date | None = None,
    city: Path | str | None = None,
    errors_share: float | None = None,
    scale: float = 1.0,
    replace: bool = True,
    progress: Callable[[int], None] | None = None,
) -> SimulationReport:
    """Simulate the city and write cards and ground truth into ``session``'s database."""
    from yifang.simulate.output import clear_simulation, write_database

    t0 = time.perf_counter()
    cfg = load_city(city)
    facts = catalog_from_session(session, cfg.reference_year)
    result = simulate(facts, years, seed, end_date, start, city, None, errors_share, scale)
    if replace:
        clear_simulation(session)
    params = {
        "years": years,
        "scale": scale,
        "errors_share": cfg.errors.share if errors_share is None else errors_share,
        "city": cfg.code,
    }
    digest = content_digest(result.cards)
    run_id = write_database(session, result, params, progress, digest)
    return SimulationReport(
        run_id=run_id,
        start=result.start,
        end=result.end,
        seed=seed,
        cards=len(result.cards),
        outbreaks=len(result.outbreaks),
        errors=len(result.errors),
        digest=digest,
        seconds=time.perf_counter() - t0,
    )


def build_files(
    out_dir: Path,
    years: float = 3.0,
    seed: int = DEFAULT_SEED,
    end_date: date | None = None,
    *,
    start: date | None = None,
    city: Path | str | None = None,
    errors_share: float | None = None,
    scale: float = 1.0,
    formats: tuple[str, ...] = ("csv", "jsonl"),
    facts: CatalogFacts | None = None,
) -> tuple[SimulationReport, SimulationResult]:
    """Simulate and write files in the importer's formats into ``out_dir``."""
    from yifang.simulate.output import write_files

    t0 = time.perf_counter()
    cfg = load_city(city)
    if facts is None:
        facts = catalog_from_files(cfg.reference_year)
    result = simulate(facts, years, seed, end_date, start, city, None, errors_share, scale)
    files = write_files(result, out_dir, formats)
    report = SimulationReport(
        run_id=None,
        start=result.start,
        end=result.end,
        seed=seed,
        cards=len(result.cards),
        outbreaks=len(result.outbreaks),
        errors=len(result.errors),
        digest=content_digest(result.cards),
        seconds=time.perf_counter() - t0,
        files=tuple(files),
    )
    return report, result
