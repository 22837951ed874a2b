"""The detection engine at national size, and on the demo city.

National: daily counts of ~2,900 counties × 40 diseases (``yifang.simulate.counts``, written
once to an ``.npy`` file and memory-mapped), and the engine's two county rules from
``methods.yaml``: the moving percentile (daily) and Farrington–Noufaily (7-day blocks). Two
daily runs are timed into a fresh SQLite database: the day before the last (every signal is
new) and the last day (the everyday case: most alarms extend open signals). Goal: a daily run
in under a minute, memory bounded by the batch.

Each run is a child process, so its peak resident memory is its own. Printed per run: wall
and CPU time (the machine is shared: CPU time is the steadier figure), series with a case in
the window, series fitted (the others cannot alarm), series per second of wall time, alarms,
signals, and the peak resident memory above the process's memory before the run (it
includes what the allocator keeps; the traced peak of one batch is printed too). As
references in the same run: a quarter of the counties with the same batch (memory must not
grow with the series; a file of its own), a smaller batch, the same run on a Dask
LocalCluster (same signals), and three batches of each rule fitted without the screen (what
the screen saves; the alarms are the same).

City: the demo database (``yifang demo``), the daily run and a 365-day back-fill (rolled
back, the database is left as it was).

    .venv/bin/python benchmarks/detect_engine.py
    .venv/bin/python benchmarks/detect_engine.py --counties 2900 --batch-size 5000 \
        --dask-workers 2 --city-db sqlite:////tmp/engine-demo.db
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIRST_DAY = date(2021, 1, 1)
N_DAYS = 1900  # five years and two months: the history of the longest rule and a day
RULES = ("moving-percentile", "farrington-noufaily")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def ensure_counts(path: Path, n_counties: int, n_diseases: int) -> None:
    """Write the national counts once (a child process, so its memory is not counted)."""
    if path.exists():
        return
    print(f"generating {n_counties} × {n_diseases} × {N_DAYS} daily counts into {path} …")
    code = (
        "from pathlib import Path; from yifang.simulate.counts import write_national_npy; "
        f"write_national_npy(Path({str(path)!r}), n_counties={n_counties}, "
        f"n_diseases={n_diseases}, n_days={N_DAYS}, seed=1)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def _national_config() -> Any:
    from yifang.detect.config import load_config

    config = load_config()
    return replace(config, rules=tuple(r for r in config.rules if r.name in RULES))


def _digest(session: Any) -> str:
    from sqlalchemy import select

    from yifang.detect.models import Signal

    rows = sorted(
        (s.rule, s.disease_code, s.region_code, str(s.first_date), str(s.last_date), s.observed)
        for s in session.scalars(select(Signal))
    )
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:12]


def national(args: argparse.Namespace) -> dict[str, Any]:
    """One national scenario (in a child process): two daily runs into a fresh database."""
    from sqlalchemy.orm import Session

    from yifang.catalog.models import Disease
    from yifang.core.db import make_engine
    from yifang.detect.engine import CountArraySource, run_detection
    from yifang.models import Base

    counts = np.load(args.npy, mmap_mode="r")
    n_counties = counts.shape[0]
    diseases = [f"N{d:02d}" for d in range(counts.shape[1])]
    regions = [f"{100000 + c:06d}" for c in range(n_counties)]
    source = CountArraySource.from_npy(
        args.npy, diseases=diseases, regions=regions, first_day=FIRST_DAY
    )
    del counts
    config = _national_config()
    last = FIRST_DAY + timedelta(days=N_DAYS - 1)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/national.db")
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            session.add_all(
                Disease(code=d, name_zh=f"病{d}", name_en=f"disease {d}", disease_class="C")
                for d in diseases
            )
            session.commit()
        runner = None
        client_cm = None
        if args.dask_workers:
            from yifang.detect.distributed import dask_runner, local_client

            client_cm = local_client(n_workers=args.dask_workers, processes=True)
            runner = dask_runner(client_cm.__enter__())
        _warm_up(source, config, last)  # compile the numba kernels outside the measure
        base_rss = _current_rss_mb()
        runs = []
        with Session(engine) as session:
            for day in (last - timedelta(days=1), last):
                w0, c0 = time.perf_counter(), time.process_time()
                rep = run_detection(
                    session,
                    as_of=day,
                    config=config,
                    source=source,
                    batch_size=args.batch_size,
                    runner=runner,
                )
                session.commit()
                wall, cpu = time.perf_counter() - w0, time.process_time() - c0
                runs.append(
                    {
                        "day": day.isoformat(),
                        "wall": wall,
                        "cpu": cpu,
                        "series": rep.series,
                        "evaluated": rep.evaluated,
                        "batches": rep.batches,
                        "alarms": rep.alarms,
                        "new": rep.signals_new,
                        "updated": rep.signals_updated,
                    }
                )
            digest = _digest(session)
        if client_cm is not None:
            client_cm.__exit__(None, None, None)
        engine.dispose()
    out: dict[str, Any] = {
        "counties": n_counties,
        "diseases": len(diseases),
        "batch_size": args.batch_size,
        "dask_workers": args.dask_workers,
        "runs": runs,
        "peak_mb": _rss_mb() - base_rss,
        "base_mb": base_rss,
        "digest": digest,
    }
    if args.screen_reference:
        out["screen"] = _screen_reference(source, config, last, args.batch_size)
    return out


def _warm_up(source: Any, config: Any, day: date) -> None:
    from yifang.detect.engine import BatchJob, evaluate_batch, history_days

    for rule in config.rules:
        batch = source.batches(
            rule, source.diseases, as_of=day, history_days=history_days(rule, 1), batch_size=50
        )[0]
        evaluate_batch(BatchJob(rule, batch, 1, {}))


def _screen_reference(source: Any, config: Any, day: date, batch_size: int) -> dict[str, Any]:
    """CPU time of three batches of each rule (best of three) with the screen and with every
    series fitted; the alarms are the same."""
    from yifang.detect.engine import BatchJob, evaluate_batch, history_days

    out = {}
    for rule in config.rules:
        batches = source.batches(
            rule,
            source.diseases,
            as_of=day,
            history_days=history_days(rule, 1),
            batch_size=batch_size,
        )[1:4]
        cpu = {}
        for screen in (True, False):
            jobs = [BatchJob(rule, b, 1, {}, screen=screen) for b in batches]
            best = np.inf
            for _ in range(3):
                c0 = time.process_time()
                results = [evaluate_batch(job) for job in jobs]
                best = min(best, time.process_time() - c0)
            cpu[screen] = (best, sum(r.series for r in results), [r.alarms for r in results])
        assert cpu[True][2] == cpu[False][2], "the screen changed the alarms"
        tracemalloc.start()
        evaluate_batch(BatchJob(rule, batches[0], 1, {}))
        traced = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        out[rule.name] = {
            "series": cpu[True][1],
            "screened_cpu": cpu[True][0],
            "all_cpu": cpu[False][0],
            "batch_mb": traced,
        }
    return out


def city(args: argparse.Namespace) -> dict[str, Any]:
    """The demo city's daily run and a 365-day back-fill, each rolled back."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from yifang.core.db import make_engine
    from yifang.detect.engine import run_detection
    from yifang.simulate.models import SimRun

    engine = make_engine(args.city_db)
    runs = []
    with Session(engine) as session:
        last = session.scalar(select(func.max(SimRun.end_date)))
        if last is None:
            raise SystemExit(f"no simulated city in {args.city_db}: run `yifang demo` first")
        for days in (1, 365):
            base = _current_rss_mb()
            w0, c0 = time.perf_counter(), time.process_time()
            rep = run_detection(session, as_of=last, days=days, batch_size=args.batch_size)
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            session.rollback()
            runs.append(
                {
                    "days": days,
                    "wall": wall,
                    "cpu": cpu,
                    "series": rep.series,
                    "evaluated": rep.evaluated,
                    "alarms": rep.alarms,
                    "new": rep.signals_new,
                    "updated": rep.signals_updated,
                    "peak_mb": _rss_mb() - base,
                }
            )
    engine.dispose()
    return {"as_of": str(last), "runs": runs}


