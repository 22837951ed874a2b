"""National-scale count arrays: ~2,900 counties × 40 diseases × 10 years of daily counts.

Goal: < 2 minutes with bounded memory. Prints the generation time, the peak resident memory
and, as a reference measured in the same run, the time numpy takes just to draw as many
Poisson variates (the floor for any generator of this size).
Run: .venv/bin/python benchmarks/simulate_national.py [counties]
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np

from yifang.simulate.counts import national_chunks


def main(n_counties: int = 2900, n_diseases: int = 40, n_days: int = 3653) -> None:
    t0 = time.perf_counter()
    total = 0
    cells = 0
    for chunk in national_chunks(n_counties, n_diseases, n_days, seed=1, chunk_counties=64):
        total += int(chunk.counts.sum())
        cells += chunk.counts.size
    t_gen = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # reference: plain Poisson draws of the same count, in the same chunk size
    rng = np.random.default_rng(0)
    t1 = time.perf_counter()
    per = 64 * n_diseases * n_days
    done = 0
    while done < cells:
        k = min(per, cells - done)
        rng.poisson(0.5, k)
        done += k
    t_ref = time.perf_counter() - t1
    print(f"shape {n_counties} × {n_diseases} × {n_days} = {cells:,} daily counts, sum {total:,}")
    print(f"generation:          {t_gen:6.1f} s  (goal < 120 s)")
    print(f"plain Poisson (ref): {t_ref:6.1f} s  → ratio {t_gen / t_ref:4.1f}x")
    print(f"peak memory:         {peak_mb:6.0f} MB (chunks of 64 counties)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2900)
