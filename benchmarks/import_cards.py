"""How fast report cards import from CSV with full validation, against a load without any.

Generates N valid cards (default 1,000,000) as a CSV in the national export's shape — with
realistic values drawn from the catalog: leaf diseases with their allowed classifications,
acute/chronic and subtypes, the city's townships and reporting organisations, resident IDs
with correct check characters — then, in fresh databases:

* imports it with ``yifang.cases.importing.import_file`` (parse, validate every rule, hash,
  store) into SQLite and, if a URL is given, PostgreSQL;
* loads the same file with no validation at all — ``sqlite3 .import`` into a staging table
  then ``INSERT … SELECT`` into ``card``; on PostgreSQL ``COPY`` into a staging table then
  ``INSERT … SELECT`` — the reference the goal is measured against;

and prints cards per second, the ratio of the two times and the peak memory (maximum
resident set) of the importing process. Each measured step runs in its own process so
that generating the file does not count towards the importer's memory.

Goals: ≥ 50,000 cards/s, ≤ 3× the no-validation load, peak memory < 1 GiB.

    .venv/bin/python benchmarks/import_cards.py -n 200000
    .venv/bin/python benchmarks/import_cards.py --postgres postgresql+psycopg://postgres@127.0.0.1:55432/postgres
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from yifang.cases.importing import SQLITE_CACHE_KIB  # noqa: E402
from yifang.cases.validation import Reference  # noqa: E402
from yifang.core.db import make_engine  # noqa: E402
from yifang.models import Base  # noqa: E402

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘")
GIVEN = list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂花玉梅建国海燕红文华")
WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
CHECK = np.array(list("10X98765432"))
ADULT_GROUPS = ["4", "5", "6", "8", "9", "16", "17", "18", "19", "22", "23", "24"]


def populate(url: str) -> None:
    """Schema and catalog in a fresh database."""
    from yifang.catalog.service import load_all

    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        load_all(session)
        session.commit()
    engine.dispose()


def reference_of(url: str) -> Reference:
    engine = make_engine(url)
    with Session(engine) as session:
        ref = Reference.from_session(session)
    engine.dispose()
    return ref


def _choice(rng: np.random.Generator, values: list[str], n: int) -> np.ndarray:
    return np.asarray(values, dtype=object)[rng.integers(0, len(values), n)]


def generate(path: Path, n: int, ref: Reference, seed: int = 2025) -> None:
    """Write ``n`` valid cards as CSV with the national export's column names."""
    rng = np.random.default_rng(seed)
    diseases = [d for d in ref.diseases.values() if d.active and d.leaf and d.classifications]
    diseases = [
        d
        for d in diseases
        if not d.max_age_days_at_report
        and (d.valid_from is None or d.valid_from <= date(2023, 1, 1))
        and d.valid_to is None
    ]
    orgs = [o for o in ref.organisations.values() if o.active and o.county in ref.counties]
    orgs = [o for o in orgs if o.region_code.startswith(ref.city_prefix)]
    townships = sorted(ref.townships)

    disease_ix = rng.integers(0, len(diseases), n)
    org_ix = rng.integers(0, len(orgs), n)
    address = np.asarray(townships, dtype=object)[rng.integers(0, len(townships), n)]
    org_county = np.asarray([o.county for o in orgs], dtype=object)[org_ix]
    addr_county = np.asarray([a[:6] for a in address], dtype=object)
    residence = np.where(addr_county == org_county, "1", "2")

    today = date(2025, 6, 30)
    onset = np.datetime64("2023-01-01") + rng.integers(0, 900, n).astype("timedelta64[D]")
    age_years = np.minimum(rng.gamma(2.0, 18.0, n).astype(np.int64), 95)
    # 30–330 days past a birthday: the completed age in years is exactly ``age_years``.
    days = np.floor(age_years * 365.25).astype(np.int64) + rng.integers(30, 330, n)
    birth = onset - days.astype("timedelta64[D]")
    diagnosis = onset + rng.integers(0, 4, n).astype("timedelta64[D]")
    hour = rng.integers(0, 24, n)
    fill = diagnosis + rng.integers(0, 2, n).astype("timedelta64[D]")
    assert fill.max() <= np.datetime64(today)

    sex_digit = rng.integers(0, 10, n)
    sex = np.where(sex_digit % 2 == 1, "1", "2")
    birth_str = np.datetime_as_string(birth, unit="D")
    birth_digits = np.char.replace(birth_str.astype(str), "-", "")
    area = np.asarray([a[:6] for a in address])
    seq = rng.integers(0, 100, n)
    body = np.char.add(
        np.char.add(area, birth_digits),
        np.char.add(np.char.zfill(seq.astype(str), 2), sex_digit.astype(str)),
    )
    digits = np.frombuffer(body.astype("S17").tobytes(), dtype=np.uint8).reshape(n, 17) - 48
    check = CHECK[(digits.astype(np.int64) @ WEIGHTS) % 11]
    id_number = np.char.add(body, check)

    child = age_years <= 14
    occupation = _choice(rng, ADULT_GROUPS, n)
    occupation = np.where(child & (age_years < 3), "2", occupation)
    occupation = np.where(child & (age_years >= 3) & (age_years < 7), "1", occupation)
    occupation = np.where(child & (age_years >= 7), "3", occupation)

    classification = np.empty(n, dtype=object)
    chronicity = np.full(n, None, dtype=object)
    subtype = np.full(n, None, dtype=object)
    for i, d in enumerate(diseases):
        mask = disease_ix == i
        k = int(mask.sum())
        if not k:
            continue
        classification[mask] = _choice(rng, sorted(d.classifications), k)
        if d.chronicity:
            chronicity[mask] = _choice(rng, sorted(d.chronicity), k)
        if d.subtypes and d.subtype_required:
            subtype[mask] = _choice(rng, sorted(d.subtypes), k)

    surname = _choice(rng, SURNAMES, n)
    given = np.char.add(
        _choice(rng, GIVEN, n).astype(str),
        np.where(rng.random(n) < 0.6, _choice(rng, GIVEN, n), "").astype(str),
    )
    patient = np.char.add(surname.astype(str), given)
    guardian = np.where(child, np.char.add(surname.astype(str), "某某"), None)
    phone = np.char.add("139", np.char.zfill(rng.integers(0, 10**8, n).astype(str), 8))
    work_unit = np.where(child, "第一小学", "中卫市某公司")
    columns = {
        "卡片编号": np.char.add("B", np.char.zfill(np.arange(n).astype(str), 11)),
        "患者姓名": patient,
        "患儿家长姓名": guardian,
        "有效证件号": id_number,
        "性别": sex,
        "出生日期": birth_str,
        "患者工作单位": work_unit,
        "联系电话": phone,
        "病人属于": residence,
        "现住地址国标": address.astype(str),
        "现住详细地址": np.char.add("某村", (seq % 9 + 1).astype(str)),
        "人群分类": occupation.astype(str),
        "病例分类": classification.astype(str),
        "病例分类2": chronicity,
        "发病日期": np.datetime_as_string(onset, unit="D"),
        "诊断时间": np.char.add(
            np.char.add(np.datetime_as_string(diagnosis, unit="D"), " "),
            np.char.zfill(hour.astype(str), 2),
        ),
        "疾病名称": np.asarray([d.code for d in diseases])[disease_ix],
        "疾病分型": subtype,
        "报告单位编码": np.asarray([o.code for o in orgs])[org_ix],
        "填卡医生": _choice(rng, ["李医生", "王医生", "马医生", "张医生"], n).astype(str),
        "医生填卡日期": np.datetime_as_string(fill, unit="D"),
    }
    frame = pl.DataFrame(
        [pl.Series(name, np.asarray(v).tolist(), dtype=pl.String) for name, v in columns.items()]
    )
    frame.write_csv(path)


