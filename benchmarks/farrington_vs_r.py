"""farrington_flexible against R surveillance's farringtonFlexible, timed in the same run.

Simulates S weekly negative-binomial series (default 2,000) long enough for 104 evaluated
weeks with b = 5 years of baseline, runs ours over all S x 104 (series, week) fits, and R on
the first ``--r-series`` series over the same 104 weeks (Rscript subprocess; only the
``farringtonFlexible`` call is timed inside R, not start-up or data loading). R's time per
fit is scaled to the full S x 104; the ratio is printed for the original Farrington settings
(R's defaults) and for Noufaily et al. (2013) settings, single-threaded and with threads.

    .venv/bin/python benchmarks/farrington_vs_r.py [--series 2000] [--r-series 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from yifang.detect import farrington_flexible

WEEKS = 104
B, W = 5, 3

SETTINGS = {
    "original (R defaults)": ({}, "list()"),
    "Noufaily 2013 (noPeriods=10, nbPlugin)": (
        {
            "no_periods": 10,
            "past_weeks_not_included": 26,
            "p_threshold_trend": 1.0,
            "threshold_method": "nbPlugin",
        },
        "list(noPeriods=10, pastWeeksNotIncluded=26, pThresholdTrend=1, "
        'thresholdMethod="nbPlugin")',
    ),
}

R_SCRIPT = """
suppressMessages(library(surveillance))
y <- as.matrix(read.csv("{csv}", header = FALSE))
x <- sts(observed = y, freq = 52, start = c(2000, 1))
ctl <- c({control}, list(range = {lo}:{hi}, glmWarnings = FALSE))
t0 <- proc.time()[["elapsed"]]
r <- farringtonFlexible(x, control = ctl)
cat(proc.time()[["elapsed"]] - t0, "\\n")
"""


def simulate(T: int, S: int, seed: int = 1) -> np.ndarray:
    """Weekly counts with yearly seasonality, a mild trend and varied levels and dispersion."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None]
    level = rng.uniform(0.0, 3.0, S)[None, :]
    mu = np.exp(level + 0.6 * np.cos(2 * np.pi * t / 52) + 0.001 * t)
    size = rng.uniform(1.0, 10.0, S)[None, :]
    return rng.negative_binomial(size, size / (size + mu)).astype(float)


def time_r(y: np.ndarray, control: str, lo: int, hi: int) -> float:
    """Seconds R spends in farringtonFlexible on ``y`` (T, m) for 1-based weeks lo..hi."""
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "y.csv"
        np.savetxt(csv, y, fmt="%d", delimiter=",")
        script = Path(tmp) / "run.R"
        script.write_text(R_SCRIPT.format(csv=csv, control=control, lo=lo, hi=hi))
        out = subprocess.run(
            ["Rscript", str(script)], capture_output=True, text=True, check=True
        ).stdout
    return float(out.split()[-1])


def time_ours(y: np.ndarray, kwargs: dict, rng_idx: np.ndarray, n_jobs: int) -> float:
    t0 = time.perf_counter()
    farrington_flexible(y, range=rng_idx, n_jobs=n_jobs, **kwargs)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument("--r-series", type=int, default=20)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    T = 52 * B + W + WEEKS
    y = simulate(T, args.series)
    rng_idx = np.arange(T - WEEKS, T)
    fits = args.series * WEEKS
    r_fits = args.r_series * WEEKS
    print(f"{args.series} series x {WEEKS} weeks = {fits:,} fits (b={B}, w={W})")
    print(f"R: farringtonFlexible on {args.r_series} series ({r_fits:,} fits), scaled up\n")
    for name, (kwargs, control) in SETTINGS.items():
        r_sec = time_r(y[:, : args.r_series], control, int(rng_idx[0]) + 1, T)
        r_per_fit = r_sec / r_fits
        r_total = r_per_fit * fits
        ours1 = time_ours(y, kwargs, rng_idx, 1)
        print(f"{name}")
        print(f"  R        {r_per_fit * 1e3:8.2f} ms/fit  ->  {r_total:9.1f} s for all")
        print(
            f"  ours x1  {ours1 / fits * 1e6:8.2f} us/fit  ->  {ours1:9.2f} s   "
            f"speed-up {r_total / ours1:7.0f}x"
        )
        if args.threads > 1:
            ours_n = time_ours(y, kwargs, rng_idx, args.threads)
            label = f"ours x{args.threads}"
            print(
                f"  {label:<8} {ours_n / fits * 1e6:8.2f} us/fit  ->  {ours_n:9.2f} s   "
                f"speed-up {r_total / ours_n:7.0f}x"
            )
        print()


if __name__ == "__main__":
    main()