def _child(mode: str, args: argparse.Namespace, **over: Any) -> dict[str, Any]:
    opts = {**vars(args), **over}
    cmd = [sys.executable, __file__, "--child", mode]
    for key in ("npy", "counties", "batch_size", "dask_workers", "city_db"):
        if opts.get(key) is not None:
            cmd += [f"--{key.replace('_', '-')}", str(opts[key])]
    if opts.get("screen_reference"):
        cmd.append("--screen-reference")
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _print_national(label: str, r: dict[str, Any]) -> None:
    for k, run in enumerate(r["runs"]):
        kind = "first day " if k == 0 else "next day  "
        print(
            f"{label:<28} {kind} wall {run['wall']:6.1f} s  cpu {run['cpu']:6.1f} s  "
            f"{run['series']:>7,} series ({run['evaluated']:>6,} fitted, {run['batches']} "
            f"batches)  {run['series'] / run['wall']:>8,.0f} series/s  "
            f"{run['alarms']:>6,} alarms → {run['new']:,} new, {run['updated']:,} extended"
        )
    print(
        f"{'':<28} peak memory +{r['peak_mb']:,.0f} MB over {r['base_mb']:,.0f} MB; "
        f"signals digest {r['digest']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=["national", "city"])
    parser.add_argument("--counties", type=int, default=2900)
    parser.add_argument("--diseases", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--dask-workers", type=int, default=0)
    parser.add_argument("--npy", type=Path)
    parser.add_argument("--city-db", default="sqlite:////tmp/engine-demo.db")
    parser.add_argument("--screen-reference", action="store_true")
    parser.add_argument("--skip-city", action="store_true")
    args = parser.parse_args()
    if args.child == "national":
        print(json.dumps(national(args)))
        return
    if args.child == "city":
        print(json.dumps(city(args)))
        return

    npy = args.npy or Path(tempfile.gettempdir()) / (
        f"yifang-national-{args.counties}x{args.diseases}x{N_DAYS}.npy"
    )
    ensure_counts(npy, args.counties, args.diseases)
    size = npy.stat().st_size / 2**30
    print(f"national counts: {npy} ({size:.2f} GiB int32, memory-mapped)")
    dask_workers = args.dask_workers
    main_run = _child("national", args, npy=npy, dask_workers=0, screen_reference=True)
    _print_national(f"{args.counties} counties, batch {args.batch_size}", main_run)
    for rule, s in main_run["screen"].items():
        print(
            f"  three batches of {rule}: {s['series']:,} series, cpu {s['screened_cpu']:.2f} s "
            f"with the screen, {s['all_cpu']:.2f} s fitting all "
            f"({s['all_cpu'] / max(s['screened_cpu'], 1e-9):.1f}×); one batch allocates at "
            f"most {s['batch_mb']:.0f} MB"
        )
    quarter_npy = npy.with_name(npy.name.replace(f"{args.counties}x", f"{args.counties // 4}x"))
    ensure_counts(quarter_npy, args.counties // 4, args.diseases)
    quarter = _child("national", args, npy=quarter_npy, dask_workers=0)
    _print_national(f"{args.counties // 4} counties, batch {args.batch_size}", quarter)
    small = _child("national", args, npy=npy, batch_size=1000, dask_workers=0)
    _print_national(f"{args.counties} counties, batch 1000", small)
    if dask_workers:
        on_dask = _child("national", args, npy=npy, dask_workers=dask_workers)
        _print_national(f"Dask LocalCluster, {dask_workers} workers", on_dask)
        same = on_dask["digest"] == main_run["digest"]
        print(f"  Dask signals identical to the local run: {same}")
    if not args.skip_city:
        r = _child("city", args)
        for run in r["runs"]:
            print(
                f"city (demo, as of {r['as_of']}), {run['days']:>3} day(s): "
                f"wall {run['wall']:6.2f} s"
                f"  cpu {run['cpu']:6.2f} s  {run['series']:,} series ({run['evaluated']:,} "
                f"fitted)  {run['alarms']:,} alarms → {run['new']} new, {run['updated']} "
                f"extended  peak +{run['peak_mb']:.0f} MB"
            )


if __name__ == "__main__":
    main()
