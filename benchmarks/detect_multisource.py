"""Multi-source triggers (多点触发) on the simulated city: signals of every source, and how
the corroboration rank orders true against false signals.

The simulated Zhongwei (three years by default) is built with all its sources: report
cards and injected outbreaks (the ground truth), hospital encounters received through the
hospital front end (syndromes counted per hospital, township and day) and the other streams
(school absenteeism, pharmacy sales, ILI%, multiplex positivity, livestock serology) stored
as stream observations. The engine then runs every rule of ``methods.yaml`` over the last
``--days`` days and ranks the signals by corroboration (``corroboration.yaml``).

Printed: signals per source and rule; for the card signals (and for all signals) the share
of true ones at each corroboration level, the probability that a true signal outranks a
false one (AUC) by the corroboration rank, by the signal's own strength (observed /
threshold) and by both, and the precision of the first k signals (k = the true ones) when
the list is sorted newest first and by rank. Timing of each step is printed too.

    .venv/bin/python benchmarks/detect_multisource.py [--years 3] [--seed 20260101]
        [--days 365] [--db sqlite:///city.db] [--reuse]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from yifang.catalog.service import load_all
from yifang.core import db as core_db
from yifang.core.settings import get_settings
from yifang.detect.engine import run_detection
from yifang.detect.models import DetectionRun, Signal
from yifang.evaluate import build_multisource_city, evaluate_corroboration
from yifang.models import Base


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--years", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=20260101)
    ap.add_argument("--end", type=date.fromisoformat, default=date(2025, 12, 31))
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--db", default="", help="database URL (default: a temporary SQLite file)")
    ap.add_argument("--reuse", action="store_true", help="keep the city already in --db")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="yifang-multisource-") as tmp:
        folder = Path(tmp)
        get_settings().data_dir = folder
        url = args.db or f"sqlite:///{folder / 'city.db'}"
        engine = core_db.make_engine(url)
        core_db.set_engine(engine)
        Base.metadata.create_all(engine)
        session = Session(engine, expire_on_commit=False)
        t0 = time.perf_counter()
        if not args.reuse:
            load_all(session)
            city = build_multisource_city(
                session,
                folder / "extracts",
                years=args.years,
                seed=args.seed,
                end_date=args.end,
                progress=lambda s: print(f"  {time.perf_counter() - t0:6.1f} s  {s}"),
            )
            session.commit()
            print(
                f"city {city.start}..{city.end}: {city.cards:,} cards, {city.outbreaks} "
                f"outbreaks, {city.encounters:,} encounters ({city.drafts:,} drafts), "
                f"{city.syndrome_cells:,} syndrome count cells, {city.stream_rows:,} stream "
                f"observations ({time.perf_counter() - t0:.0f} s)"
            )
        session.execute(delete(Signal))
        session.execute(delete(DetectionRun))
        session.commit()
        t1 = time.perf_counter()
        c0 = time.process_time()
        report = run_detection(session, as_of=args.end, days=args.days)
        session.commit()
        print(
            f"\ndetection over {args.days} days: {report.series:,} series, {report.alarms:,} "
            f"alarms, {report.signals_new:,} signals, {report.corroborated:,} corroborated; "
            f"{time.perf_counter() - t1:.1f} s wall, {time.process_time() - c0:.1f} s CPU"
        )
        by_rule = Counter((s, r) for s, r in session.execute(select(Signal.source, Signal.rule)))
        for (source, rule), n in sorted(by_rule.items()):
            print(f"  {source:9s} {rule:26s} {n:6,d} signals")
        start = args.end - timedelta(days=args.days - 1)
        for source in ("cards", None):
            score = evaluate_corroboration(session, start=start, end=args.end, source=source)
            title = "card signals" if source else "all signals"
            n_true = sum(r.true for r in score.signals)
            print(
                f"\n{title}: {len(score.signals):,} ({n_true:,} true); outbreaks in the "
                f"period {score.outbreaks}, detected {score.outbreaks_detected}, by a "
                f"corroborated signal {score.outbreaks_corroborated}"
            )
            for level, n, t in score.by_level:
                share = 100 * t / n if n else float("nan")
                print(f"  confirmed by {level:>2s} other sources: {n:6,d} signals, "
                      f"{t:5,d} true = {share:5.1f} %")  # fmt: skip
            print(
                f"  AUC (true above false): rank {score.auc_rank:.3f}, own strength "
                f"{score.auc_exceedance:.3f}, rank then strength {score.auc_combined:.3f}"
            )
            print(
                f"  precision of the first {n_true} signals: newest first "
                f"{score.precision_newest:.3f}, by rank {score.precision_rank:.3f}"
            )
        session.close()
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
