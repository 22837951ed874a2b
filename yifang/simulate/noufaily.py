"""The simulation design of Noufaily et al. (2013) for scoring outbreak-detection algorithms.

Noufaily A, Enki DG, Farrington P, Garthwaite P, Andrews N, Charlett A. An improved
algorithm for outbreak detection in multiple surveillance systems. Stat Med
2013;32(7):1206–1222. doi:10.1002/sim.5595.

Baseline (weekly counts, ``t`` = 1..624)::

    Y_t ~ NegBin(μ_t, variance φ·μ_t)
    log μ_t = θ + β·t + Σ_{j=1..m} [γ1 cos(2πjt/52) + γ2 sin(2πjt/52)]

Seven parameter sets (θ, β, γ1, γ2, φ) are each combined with trend off/on (β = 0 or the
set's β) and seasonality m ∈ {0, 1, 2} (γ's unused when m = 0): 7 × 2 × 3 = 42 scenarios,
numbered set by set, trend off before trend on, m ascending — scenario 14 is set 3, trend
off, m = 1 (θ 1.5, γ1 0.2, γ2 −0.4, φ 1). The 28-scenario variant (m ∈ {0, 1}) is
:func:`scenarios` with ``harmonics=(0, 1)``.

Outbreaks: four in the baseline weeks 313–575 with k drawn from {2, 3, 5, 10}, one in the
current weeks 576–624 with k from 1..10; an outbreak starting in week t0 has
Poisson(k × SD) cases, SD being the baseline standard deviation at t0, √(φ·μ_t0); each case
falls in week t0 + ⌊LogNormal(0, 0.5)⌋. Weeks 1–312 are for training.

The parameter table could not be read from the paper itself here; it was checked against
two independent public re-implementations (which agree with each other on every value and
on scenario 14) and against the scenario count of Bédubourg & Le Strat (2017, PLoS ONE
12(7):e0181227), who reused the design with 42 scenarios. Deliberate differences from one
public replication: it drew the negative binomial with size (μ+μ²)/(φμ), which is not
variance φμ — we use size μ/(φ−1), Poisson when φ = 1; it scaled outbreaks by the SD of the
whole simulated series — we use the model SD at the start week, as the design describes;
current-period cases that would fall after week 624 are dropped, not piled on week 624.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from yifang.simulate.counts import negative_binomial, weekly_mean

# (θ, β when trend is on, γ1, γ2, φ) for parameter sets 1..7.
PARAMETER_SETS: tuple[tuple[float, float, float, float, float], ...] = (
    (0.1, 0.0025, 0.6, 0.6, 1.5),
    (-2.0, 0.005, 0.1, 0.3, 2.0),
    (1.5, 0.003, 0.2, -0.4, 1.0),
    (0.5, 0.002, 0.5, 0.5, 5.0),
    (2.5, 0.001, 1.0, 0.1, 3.0),
    (3.75, 0.001, 0.1, -0.1, 1.1),
    (5.0, 0.0001, 0.05, 0.01, 1.2),
)

N_WEEKS = 624
TRAINING_WEEKS = (1, 312)
BASELINE_WEEKS = (313, 575)
CURRENT_WEEKS = (576, 624)
BASELINE_K = (2, 3, 5, 10)
CURRENT_K = tuple(range(1, 11))
N_BASELINE_OUTBREAKS = 4


@dataclass(frozen=True)
class Scenario:
    """One row of the design. ``number`` is 1-based in the order described above."""

    number: int
    parameter_set: int
    theta: float
    beta: float
    gamma1: float
    gamma2: float
    m: int
    phi: float

    @property
    def trend(self) -> bool:
        return self.beta != 0.0

    def mean(self, t: NDArray[np.float64] | NDArray[np.int64]) -> NDArray[np.float64]:
        """μ_t for weeks ``t`` (1-based)."""
        return weekly_mean(
            t, self.theta, self.beta, (self.gamma1,) * self.m, (self.gamma2,) * self.m, 52.0
        )


def scenarios(harmonics: tuple[int, ...] = (0, 1, 2)) -> list[Scenario]:
    """The design's scenarios (42 by default; ``harmonics=(0, 1)`` gives the 28 variant)."""
    rows: list[Scenario] = []
    for s, (theta, beta, g1, g2, phi) in enumerate(PARAMETER_SETS, start=1):
        for b in (0.0, beta):
            for m in harmonics:
                rows.append(
                    Scenario(
                        number=len(rows) + 1,
                        parameter_set=s,
                        theta=theta,
                        beta=b,
                        gamma1=g1 if m else 0.0,
                        gamma2=g2 if m else 0.0,
                        m=m,
                        phi=phi,
                    )
                )
    return rows


