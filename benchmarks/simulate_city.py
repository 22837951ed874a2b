"""Ten years of the default city into SQLite, cards and all streams: goal < 30 s.

Builds the city twice in the same run, without and with the other data streams (school
absence, pharmacy sales, ILI%, multiplex lab, livestock, hospital encounters), and prints
wall and CPU time of each (the machine is shared: CPU time is the steadier figure), rows
per second, and the catalog load as a fixed reference amount of database work.
Run: .venv/bin/python benchmarks/simulate_city.py [years]
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import date

from sqlalchemy.orm import Session

import yifang.models
import yifang.simulate.models  # noqa: F401
from yifang.catalog.service import load_all
from yifang.core.db import Base, make_engine
from yifang.simulate.service import SimulationReport, build_city


def _build(years: float, streams: bool) -> tuple[float, float, float, SimulationReport]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            t0 = time.perf_counter()
            load_all(session)
            session.commit()
            t_catalog = time.perf_counter() - t0
            w0, c0 = time.perf_counter(), time.process_time()
            report = build_city(
                session, years=years, seed=1, end_date=date(2025, 12, 31), streams=streams
            )
            session.commit()
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        engine.dispose()
    return t_catalog, wall, cpu, report


def main(years: float = 10.0) -> None:
    _build(0.05, True)  # warm up: imports and numba compilation outside the timing
    t_catalog, w_cards, c_cards, r_cards = _build(years, streams=False)
    _, w_all, c_all, r_all = _build(years, streams=True)
    print(f"catalog load (reference):        {t_catalog:6.2f} s")
    print(f"{years:g} years, cards only:        wall {w_cards:6.2f} s  cpu {c_cards:6.2f} s")
    print(
        f"{years:g} years, all streams:       wall {w_all:6.2f} s  cpu {c_all:6.2f} s"
        "  (goal < 30 s)"
    )
    print(
        f"cards {r_all.cards}, outbreaks {r_all.outbreaks}, erroneous cards {r_all.errors}, "
        f"stream series {r_all.streams}, encounters {r_all.encounters}"
    )
    print(f"cards per second (cards only):   {r_cards.cards / w_cards:8.0f}")
    print(f"encounters per second of extra:  {r_all.encounters / max(w_all - w_cards, 1e-9):8.0f}")
    print(f"ratio all streams / catalog:     {w_all / t_catalog:6.1f}x")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0)
