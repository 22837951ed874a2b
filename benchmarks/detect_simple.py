"""How fast the simple detectors run over many series at once, against R in the same run.

Times, on one process:

* ``ears_c`` (C1, C2, C3) on N daily series (default 10,000) x 365 evaluated days, against
  R ``surveillance::earsC`` on the same counts;
* ``cusum`` on the same series against R ``surveillance::algo.cusum``;
* ``mpm`` on N series x 365 evaluated days with three years of history (no R reference);
* ``fixed_threshold`` (3 cases in 7 days) on the same (no R reference);
* ``ewma``, ``adaptive_regression`` and ``essence_switch`` on N/10 series x 365 days (Rnssp
  timed too when ``RNSSP_SRC`` points at its source, see tests/detect/fixtures/make_essence.R);
* ``estimate_r`` on M series (default 2,000) x 365 days, weekly windows, against R
  ``EpiEstim::estimate_R``.

R loops over series, so it runs on a subset (``--r-series``, default 200; at most 100 for
EpiEstim and 10 for Rnssp) and its time is scaled linearly to the full count; the ratio
printed is R's (scaled) time over ours.

    .venv/bin/python benchmarks/detect_simple.py
    .venv/bin/python benchmarks/detect_simple.py -n 2000 --r-series 200
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from yifang.detect.algorithms import (  # noqa: E402
    adaptive_regression,
    cusum,
    ears_c,
    essence_switch,
    estimate_r,
    ewma,
    fixed_threshold,
    mpm,
)

DAYS = 365


def timed(fn: Callable[[], Any], repeat: int = 1) -> float:
    """Best wall-clock time of ``repeat`` runs, in seconds."""
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return float(best)


def daily_counts(rng: np.random.Generator, T: int, S: int) -> np.ndarray:
    """Poisson counts with a weekly pattern and series means between 0.2 and 20 per day."""
    mu = rng.uniform(0.2, 20, S)
    weekly = 1 + 0.3 * np.sin(2 * np.pi * np.arange(T) / 7)
    return rng.poisson(mu[None, :] * weekly[:, None]).astype(np.float64)


def run_r(script: str, data: np.ndarray, workdir: Path) -> float | None:
    """Run an R script on ``data`` (written as CSV, read as matrix ``y``); it must print the
    seconds spent in the measured call on its last line."""
    if shutil.which("Rscript") is None:
        return None
    csv = workdir / "y.csv"
    np.savetxt(csv, data, delimiter=",", fmt="%d")
    prelude = f'y <- as.matrix(read.csv("{csv}", header = FALSE))\n'
    path = workdir / "bench.R"
    path.write_text(prelude + script)
    done = subprocess.run(
        ["Rscript", str(path)], capture_output=True, text=True, env={**os.environ, "TZ": "UTC"}
    )
    if done.returncode != 0:
        print(f"    (R failed: {done.stderr.strip().splitlines()[-1:]})")
        return None
    return float(done.stdout.strip().splitlines()[-1])


R_EARS = """suppressMessages(library(surveillance))
s <- sts(observed = y, frequency = 365)
t0 <- proc.time()[["elapsed"]]
for (m in c("C1", "C2", "C3")) {
  invisible(earsC(s, control = list(method = m, range = 12:nrow(y))))
}
cat(proc.time()[["elapsed"]] - t0, "\\n")
"""

R_CUSUM = """suppressMessages(library(surveillance))
s <- sts(observed = y, frequency = 365)
t0 <- proc.time()[["elapsed"]]
invisible(suppressWarnings(cusum(s, control = list(range = 12:nrow(y)), verbose = FALSE)))
cat(proc.time()[["elapsed"]] - t0, "\\n")
"""

R_EPIESTIM = """suppressMessages(library(EpiEstim))
t0 <- proc.time()[["elapsed"]]
for (j in seq_len(ncol(y))) {
  invisible(suppressWarnings(suppressMessages(estimate_R(y[, j], method = "parametric_si",
    config = make_config(list(mean_si = 4.8, std_si = 2.3))))))
}
cat(proc.time()[["elapsed"]] - t0, "\\n")
"""

R_RNSSP = """suppressMessages({library(magrittr); library(purrr); library(dplyr); library(tidyr)})
invisible(Sys.setlocale("LC_TIME", "C"))
for (f in c("alert_ewma.R", "alert_regression.R", "alert_switch.R")) {
  source(file.path("%s", "R", f))
}
dates <- seq(as.Date("2023-01-02"), by = 1, length.out = nrow(y))
t0 <- proc.time()[["elapsed"]]
for (j in seq_len(ncol(y))) {
  invisible(alert_switch(data.frame(date = dates, count = y[, j])))
}
cat(proc.time()[["elapsed"]] - t0, "\\n")
"""


def report(name: str, ours: float, r_time: float | None, r_series: int, n_series: int) -> None:
    line = f"  {name:<44} {ours:8.3f} s"
    if r_time is not None:
        scaled = r_time * n_series / r_series
        line += f"   R {scaled:9.2f} s (measured {r_time:.2f} s on {r_series})"
        line += f"   ratio R/ours {scaled / ours:8.1f}x"
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--series", type=int, default=10_000)
    parser.add_argument("-m", "--epiestim-series", type=int, default=2_000)
    parser.add_argument("--r-series", type=int, default=200)
    parser.add_argument("--no-r", action="store_true", help="skip the R measurements")
    args = parser.parse_args()
    rng = np.random.default_rng(2024)
    n, m = args.series, args.epiestim_series
    r_n = min(args.r_series, n)
    use_r = not args.no_r
    print(f"numpy {np.__version__}; {n:,} daily series x {DAYS} evaluated days\n")

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)

        y = daily_counts(rng, DAYS + 11, n)
        days = np.arange(11, DAYS + 11)
        ours = timed(lambda: [ears_c(y, method=k, range=days) for k in ("C1", "C2", "C3")])
        r = run_r(R_EARS, y[:, :r_n], work) if use_r else None
        report("ears_c C1+C2+C3", ours, r, r_n, n)

        ours = timed(lambda: cusum(y, range=days))
        r = run_r(R_CUSUM, y[:, :r_n], work) if use_r else None
        report("cusum (standard)", ours, r, r_n, n)

        history = 3 * 365 + 2 * 7 + 6
        y_long = daily_counts(rng, history + DAYS, n)
        ours = timed(lambda: mpm(y_long, percentile=80))
        report(f"mpm P80 (3 years x 5 periods, T={history + DAYS})", ours, None, r_n, n)
        ours = timed(lambda: fixed_threshold(y_long[-DAYS - 6 :], threshold=3, window=7))
        report("fixed_threshold (3 cases in 7 days)", ours, None, r_n, n)

        n_ess = max(1, n // 10)
        y_ess = daily_counts(rng, DAYS + 30, n_ess)
        r_ess = min(r_n, n_ess, 10)  # Rnssp takes seconds per series
        print(f"\n{n_ess:,} daily series x {DAYS + 30} days (ESSENCE detectors)")
        report("ewma", timed(lambda: ewma(y_ess)), None, r_ess, n_ess)
        report("adaptive_regression", timed(lambda: adaptive_regression(y_ess)), None, r_ess, n_ess)
        src = os.environ.get("RNSSP_SRC")
        r = run_r(R_RNSSP % src, y_ess[:, :r_ess], work) if (use_r and src) else None
        report("essence_switch", timed(lambda: essence_switch(y_ess)), r, r_ess, n_ess)

        y_r = rng.poisson(rng.uniform(1, 50, m)[None, :], (DAYS, m)).astype(np.float64)
        r_m = min(r_n, m, 100)
        print(f"\n{m:,} daily series x {DAYS} days, weekly windows (EpiEstim)")
        ours = timed(lambda: estimate_r(y_r, mean_si=4.8, std_si=2.3))
        r = run_r(R_EPIESTIM, y_r[:, :r_m], work) if use_r else None
        report("estimate_r (parametric SI)", ours, r, r_m, m)


if __name__ == "__main__":
    main()