@dataclass(frozen=True)
class InjectedOutbreak:
    """One outbreak: start week, k, total size drawn, and cases per week (1-based weeks)."""

    start: int
    k: int
    size: int
    weeks: NDArray[np.int64]
    cases: NDArray[np.int64]
    current: bool

    @property
    def end(self) -> int:
        return int(self.weeks.max()) if self.weeks.size else self.start


@dataclass(frozen=True)
class SimulatedSeries:
    """Baseline, outbreak cases and their sum for weeks 1..N (index 0 is week 1)."""

    scenario: Scenario
    baseline: NDArray[np.int64]
    outbreak_cases: NDArray[np.int64]
    outbreaks: list[InjectedOutbreak] = field(default_factory=list)

    @property
    def observed(self) -> NDArray[np.int64]:
        return self.baseline + self.outbreak_cases

    @property
    def in_outbreak(self) -> NDArray[np.bool_]:
        """True in weeks holding at least one outbreak case."""
        return self.outbreak_cases > 0

    @property
    def weeks(self) -> NDArray[np.int64]:
        return np.arange(1, self.baseline.shape[0] + 1, dtype=np.int64)


def _outbreak(
    rng: np.random.Generator,
    scenario: Scenario,
    start: int,
    k: int,
    last_week: int,
    current: bool,
) -> InjectedOutbreak:
    mu0 = float(scenario.mean(np.array([start]))[0])
    sd = float(np.sqrt(scenario.phi * mu0))
    size = int(rng.poisson(k * sd))
    offsets = np.floor(rng.lognormal(0.0, 0.5, size)).astype(np.int64)
    weeks = start + offsets
    weeks = weeks[weeks <= last_week]
    uniq, cnt = np.unique(weeks, return_counts=True)
    return InjectedOutbreak(start, k, size, uniq, cnt.astype(np.int64), current)


def simulate(
    scenario: Scenario, seed: int, replicate: int = 0, n_weeks: int = N_WEEKS
) -> SimulatedSeries:
    """One realisation of ``scenario``; equal (scenario, seed, replicate) give equal series."""
    if n_weeks < CURRENT_WEEKS[1]:
        raise ValueError(f"n_weeks must be at least {CURRENT_WEEKS[1]}")
    if seed < 0 or replicate < 0:
        raise ValueError("seed and replicate must be >= 0")
    rng = np.random.default_rng([seed, scenario.number, replicate])
    t = np.arange(1, n_weeks + 1)
    baseline = negative_binomial(rng, scenario.mean(t), scenario.phi)
    extra = np.zeros(n_weeks, dtype=np.int64)
    outbreaks: list[InjectedOutbreak] = []
    starts = rng.choice(
        np.arange(BASELINE_WEEKS[0], BASELINE_WEEKS[1] + 1), N_BASELINE_OUTBREAKS, replace=False
    )
    ks = rng.choice(BASELINE_K, N_BASELINE_OUTBREAKS, replace=True)
    for start, k in zip(np.sort(starts), ks, strict=True):
        outbreaks.append(_outbreak(rng, scenario, int(start), int(k), n_weeks, False))
    cur_start = int(rng.integers(CURRENT_WEEKS[0], CURRENT_WEEKS[1] + 1))
    cur_k = int(rng.choice(CURRENT_K))
    outbreaks.append(_outbreak(rng, scenario, cur_start, cur_k, CURRENT_WEEKS[1], True))
    for ob in outbreaks:
        extra[ob.weeks - 1] += ob.cases
    return SimulatedSeries(scenario, baseline, extra, outbreaks)


def simulate_many(
    scenario: Scenario, n_series: int, seed: int, n_weeks: int = N_WEEKS
) -> list[SimulatedSeries]:
    """``n_series`` independent realisations (replicates 0..n_series-1)."""
    return [simulate(scenario, seed, i, n_weeks) for i in range(n_series)]
