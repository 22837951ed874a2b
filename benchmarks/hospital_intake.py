"""Hospital front end: throughput on one million encounters, and case finding on the
simulated city.

Part 1 — accuracy. The simulated Zhongwei (``yifang.simulate``, one year, with its hospital
encounters, laboratory results and answer key ``encounter_truth.csv``) is written as CSV
extracts and received through :func:`yifang.hospital.intake_csv.ingest_csv` into a fresh
SQLite database. Reported: the share of true notifiable cases (diagnosis encounters of a
notifiable disease) whose encounter produced a draft card of the right disease group (a
finding merged into the same person's earlier draft counts: the person has one draft), and
the false drafts (drafts from encounters that are not a notifiable case of that disease
group) per 1,000 encounters. Goal: ≥ 99 % of true cases.

Part 2 — throughput. The simulated encounters are repeated (new visit numbers, later days)
up to ``--records`` (default 1,000,000) rows, written as one CSV extract and received through
the same path, in batches of 100,000 rows: parsed and checked, stored, classified into
syndromes and counted, case identification and draft cards. Reported: wall time, records per
second, peak resident memory (it must not grow with the file), and — as the reference of
the same run — the time of the pure Polars classification alone (no database).
Goal: < 5 minutes for 1,000,000 records on this machine.

    .venv/bin/python benchmarks/hospital_intake.py [--records 1000000] [--years 1]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yifang.catalog.models import Organisation
from yifang.catalog.service import load_all
from yifang.core import db as core_db
from yifang.core.settings import get_settings
from yifang.hospital import syndromes
from yifang.hospital.intake_csv import _clean, check_batch, ingest_csv, to_frames
from yifang.hospital.models import Encounter, IdentifiedCase, SyndromeCount
from yifang.hospital.rules import diagnosis_candidates, load_rules, ruleset
from yifang.models import Base


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fresh_database(folder: Path, name: str) -> Session:
    engine = core_db.make_engine(f"sqlite:///{folder / name}")
    Base.metadata.create_all(engine)
    core_db.set_engine(engine)
    session = Session(engine, expire_on_commit=False)
    load_all(session)
    load_rules(session)
    session.commit()
    return session


def simulate(folder: Path, years: float, seed: int) -> Path:
    from yifang.simulate.service import build_files

    t0 = time.perf_counter()
    out = folder / "sim"
    report, result = build_files(
        out, years=years, seed=seed, end_date=date(2025, 6, 30), formats=("csv",), streams=True
    )
    print(
        f"simulated city: {report.cards:,} cards, {len(result.encounters or []):,} encounters, "
        f"{len(result.encounters.labs) if result.encounters else 0:,} lab results "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    # the LIS extract names its hospital: add the column from the visits
    enc = pl.read_csv(out / "encounters.csv", infer_schema=False).rename(
        lambda c: c.lstrip("\ufeff")
    )
    labs = pl.read_csv(out / "encounter_labs.csv", infer_schema=False).rename(
        lambda c: c.lstrip("\ufeff")
    )
    labs = labs.join(enc.select("encounter_id", "org_code"), on="encounter_id", how="left")
    labs.write_csv(out / "labs_with_org.csv")
    return out


def accuracy(folder: Path, sim: Path) -> None:
    session = fresh_database(folder, "accuracy.db")
    t0 = time.perf_counter()
    visits = ingest_csv(session, sim / "encounters.csv")
    labs = ingest_csv(session, sim / "labs_with_org.csv")
    session.commit()
    seconds = time.perf_counter() - t0
    print(
        f"received {visits.stored:,} encounters ({visits.rejected} rows left out) and "
        f"{labs.stored:,} results in {seconds:.1f} s"
    )
    truth = pl.read_csv(sim / "encounter_truth.csv", infer_schema=False).rename(
        lambda c: c.lstrip("\ufeff")
    )
    rules = ruleset(session)
    group = {code: f.group for code, f in rules.diseases.items()}
    found = pl.DataFrame(
        session.execute(
            select(
                Encounter.visit_number,
                IdentifiedCase.disease_code,
                IdentifiedCase.status,
            ).join(Encounter, Encounter.id == IdentifiedCase.encounter_id)
        ).all(),
        schema={"encounter_id": pl.String, "disease_code": pl.String, "status": pl.String},
        orient="row",
    ).with_columns(pl.col("disease_code").replace_strict(group, default=None).alias("group"))
    drafted = found.filter(pl.col("status").is_in(["draft", "merged"]))
    truth = truth.with_columns(
        pl.col("true_disease_code").replace_strict(group, default=None).alias("group")
    )
    true_cases = truth.filter((pl.col("kind") == "diagnosis") & pl.col("group").is_not_null())
    hit = true_cases.join(drafted, on=["encounter_id", "group"], how="semi")
    missed = true_cases.join(drafted, on=["encounter_id", "group"], how="anti")
    drafts_only = found.filter(pl.col("status") == "draft")
    false = drafts_only.join(true_cases, on=["encounter_id", "group"], how="anti")
    n_enc = truth.height
    share = hit.height / true_cases.height if true_cases.height else float("nan")
    print(
        f"true notifiable cases: {true_cases.height:,}; drafted {hit.height:,} "
        f"= {100 * share:.2f} % (goal ≥ 99 %)"
    )
    print(
        f"false drafts: {false.height:,} = {1000 * false.height / n_enc:.2f} per 1,000 "
        f"encounters ({n_enc:,} encounters)"
    )
    if missed.height:
        print("missed, by disease:", dict(missed.group_by("true_disease_code").len().iter_rows()))
    if false.height:
        kinds = false.join(truth.select("encounter_id", "kind"), on="encounter_id", how="left")
        print(
            "false drafts by disease and kind of visit:",
            dict(
                kinds.group_by("disease_code", "kind")
                .len()
                .sort("len", descending=True)
                .head(8)
                .select(pl.concat_str("disease_code", "kind", separator="/"), "len")
                .iter_rows()
            ),
        )
    session.close()


def big_file(sim: Path, folder: Path, records: int) -> Path:
    """The simulated encounters repeated to ``records`` rows (new visits on later days)."""
    base = pl.read_csv(sim / "encounters.csv", infer_schema=False).rename(
        lambda c: c.lstrip("\ufeff")
    )
    path = folder / "big.csv"
    rounds = -(-records // base.height)
    written = 0
    with path.open("w", encoding="utf-8") as fh:
        for r in range(rounds):
            part = base.head(records - written).with_columns(
                (pl.col("encounter_id") + f"-R{r}").alias("encounter_id"),
                (pl.col("visit_time").str.to_datetime("%Y-%m-%d %H:%M") + timedelta(days=366 * r))
                .dt.strftime("%Y-%m-%d %H:%M")
                .alias("visit_time"),
            )
            part.write_csv(fh, include_header=(r == 0))
            written += part.height
    return path


def classification_only(path: Path, batch_rows: int) -> tuple[float, int, int]:
    """The reference: parse, check and classify with Polars only (no database)."""
    session = Session(core_db.get_engine())
    rs = ruleset(session)
    orgs = set(session.scalars(select(Organisation.code)))
    session.close()
    t0 = time.perf_counter()
    c0 = time.process_time()
    found = syn = 0
    offset = 0
    for raw in pl.scan_csv(path, infer_schema=False).collect_batches(chunk_size=batch_rows):
        good, _errors, _bad = check_batch(_clean(raw), orgs, 2, "encounters")
        enc, dx, _labs = to_frames(good, "encounters")
        ids = pl.int_range(offset, offset + enc.height, eager=True, dtype=pl.Int64)
        offset += enc.height
        enc = enc.with_columns(ids.alias("encounter_id"))
        dx = dx.join(
            enc.select("org_code", "visit_number", "encounter_id"), on=["org_code", "visit_number"]
        )
        syn += syndromes.classify(rs, enc, dx).height
        found += diagnosis_candidates(rs, dx).height
    print(f"  (reference CPU time {time.process_time() - c0:.1f} s)")
    return time.perf_counter() - t0, found, syn


def throughput(folder: Path, sim: Path, records: int, batch_rows: int) -> None:
    path = big_file(sim, folder, records)
    size = path.stat().st_size / 1e6
    print(f"\nthroughput: {records:,} encounter records, CSV of {size:.0f} MB")
    session = fresh_database(folder, "throughput.db")
    ref_seconds, ref_found, ref_syn = classification_only(path, batch_rows)
    print(
        f"reference (Polars only: parse, check, syndromes, case rules): {ref_seconds:.1f} s, "
        f"{ref_found:,} findings, {ref_syn:,} syndromes"
    )
    rss0 = peak_mb()
    t0 = time.perf_counter()
    c0 = time.process_time()
    marks: list[tuple[int, float, float]] = []

    def tick(rows: int) -> None:
        marks.append((rows, time.perf_counter() - t0, peak_mb()))

    report = ingest_csv(session, path, batch_rows=batch_rows, progress=tick)
    session.commit()
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    cells = session.scalar(select(func.count()).select_from(SyndromeCount)) or 0
    print(
        f"full path (CSV → store → syndromes and counts → cases → drafts): {seconds:.1f} s "
        f"= {records / seconds:,.0f} records/s; {seconds / ref_seconds:.1f}× the Polars-only "
        f"reference; goal < 300 s: {'met' if seconds < 300 else 'NOT met'}"
    )
    print(
        f"  CPU time of this process {cpu:.1f} s ({100 * cpu / seconds:.0f} % of the wall "
        f"time; the rest is the database's file writes and other processes on the machine)"
    )
    print(
        f"  stored {report.stored:,}, left out {report.rejected:,}; drafts "
        f"{report.figures.get('drafts', 0):,}, merged {report.figures.get('merged', 0):,}, "
        f"syndrome rows {report.figures.get('syndromes', 0):,}, count cells {cells:,}"
    )
    for rows, at, mb in marks[:: max(1, len(marks) // 5)] + marks[-1:]:
        print(f"  after {rows:>9,} rows: {at:6.1f} s, peak RSS {mb:,.0f} MB")
    print(f"  peak RSS before the run {rss0:,.0f} MB, after {peak_mb():,.0f} MB")
    session.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--years", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--batch", type=int, default=100_000)
    ap.add_argument("--skip-accuracy", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="yifang-hospital-") as tmp:
        folder = Path(tmp)
        get_settings().data_dir = folder  # large extracts are kept there, not in the checkout
        sim = simulate(folder, args.years, args.seed)
        if not args.skip_accuracy:
            accuracy(folder, sim)
        throughput(folder, sim, args.records, args.batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