# --------------------------------------------------------------------------- measured steps


def child_import(url: str, path: str, chunk_rows: int) -> None:
    """Run in a child process: import and print seconds, cards and peak memory as JSON."""
    from yifang.cases.importing import import_file

    engine = make_engine(url)
    started = time.perf_counter()
    result = import_file(engine, path, chunk_rows=chunk_rows)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_mib = _peak_mib(usage)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "stored": result.rows_stored,
                "quarantined": result.rows_quarantined,
                "peak_mib": peak_mib,
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
            }
        )
    )


def _peak_mib(usage: resource.struct_rusage) -> float:
    """Peak resident memory of this process (MiB). ``ru_maxrss`` keeps the high-water mark
    of the process before ``exec`` (here: the parent holding the generated file), so the
    kernel's per-image ``VmHWM`` is read instead where it exists."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return usage.ru_maxrss / 1024


def run_child(*args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _stage_insert(columns: list[str], stage: str, cast_dates: bool) -> str:
    """INSERT … SELECT from the staging table: the file's columns, constants elsewhere."""
    mapping = {
        "card_number": '"卡片编号"',
        "patient_name": '"患者姓名"',
        "guardian_name": '"患儿家长姓名"',
        "id_number": '"有效证件号"',
        "sex": '"性别"',
        "birth_date": '"出生日期"',
        "work_unit": '"患者工作单位"',
        "phone": '"联系电话"',
        "residence_category": '"病人属于"',
        "address_code": '"现住地址国标"',
        "address_detail": '"现住详细地址"',
        "occupation": '"人群分类"',
        "classification": '"病例分类"',
        "chronicity": '"病例分类2"',
        "onset_date": '"发病日期"',
        "diagnosis_time": '"诊断时间"',
        "disease_code": '"疾病名称"',
        "subtype_code": '"疾病分型"',
        "org_code": '"报告单位编码"',
        "doctor_name": '"填卡医生"',
        "fill_date": '"医生填卡日期"',
        "report_type": "'1'",
        "status": "'submitted'",
        "version": "1",
        "entered_at": "CURRENT_TIMESTAMP",
        "updated_at": "CURRENT_TIMESTAMP",
        "created_by": "'bench'",
        "source": "'import'",
    }
    if cast_dates:
        for col in ("birth_date", "onset_date", "fill_date"):
            mapping[col] = f"{mapping[col]}::date"
        mapping["diagnosis_time"] = f"({mapping['diagnosis_time']} || ':00')::timestamp"
        mapping["chronicity"] = "NULLIF(\"病例分类2\", '')"
        mapping["subtype_code"] = "NULLIF(\"疾病分型\", '')"
        mapping["guardian_name"] = "NULLIF(\"患儿家长姓名\", '')"
    used = [c for c in columns if c in mapping]
    return (
        f"INSERT INTO card ({', '.join(used)}) "
        f"SELECT {', '.join(mapping[c] for c in used)} FROM {stage}"
    )


