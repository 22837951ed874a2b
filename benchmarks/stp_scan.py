"""Speed of the space–time permutation scan (``yifang.detect.stp_scan``).

A city-size prospective analysis: 300 locations × 365 days × 10,000 cases, 999 Monte Carlo
replicates, windows of up to 7 and 30 days, circles up to 50% of the cases. The compiled
(numba) engine is timed in full; the NumPy array engine — the reference the kernels are tested
against — is timed on a few replicates in the same run and scaled, and the ratio printed.
SaTScan cannot be installed here, so it is not in the comparison. Also times SaTScan's NYC
fever sample (192 ZIP codes, 24 days, 999 replicates).

    .venv/bin/python benchmarks/stp_scan.py [--replicates 999] [--large]

``--large`` adds a run the size of New York City's daily system (2,216 census tracts, 365 days,
30,000 cases, 7-day windows).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from yifang.detect import stp_scan


def city(rng: np.random.Generator, n_locations: int, n_days: int, n_cases: int):
    """Cases over uneven locations (gamma weights) with a seasonal day profile."""
    xy = rng.uniform(0, 100, (n_locations, 2))
    w_loc = rng.gamma(2.0, 1.0, n_locations)
    w_day = 1 + 0.5 * np.sin(2 * np.pi * np.arange(n_days) / 365)
    p = np.outer(w_day, w_loc)
    p /= p.sum()
    observed = rng.multinomial(n_cases, p.ravel()).reshape(n_days, n_locations)
    return observed, xy


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def cpu_timed(fn, *args, **kwargs):
    """Result, wall-clock and CPU seconds of this process (CPU time does not count waiting
    for a core, so it is the steadier figure on a shared machine)."""
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t, time.process_time() - c


def nycfever():
    here = Path(__file__).resolve().parent.parent / "tests" / "detect" / "fixtures" / "scan"
    rows = [r.split() for r in (here / "NYCfever.geo").read_text().splitlines() if r.strip()]
    ids = sorted(r[0] for r in rows)
    pos = {z: i for i, z in enumerate(ids)}
    lonlat = {r[0]: (float(r[2]), float(r[1])) for r in rows}
    obs = np.zeros((24, len(ids)), dtype=np.int64)
    for line in (here / "NYCfever.cas").read_text().splitlines():
        if line.strip():
            z, n, d = line.split()
            obs[int(d.split("/")[2]) - 1, pos[z]] += int(n)
    return obs, np.array([lonlat[z] for z in ids])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replicates", type=int, default=999)
    ap.add_argument("--reference-replicates", type=int, default=19)
    ap.add_argument("--large", action="store_true")
    args = ap.parse_args()
    R = args.replicates
    rng = np.random.default_rng(0)

    # compile (or load the cached) kernels outside the timings
    stp_scan(np.ones((3, 2)), np.eye(2), n_replicates=1)

    obs, lonlat = nycfever()
    _, t = timed(
        stp_scan, obs, lonlat, coordinates_type="lonlat", max_days=12, n_replicates=R, seed=1
    )
    print(f"NYC fever sample, 192 ZIP codes x 24 days, 194 cases, {R} replicates: {t:.2f} s")

    observed, xy = city(rng, 300, 365, 10_000)
    print(f"\ncity: 300 locations x 365 days x {observed.sum():,} cases, {R} replicates")
    print(
        f"{'max days':>8}  {'numba (s)':>10}  {'CPU (s)':>8}  {'per replicate':>13}"
        f"  {'2 threads (s)':>13}"
        f"  {'numpy (s, scaled)':>17}  ratio"
    )
    for max_days in (7, 30):
        res, t_numba, cpu_numba = cpu_timed(
            stp_scan, observed, xy, max_days=max_days, n_replicates=R, seed=1
        )
        _, t_threads = timed(
            stp_scan, observed, xy, max_days=max_days, n_replicates=R, seed=1, workers=2
        )
        r_ref = args.reference_replicates
        ref, t_ref = timed(
            stp_scan, observed, xy, max_days=max_days, n_replicates=r_ref, seed=1, engine="numpy"
        )
        assert ref.primary is not None and res.primary is not None
        assert abs(ref.primary.llr - res.primary.llr) < 1e-9
        _, t_setup = timed(
            stp_scan, observed, xy, max_days=max_days, n_replicates=0, engine="numpy"
        )
        per_ref = (t_ref - t_setup) / r_ref
        t_ref_full = t_setup + per_ref * R
        print(
            f"{max_days:>8}  {t_numba:>10.2f}  {cpu_numba:>8.2f}"
            f"  {1e3 * cpu_numba / max(R, 1):>7.2f} ms CPU"
            f"  {t_threads:>13.2f}  {t_ref_full:>17.1f}  {t_ref_full / t_numba:>5.1f}x"
        )

    if args.large:
        observed, xy = city(rng, 2216, 365, 30_000)
        _, t = timed(stp_scan, observed, xy, max_days=7, n_replicates=R, seed=1)
        print(
            f"\nNYC size: 2,216 locations x 365 days x 30,000 cases, 7 days, {R} replicates:"
            f" {t:.1f} s"
        )


if __name__ == "__main__":
    main()
