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
    load_clinical,
    load_diseases,
    load_streams,
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
    streams: int = 0  # stream series (one stream at one place)
    encounters: int = 0


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
    streams: bool = False,
) -> SimulationResult:
    """Run the simulation against the given catalog facts (nothing is written).

    With ``streams`` the result also holds the other data streams and the hospital
    encounters (:func:`add_streams`).
    """
    if scale <= 0:
        raise ValueError("scale must be > 0")
    cfg = load_city(city)
    model = assemble_city(cfg, facts)
    s, e = period(years, end_date, start)
    result = simulate_city(model, load_diseases(diseases), facts, s, e, seed, errors_share, scale)
    if streams:
        add_streams(result)
    return result


def add_streams(
    result: SimulationResult,
    clinical: Path | str | None = None,
    streams_config: Path | str | None = None,
) -> SimulationResult:
    """Add the data streams and hospital encounters of ``result``'s city (same seed, same data)."""
    from yifang.simulate.encounters import build_encounters
    from yifang.simulate.streams import build_streams

    clin = load_clinical(clinical)
    cfg = load_streams(streams_config)
    stream_set, illness = build_streams(result, clin, cfg)
    result.streams = stream_set
    result.encounters = build_encounters(result, clin, cfg, illness)
    return result


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
    streams: bool = False,
) -> SimulationReport:
    """Simulate the city and write cards and ground truth into ``session``'s database.

    With ``streams`` also the places, stream series, hospital encounters and their lab
    results (tables ``sim_place``, ``sim_stream``, ``sim_encounter``, ``sim_encounter_lab``).
    """
    from yifang.simulate.output import clear_simulation, write_database, write_streams_database

    t0 = time.perf_counter()
    cfg = load_city(city)
    facts = catalog_from_session(session, cfg.reference_year)
    result = simulate(
        facts, years, seed, end_date, start, city, None, errors_share, scale, streams=streams
    )
    if replace:
        clear_simulation(session)
    params = {
        "years": years,
        "scale": scale,
        "errors_share": cfg.errors.share if errors_share is None else errors_share,
        "city": cfg.code,
        "streams": streams,
    }
    digest = content_digest(result.cards)
    run_id = write_database(session, result, params, progress, digest)
    n_series = n_enc = 0
    if result.streams is not None and result.encounters is not None:
        n_series, n_enc = write_streams_database(
            session, run_id, result, result.streams, result.encounters
        )
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
        streams=n_series,
        encounters=n_enc,
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
    formats: tuple[str, ...] = ("csv", "jsonl", "fhir", "hl7"),
    facts: CatalogFacts | None = None,
    streams: bool = False,
) -> tuple[SimulationReport, SimulationResult]:
    """Simulate and write files in the importer's formats into ``out_dir``.

    Cards go out in ``formats`` ∩ {csv, jsonl, xlsx}. With ``streams`` also
    ``streams.csv``, ``places.csv`` and the hospital encounters in ``formats`` ∩ {csv,
    jsonl, fhir, hl7} with ``encounter_truth.csv`` (see docs/simulate.md).
    """
    from yifang.simulate.encounter_files import FORMATS, write_encounter_files
    from yifang.simulate.output import write_files, write_stream_files

    t0 = time.perf_counter()
    cfg = load_city(city)
    if facts is None:
        facts = catalog_from_files(cfg.reference_year)
    result = simulate(
        facts, years, seed, end_date, start, city, None, errors_share, scale, streams=streams
    )
    files = write_files(result, out_dir, formats)
    if result.streams is not None and result.encounters is not None:
        files += write_stream_files(result, result.streams, out_dir)
        enc_formats = tuple(f for f in formats if f in FORMATS)
        files += write_encounter_files(result, result.encounters, out_dir, enc_formats)
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
        streams=len(result.streams.series) if result.streams else 0,
        encounters=len(result.encounters) if result.encounters else 0,
    )
    return report, result
