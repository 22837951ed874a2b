"""The Noufaily et al. (2013) design: 42 scenarios × 100 series of 624 weeks.

Prints the time to generate them (the detection evaluation's input).
Run: .venv/bin/python benchmarks/simulate_noufaily.py
"""

from __future__ import annotations

import time

from yifang.simulate.noufaily import scenarios, simulate_many


def main(replicates: int = 100) -> None:
    t0 = time.perf_counter()
    n = 0
    for sc in scenarios():
        n += len(simulate_many(sc, replicates, seed=1))
    dt = time.perf_counter() - t0
    print(f"{n} series of 624 weeks in {dt:.1f} s ({n / dt:.0f} series/s)")


if __name__ == "__main__":
    main()