def baseline_sqlite(db: Path, path: Path) -> float:
    """``sqlite3 .import`` into a staging table, then INSERT … SELECT into card."""
    columns = [c.name for c in Base.metadata.tables["card"].columns]
    script = (
        "PRAGMA journal_mode=WAL;\nPRAGMA synchronous=NORMAL;\n"
        f"PRAGMA cache_size=-{SQLITE_CACHE_KIB};\n"  # the same page cache as the importer
        f".import --csv {path} stage\n"
        f"BEGIN;\n{_stage_insert(columns, 'stage', cast_dates=False)};\nCOMMIT;\n"
    )
    started = time.perf_counter()
    subprocess.run(["sqlite3", str(db)], input=script, text=True, check=True)
    return time.perf_counter() - started


def baseline_postgres(url: str, path: Path) -> float:
    """COPY into a staging table, then INSERT … SELECT into card."""
    import psycopg

    columns = [c.name for c in Base.metadata.tables["card"].columns]
    header = pl.read_csv(path, n_rows=0).columns
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cols = ", ".join(f'"{h}" text' for h in header)
        cur.execute(f"CREATE TEMP TABLE stage ({cols})")
        with path.open("rb") as fh, cur.copy("COPY stage FROM STDIN (FORMAT csv, HEADER)") as cp:
            while block := fh.read(1 << 20):
                cp.write(block)
        cur.execute(_stage_insert(columns, "stage", cast_dates=True))
        conn.commit()
    return time.perf_counter() - started


def _pg_database(admin_url: str) -> tuple[str, str]:
    name = f"yifang_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    base, _, _ = admin_url.rpartition("/")
    return name, f"{base}/{name}"


def _pg_drop(admin_url: str, name: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def report(label: str, n: int, ours: dict[str, float], reference: float) -> None:
    seconds = ours["seconds"]
    print(
        f"{label:<11} import {seconds:7.2f} s (CPU {ours['cpu_seconds']:.2f} s) = "
        f"{n / seconds:9,.0f} cards/s | "
        f"no-validation load {reference:6.2f} s = {n / reference:9,.0f} rows/s | "
        f"ratio {seconds / reference:4.2f}x | peak memory {ours['peak_mib']:6.0f} MiB | "
        f"stored {ours['stored']:,.0f}, quarantined {ours['quarantined']:,.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=1_000_000, help="cards to generate")
    parser.add_argument("--postgres", default=os.environ.get("YIFANG_BENCH_POSTGRES_URL"))
    parser.add_argument("--chunk-rows", type=int, default=25_000)
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--child-import", nargs=2, metavar=("URL", "FILE"))
    args = parser.parse_args()
    if args.child_import:
        child_import(*args.child_import, chunk_rows=args.chunk_rows)
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="yifang-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    template = workdir / "template.db"
    template.unlink(missing_ok=True)
    populate(f"sqlite:///{template}")
    ref = reference_of(f"sqlite:///{template}")
    csv_path = workdir / f"cards_{args.n}.csv"
    started = time.perf_counter()
    generate(csv_path, args.n, ref)
    print(
        f"generated {args.n:,} cards in {time.perf_counter() - started:.1f} s: "
        f"{csv_path} ({csv_path.stat().st_size / 2**20:.0f} MiB)"
    )

    if not args.no_sqlite:
        ours_db, base_db = workdir / "import.db", workdir / "baseline.db"
        shutil.copyfile(template, ours_db)
        shutil.copyfile(template, base_db)
        ours = run_child(
            "--chunk-rows",
            str(args.chunk_rows),
            "--child-import",
            f"sqlite:///{ours_db}",
            str(csv_path),
        )
        reference = baseline_sqlite(base_db, csv_path)
        report("SQLite", args.n, ours, reference)

    if args.postgres:
        names = []
        try:
            ours_name, ours_url = _pg_database(args.postgres)
            names.append(ours_name)
            base_name, base_url = _pg_database(args.postgres)
            names.append(base_name)
            populate(ours_url)
            populate(base_url)
            ours = run_child(
                "--chunk-rows", str(args.chunk_rows), "--child-import", ours_url, str(csv_path)
            )
            reference = baseline_postgres(base_url, csv_path)
            report("PostgreSQL", args.n, ours, reference)
        finally:
            for name in names:
                _pg_drop(args.postgres, name)
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
