"""National-scale count arrays: ~2,900 counties × 40 diseases × 10 years of daily counts.

Goal: < 2 minutes with bounded memory. Prints wall and CPU time (the machine is shared, so
CPU time is the steadier figure), the peak resident memory and, as references measured in
the same run on the same number of cells: numpy's plain Poisson draws (the floor for any
count generator of this size) and numpy's gamma–Poisson negative binomial on one chunk
(the method the generator used before), scaled to the whole set.
Run: .venv/bin/python benchmarks/simulate_national.py [counties]
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np

from yifang.simulate.counts import national_chunks, negative_binomial


def _timed(fn) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def main(n_counties: int = 2900, n_diseases: int = 40, n_days: int = 3653) -> None:
    negative_binomial(np.random.default_rng(0), np.ones(4), 2.0)  # compile outside the timing
    total = 0
    cells = 0

    def generate() -> None:
        nonlocal total, cells
        for chunk in national_chunks(n_counties, n_diseases, n_days, seed=1, chunk_counties=64):
            total += int(chunk.counts.sum())
            cells += chunk.counts.size

    w_gen, c_gen = _timed(generate)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    per = 64 * n_diseases * n_days
    mean = total / max(cells, 1)

    def poisson() -> None:
        rng = np.random.default_rng(0)
        done = 0
        while done < cells:
            k = min(per, cells - done)
            rng.poisson(mean, k)
            done += k

    w_ref, c_ref = _timed(poisson)

    def gamma_poisson_chunk() -> None:
        rng = np.random.default_rng(0)
        shape = rng.uniform(0.0, 2.0, per)
        rng.poisson(rng.gamma(shape, 1.5))

    w_old, c_old = _timed(gamma_poisson_chunk)
    scale = cells / per
    print(f"shape {n_counties} × {n_diseases} × {n_days} = {cells:,} daily counts, sum {total:,}")
    print(f"generation:           wall {w_gen:6.1f} s  cpu {c_gen:6.1f} s  (goal < 120 s)")
    print(
        f"plain Poisson (ref):  wall {w_ref:6.1f} s  cpu {c_ref:6.1f} s  "
        f"→ ratio {w_gen / w_ref:4.2f}x wall, {c_gen / c_ref:4.2f}x cpu"
    )
    print(
        f"numpy gamma–Poisson:  wall {w_old * scale:6.1f} s  cpu {c_old * scale:6.1f} s  "
        f"(one chunk × {scale:.0f}) → generator is {c_old * scale / c_gen:4.1f}x faster (cpu)"
    )
    print(f"peak memory:          {peak_mb:6.0f} MB (chunks of 64 counties)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2900)
