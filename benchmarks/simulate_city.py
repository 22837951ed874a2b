"""Ten years of the default city (cards, outbreaks, ground truth) into SQLite: goal < 30 s.

Prints the time of each stage and the cards per second; the reference in the same run is
the time to load the catalog (a fixed, comparable amount of database work).
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
from yifang.simulate.service import build_city


def main(years: float = 10.0) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            t0 = time.perf_counter()
            load_all(session)
            session.commit()
            t_catalog = time.perf_counter() - t0
            t1 = time.perf_counter()
            report = build_city(session, years=years, seed=1, end_date=date(2025, 12, 31))
            session.commit()
            t_total = time.perf_counter() - t1
        engine.dispose()
    print(f"catalog load (reference):   {t_catalog:6.2f} s")
    print(f"{years:g} years of the city:     {t_total:6.2f} s  (goal < 30 s)")
    print(f"cards {report.cards}, outbreaks {report.outbreaks}, erroneous cards {report.errors}")
    print(f"cards per second:           {report.cards / t_total:8.0f}")
    print(f"ratio to catalog load:      {t_total / t_catalog:6.1f}x")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0)
