"""Kulldorff's space–time permutation scan statistic, as in SaTScan.

Reference: Kulldorff M, Heffernan R, Hartman J, Assunção R, Mostashari F (2005). A space–time
permutation scan statistic for disease outbreak detection. PLoS Medicine 2(3): e59. The rules
for the scanning window, secondary clusters, p-values and recurrence intervals follow the
SaTScan user guide (v10) and SaTScan's behaviour on its NYC fever sample data.

Notation as in the paper: ``c_zd`` cases in location ``z`` on day ``d``; ``C`` all cases;
``C_z`` and ``C_d`` the location and day margins. Under the null hypothesis (no space–time
interaction) the expected count is ``μ_zd = C_z · C_d / C``. A *cylinder* ``A`` is a circle
around a location centroid (the ``k`` nearest locations) times a window of consecutive days;
``c_A`` and ``μ_A`` are its observed and expected counts. The statistic of a cylinder with a
high rate (``c_A > μ_A``) is the Poisson generalised log likelihood ratio

    LLR(A) = c_A · ln(c_A / μ_A) + (C − c_A) · ln((C − c_A) / (C − μ_A)),

the most likely cluster is the cylinder with the largest LLR, and its p-value comes from Monte
Carlo replicates in which the days are permuted among the cases (keeping both margins).

Scanning window, as SaTScan's defaults for the space–time permutation model:

* circles grow around every location centroid through its nearest neighbours, in order of
  distance (ties: the neighbour with the smaller coordinates first), while the circle holds at
  most ``max_share`` of all cases (SaTScan's "maximum spatial cluster size, % of population at
  risk", which for this model is a share of cases) and, optionally, lies within
  ``max_radius``;
* windows of ``min_days .. max_days`` consecutive days that end on the analysis day
  (prospective surveillance), or anywhere in the study period (``analysis="retrospective"``);
* only cylinders with at least ``min_cases`` cases (SaTScan's default 2) count as clusters.

Secondary clusters: each centroid's best cylinder is a candidate; candidates are ranked by LLR
(ties: fewer locations first, then the centre with the smaller coordinates, where SaTScan takes
its own location order) and kept when they share no
location with a cluster kept before (SaTScan's default "no geographical overlap"). Every
cluster's p-value compares its LLR with the replicates' maxima, ``p = (1 + #{LLR_sim ≥ LLR}) /
(R + 1)``; SaTScan reports the most likely cluster and the secondary clusters whose LLR is at
least 0.001 and beaten by at least one replicate's maximum (p < 1), and so do we.

Deliberate differences from SaTScan:

* p-values are always the standard Monte Carlo p-values from all requested replicates; SaTScan's
  default also stops early once 50 replicates beat the observed LLR and switches to Gumbel
  p-values for very small p. The replicates themselves differ (another random generator), so
  p-values agree with SaTScan's within Monte Carlo error, not digit for digit.
* the share-of-cases limit is checked with exact integer counts; SaTScan sums floating-point
  expected counts, which can differ when a circle holds exactly ``max_share`` of the cases.
* retrospective analyses take one candidate per centroid, as prospective ones do; SaTScan 10
  also keeps further, temporally disjoint candidates per centroid and lets secondary clusters
  overlap a kept cluster in space when they do not overlap it in time.
* recurrence intervals assume one analysis per day and no adjustment for earlier analyses:
  ``RI = max(1, 1 / p)`` days, as SaTScan reports them for daily prospective analyses.

Geography: ``coordinates_type="lonlat"`` takes (longitude, latitude) in degrees; as in SaTScan
the points are placed on a sphere of radius 6,367 km and distances are straight-line (chord)
distances in km, used for the neighbour order and the ``max_radius`` limit; reported radii are
great-circle distances in km. ``"cartesian"`` takes (x, y) in any unit. Locations at identical
coordinates are scanned as one location (SaTScan combines them too) and reported together.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.distance import cdist

from yifang.detect.algorithms import _scan_kernels
from yifang.detect.algorithms.result import DetectionResult

EARTH_RADIUS_KM = 6367.0
"""Earth radius SaTScan uses to place latitude/longitude on a sphere (km)."""

LLR_TIE_TOLERANCE = 1e-9
"""LLRs closer than this are ties when ranking clusters and counting replicates (SaTScan's)."""

MIN_REPORTED_LLR = 0.001
"""Secondary clusters with a smaller LLR are not reported (SaTScan's)."""

_CHUNK_ELEMENTS = 1 << 21
"""Cylinders evaluated at once by the NumPy path (bounds memory to a few tens of MB)."""

Analysis = Literal["prospective", "retrospective"]
CoordinatesType = Literal["cartesian", "lonlat"]
Engine = Literal["numba", "numpy"]


@dataclass(frozen=True)
class ScanCluster:
    """One space–time cluster (a cylinder) found by the scan.

    ``centre`` is the index of the centre location, ``locations`` the member location indices
    (nearest the centre first; locations at identical coordinates enter together), ``radius``
    the distance from the centre to the farthest member (km for longitude/latitude, else the
    coordinates' unit). ``start`` and ``end`` are the first and last day indices (0-based,
    inclusive) of the time window. ``observed`` and ``expected`` are ``c_A`` and ``μ_A``;
    ``llr`` the log likelihood ratio; ``p_value`` the Monte Carlo p-value (NaN without
    replicates); ``recurrence_interval`` in days for prospective analyses (NaN otherwise).
    """

    centre: int
    radius: float
    locations: NDArray[np.int64]
    start: int
    end: int
    observed: int
    expected: float
    llr: float
    p_value: float
    recurrence_interval: float

    @property
    def observed_over_expected(self) -> float:
        """Relative risk inside the cylinder, ``c_A / μ_A``."""
        return self.observed / self.expected if self.expected > 0 else float("inf")

    @property
    def days(self) -> int:
        """Length of the time window in days."""
        return self.end - self.start + 1


@dataclass(frozen=True)
class ScanResult:
    """Output of :func:`stp_scan`: the reported clusters, most likely first (by LLR).

    ``simulated_llr`` holds the largest LLR of each Monte Carlo replicate (the null
    distribution of the scan statistic). ``analysis_day`` is the last day of the study period
    (index into the input's time axis). ``observed_day`` and ``expected_day`` are each
    location's count and expected count ``μ_zd`` on the analysis day (for the detector
    adapter); ``total_cases`` is ``C``.
    """

    clusters: tuple[ScanCluster, ...]
    simulated_llr: NDArray[np.float64]
    analysis_day: int
    total_cases: int
    observed_day: NDArray[np.float64]
    expected_day: NDArray[np.float64]
    params: dict[str, Any] = field(default_factory=dict)
    method: str = "stp_scan"

    @property
    def primary(self) -> ScanCluster | None:
        """The most likely cluster, or None when no cylinder had a high rate."""
        return self.clusters[0] if self.clusters else None

    def critical_llr(self, alpha: float = 0.05) -> float:
        """The LLR a cluster must exceed to get ``p <= alpha`` (NaN if the replicates are too
        few to reach ``alpha``)."""
        return _critical_llr(self.simulated_llr, alpha)

    def to_detection_result(self, alpha: float = 0.05) -> DetectionResult:
        """Per-location alarms on the analysis day, shaped like the other detectors' results.

        Row 0 is the analysis day, column ``s`` location ``s``. A location inside a reported
        cluster carries that cluster's observed and expected counts, and as ``upperbound`` the
        largest count the same cylinder could hold without reaching ``p <= alpha``; any other
        location carries its count and expected count on the analysis day with the bound for
        that one-day, one-location cylinder. So ``alarm`` is ``observed > upperbound``, which
        for cluster members means the cluster's p-value is at most ``alpha``. ``extra`` holds
        per location ``p_value``, ``llr``, ``recurrence_interval`` (of its cluster, else NaN)
        and ``cluster`` (index into ``clusters``, else -1).
        """
        S = self.observed_day.shape[0]
        C = self.total_cases
        crit = self.critical_llr(alpha)
        observed = self.observed_day.astype(np.float64).copy()
        expected = self.expected_day.astype(np.float64).copy()
        cluster_of = np.full(S, -1, dtype=np.int64)
        for j, cl in enumerate(self.clusters):
            members = cl.locations[cluster_of[cl.locations] < 0]
            cluster_of[members] = j
            observed[members] = cl.observed
            expected[members] = cl.expected
        min_cases = int(self.params.get("min_cases", 2))
        upper = np.array([_largest_quiet_count(expected[s], C, crit, min_cases) for s in range(S)])
        alarm = np.zeros(S, dtype=bool)
        known = ~np.isnan(upper)
        alarm[known] = observed[known] > upper[known]
        p_value = np.full(S, np.nan)
        llr = np.full(S, np.nan)
        ri = np.full(S, np.nan)
        inside = cluster_of >= 0
        for name, arr in (("p_value", p_value), ("llr", llr), ("recurrence_interval", ri)):
            values = np.array([getattr(cl, name) for cl in self.clusters], dtype=np.float64)
            if values.size:
                arr[inside] = values[cluster_of[inside]]
        return DetectionResult(
            range=np.array([self.analysis_day], dtype=np.int64),
            observed=observed[None, :],
            upperbound=upper[None, :],
            alarm=alarm[None, :],
            expected=expected[None, :],
            extra={
                "p_value": p_value[None, :],
                "llr": llr[None, :],
                "recurrence_interval": ri[None, :],
                "cluster": cluster_of[None, :],
            },
            method=self.method,
            params={**self.params, "alpha": alpha},
        )


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------


def _as_case_counts(observed: ArrayLike) -> NDArray[np.int64]:
    """Validate ``observed`` (days × locations) as non-negative whole numbers; (T, S) int64."""
    arr = np.asarray(observed, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(
            f"observed must have shape (T, S) = (days, locations), got shape {arr.shape}"
        )
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"observed needs at least one day and one location, got {arr.shape}")
    bad = ~np.isfinite(arr) | (arr < 0) | (arr != np.round(arr))
    if bad.any():
        t, s = np.argwhere(bad)[0]
        raise ValueError(
            f"observed[{t}, {s}] = {arr[t, s]!r}: case counts must be whole numbers >= 0 "
            f"({int(bad.sum())} bad cells)"
        )
    return arr.astype(np.int64)


def _as_points(coordinates: ArrayLike, S: int, coordinates_type: str) -> NDArray[np.float64]:
    """Validate coordinates (S, 2) and return them as Cartesian points (S, 2) or (S, 3) in km."""
    xy = np.asarray(coordinates, dtype=np.float64)
    if xy.shape != (S, 2):
        raise ValueError(
            f"coordinates must have shape ({S}, 2), one row per location, got {xy.shape}"
        )
    bad = ~np.isfinite(xy).all(axis=1)
    if bad.any():
        raise ValueError(f"coordinates[{int(np.argmax(bad))}] is not finite: {xy[bad][0]}")
    if coordinates_type == "cartesian":
        return xy
    if coordinates_type != "lonlat":
        raise ValueError(
            f"coordinates_type must be 'cartesian' or 'lonlat', got {coordinates_type!r}"
        )
    lon, lat = xy[:, 0], xy[:, 1]
    out = (np.abs(lon) > 180) | (np.abs(lat) > 90)
    if out.any():
        i = int(np.argmax(out))
        raise ValueError(
            f"coordinates[{i}] = (lon {lon[i]}, lat {lat[i]}) is outside -180..180 / -90..90"
        )
    return lonlat_to_xyz(lon, lat)


def lonlat_to_xyz(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.float64]:
    """Place longitude/latitude (degrees) on SaTScan's sphere of radius 6,367 km; (n, 3) km."""
    lam = np.radians(np.asarray(lon, dtype=np.float64))
    phi = np.radians(np.asarray(lat, dtype=np.float64))
    return np.column_stack(
        (
            EARTH_RADIUS_KM * np.cos(lam) * np.cos(phi),
            EARTH_RADIUS_KM * np.sin(lam) * np.cos(phi),
            EARTH_RADIUS_KM * np.sin(phi),
        )
    )


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


# ---------------------------------------------------------------------------------------------
# Scanning window: neighbour orders and time windows
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Circles:
    """The circles around each (merged) location: neighbour order and limits.

    ``order[i, :n_neighbours[i]]`` are the locations of the circles about centroid ``i``,
    nearest first; entries beyond are the dummy index ``U`` (a location without cases), so
    padded circles repeat the largest allowed one. ``P[i, k]`` is the number of cases in the
    first ``k + 1`` neighbours (``Σ C_z``), ``distance[i, k]`` the distance to neighbour ``k``.
    """

    order: NDArray[np.intp]
    n_neighbours: NDArray[np.int64]
    P: NDArray[np.int64]
    distance: NDArray[np.float64]


def _merge_identical(points: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Unique points in lexicographic order and, for each input location, its unique index."""
    unique, inverse = np.unique(points, axis=0, return_inverse=True)
    return unique, inverse.reshape(-1)


def _circles(
    points: NDArray[np.float64],
    C_z: NDArray[np.int64],
    max_cases: float,
    max_radius: float | None,
) -> _Circles:
    """Order the neighbours of each centroid by distance and cut the circles at the limits.

    ``points`` must be sorted lexicographically (as :func:`numpy.unique` returns them), so
    that breaking distance ties by the smaller index is SaTScan's "smaller coordinates first".
    A circle keeps growing while it holds at most ``max_cases`` cases (a location that would
    push it past the limit stops it) and while the next neighbour lies within ``max_radius``.
    """
    U = points.shape[0]
    dist = cdist(points, points)
    rank = np.broadcast_to(np.arange(U), (U, U))
    order = np.lexsort((rank, dist), axis=1)
    sorted_dist = np.take_along_axis(dist, order, axis=1)
    cum = np.cumsum(C_z[order], axis=1)
    n = (cum <= max_cases).sum(axis=1)
    if max_radius is not None:
        n = np.minimum(n, (sorted_dist <= max_radius).sum(axis=1))
    K = max(int(n.max()), 1)
    k = np.arange(K)
    valid = k[None, :] < n[:, None]
    order_k = np.where(valid, order[:, :K], U)
    last = np.maximum(n - 1, 0)[:, None]
    P = np.where(valid, cum[:, :K], np.take_along_axis(cum, last, axis=1) * (n[:, None] > 0))
    return _Circles(
        order=order_k.astype(np.intp),
        n_neighbours=n.astype(np.int64),
        P=P.astype(np.int64),
        distance=sorted_dist[:, :K],
    )


def _windows(
    D: int, min_days: int, max_days: int, analysis: Analysis
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Start and end day (inclusive) of every time window, in SaTScan's scanning order.

    SaTScan runs through window ends in ascending order and, for each end, through the starts
    from the latest (shortest window) back; with strict improvement the first of equal LLRs is
    kept, so this order decides ties.
    """
    ends = [D - 1] if analysis == "prospective" else list(range(D))
    starts_out: list[int] = []
    ends_out: list[int] = []
    for e in ends:
        for length in range(min_days, max_days + 1):
            s = e - length + 1
            if s < 0:
                break
            starts_out.append(s)
            ends_out.append(e)
    return np.array(starts_out, dtype=np.int64), np.array(ends_out, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# Likelihood
# ---------------------------------------------------------------------------------------------


def poisson_llr(c: ArrayLike, mu: ArrayLike, C: float) -> NDArray[np.float64]:
    """Log likelihood ratio of cylinders with ``c`` cases where ``mu`` are expected, out of
    ``C`` cases in all; 0 where the rate is not high (``c <= mu``). Kulldorff et al. (2005)."""
    c_arr = np.asarray(c, dtype=np.float64)
    mu_arr = np.asarray(mu, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = c_arr * np.log(c_arr / mu_arr)
        rest = C - c_arr
        outside = np.where(rest > 0, rest * np.log(rest / (C - mu_arr)), 0.0)
        llr = inside + outside
    return np.where(c_arr > mu_arr, llr, 0.0)


def _log_table(C: int) -> NDArray[np.float64]:
    """``ln n`` for n = 0..C, with 0 in place of ``ln 0`` (it is only ever multiplied by 0)."""
    n = np.arange(C + 1, dtype=np.float64)
    n[0] = 1.0
    return np.log(n)


class _Scanner:
    """Evaluates every cylinder of one data set of window counts.

    ``engine="numba"`` runs the compiled loops of :mod:`._scan_kernels`; ``"numpy"`` is the
    array version (the reference the kernels are tested against, and slower): it evaluates the
    cylinders of a block of centroids at once. Expected counts depend only on the margins, which
    the permutation keeps, so there ``μ`` and its logarithms are computed once and reused by
    every replicate when they fit in memory.
    """

    def __init__(
        self,
        circles: _Circles,
        T: NDArray[np.int64],
        C: int,
        min_cases: int,
        engine: Engine = "numba",
        cache_limit: int = 1 << 23,
    ) -> None:
        if engine not in ("numba", "numpy"):
            raise ValueError(f"engine must be 'numba' or 'numpy', got {engine!r}")
        self.circles = circles
        self.T = T.astype(np.int64)
        self.C = C
        self.min_cases = min_cases
        self.engine = engine
        self.log_n = _log_table(C)
        self.log_P = self.log_n[circles.P]
        U, K = circles.order.shape
        nW = T.shape[0]
        step = max(1, _CHUNK_ELEMENTS // max(K * nW, 1))
        self.chunks = [slice(i, min(i + step, U)) for i in range(0, U, step)]
        self.cache: list[tuple[NDArray[np.float64], ...]] | None = None
        if engine == "numpy" and U * K * nW <= cache_limit:
            self.cache = [self._constants(ch) for ch in self.chunks]

    def _kernel_args(self, W: NDArray[np.int64]) -> tuple[Any, ...]:
        cl = self.circles
        return (
            W,
            cl.order,
            cl.n_neighbours,
            cl.P,
            self.log_P,
            self.T,
            self.C,
            self.log_n,
            self.min_cases,
        )

    def _constants(self, ch: slice) -> tuple[NDArray[np.float64], ...]:
        """``μ``, ``ln μ`` and ``ln(C − μ)`` for the cylinders about a block of centroids."""
        C = float(self.C)
        P = self.circles.P[ch, :, None].astype(np.float64)
        T = self.T[None, None, :].astype(np.float64)
        mu = P * T / C
        with np.errstate(divide="ignore", invalid="ignore"):
            log_mu = np.log(P) + np.log(T) - np.log(C)
            log_rest = np.log(C - mu)
        return mu, log_mu, log_rest

    def _llr_block(self, W: NDArray[np.int64], k: int) -> NDArray[np.float64]:
        """LLR of all cylinders about the centroids of block ``k``, shape (n, K, nW); 0 where
        the rate is not high or fewer than ``min_cases`` cases fall inside."""
        ch = self.chunks[k]
        c = np.cumsum(W[self.circles.order[ch]], axis=1)
        mu, log_mu, log_rest = self.cache[k] if self.cache is not None else self._constants(ch)
        high = (c > mu) & (c >= self.min_cases)
        rest = self.C - c
        with np.errstate(invalid="ignore"):
            value = c * (self.log_n[c] - log_mu) + rest * (self.log_n[rest] - log_rest)
        return np.where(high, value, 0.0)

    def maximum(self, W: NDArray[np.int64]) -> float:
        """The scan statistic: the largest LLR over all cylinders."""
        if self.engine == "numba":
            return float(_scan_kernels.max_llr(*self._kernel_args(W)))
        return max(float(self._llr_block(W, k).max(initial=0.0)) for k in range(len(self.chunks)))

    def best_per_centroid(
        self, W: NDArray[np.int64]
    ) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
        """Each centroid's best cylinder: LLR, neighbour index and window index.

        The first cylinder in scanning order (fewest neighbours, then window order) wins ties.
        """
        if self.engine == "numba":
            return _scan_kernels.best_per_centroid(*self._kernel_args(W))
        U, K = self.circles.order.shape
        nW = self.T.shape[0]
        best = np.zeros(U)
        k_best = np.zeros(U, dtype=np.int64)
        w_best = np.zeros(U, dtype=np.int64)
        for k, ch in enumerate(self.chunks):
            llr = self._llr_block(W, k).reshape(ch.stop - ch.start, K * nW)
            flat = np.argmax(llr, axis=1)
            best[ch] = llr[np.arange(llr.shape[0]), flat]
            k_best[ch], w_best[ch] = np.divmod(flat, nW)
        return best, k_best, w_best


def _window_counts(
    N: NDArray[np.int64], starts: NDArray[np.int64], ends: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Cases of each location in each window, plus a zero row for the padding index (U+1, nW)."""
    U, D = N.shape
    S = np.zeros((U + 1, D + 1), dtype=np.int64)
    np.cumsum(N, axis=1, out=S[:U, 1:])
    return S[:, ends + 1] - S[:, starts]


# ---------------------------------------------------------------------------------------------
# The scan
# ---------------------------------------------------------------------------------------------


def stp_scan(
    observed: ArrayLike,
    coordinates: ArrayLike,
    *,
    coordinates_type: CoordinatesType = "cartesian",
    analysis: Analysis = "prospective",
    analysis_day: int | None = None,
    max_share: float = 0.5,
    max_radius: float | None = None,
    max_days: int = 7,
    min_days: int = 1,
    min_cases: int = 2,
    n_replicates: int = 999,
    seed: int | np.random.Generator | None = None,
    engine: Engine = "numba",
    workers: int = 1,
) -> ScanResult:
    """Space–time permutation scan (Kulldorff et al. 2005) for clusters of high rates.

    Parameters
    ----------
    observed
        Cases per day and location, shape (T, S): row ``t`` is day ``t``, column ``s``
        location ``s`` (whole numbers >= 0). Days after ``analysis_day`` are ignored.
    coordinates
        One row per location: (x, y) for ``coordinates_type="cartesian"``, or (longitude,
        latitude) in degrees for ``"lonlat"`` — a region's centroid.
    analysis
        ``"prospective"`` (windows end on the analysis day: surveillance) or
        ``"retrospective"`` (windows anywhere in the study period).
    analysis_day
        Last day of the study period (0-based index); default the last row of ``observed``.
    max_share
        Largest share of all cases a circle may hold, in (0, 0.5] (SaTScan's maximum spatial
        cluster size, 50% by default).
    max_radius
        Optional largest circle radius: km for longitude/latitude, else coordinate units.
    max_days, min_days
        Longest and shortest time window in days (SaTScan: maximum/minimum temporal cluster
        size). ``max_days`` is cut to the study period's length.
    min_cases
        Fewest cases in a cluster (SaTScan's minimum cases in clusters for high rates).
    n_replicates
        Monte Carlo replicates (999 by default; 0 for no p-values).
    seed
        Seed or :class:`numpy.random.Generator` for the permutations.
    engine
        ``"numba"`` (compiled loops, default) or ``"numpy"`` (array reference, slower); both
        give the same clusters and, for the same seed, the same p-values.
    workers
        Threads scanning the replicates (1 by default); the result does not depend on it.

    Returns
    -------
    ScanResult
        The most likely cluster and the non-overlapping secondary clusters, by LLR.
    """
    N_ts = _as_case_counts(observed)
    T_all, S = N_ts.shape
    day = T_all - 1 if analysis_day is None else int(analysis_day)
    if not 0 <= day < T_all:
        raise ValueError(f"analysis_day must lie in 0..{T_all - 1}, got {analysis_day}")
    if analysis not in ("prospective", "retrospective"):
        raise ValueError(f"analysis must be 'prospective' or 'retrospective', got {analysis!r}")
    if not 0 < max_share <= 0.5:
        raise ValueError(f"max_share must lie in (0, 0.5], got {max_share}")
    if max_radius is not None and not max_radius > 0:
        raise ValueError(f"max_radius must be > 0 or None, got {max_radius}")
    if min_days < 1 or max_days < min_days:
        raise ValueError(f"need 1 <= min_days <= max_days, got {min_days}, {max_days}")
    if min_cases < 1:
        raise ValueError(f"min_cases must be >= 1, got {min_cases}")
    if n_replicates < 0:
        raise ValueError(f"n_replicates must be >= 0, got {n_replicates}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    points = _as_points(coordinates, S, coordinates_type)

    D = day + 1
    N_ts = N_ts[:D]
    max_days_used = min(max_days, D)
    params: dict[str, Any] = {
        "coordinates_type": coordinates_type,
        "analysis": analysis,
        "max_share": max_share,
        "max_radius": max_radius,
        "max_days": max_days_used,
        "min_days": min_days,
        "min_cases": min_cases,
        "n_replicates": n_replicates,
        "engine": engine,
    }

    # Locations at identical coordinates are one location for the scan.
    unique, unit = _merge_identical(points)
    U = unique.shape[0]
    N = np.zeros((U, D), dtype=np.int64)
    np.add.at(N, unit, N_ts.T)
    C_z = N.sum(axis=1)
    C_d = N.sum(axis=0)
    C = int(C_z.sum())
    observed_day = N_ts[D - 1].astype(np.float64)
    expected_day = N_ts.sum(axis=0) * (C_d[D - 1] / C) if C > 0 else np.zeros(S, dtype=np.float64)
    empty = ScanResult(
        clusters=(),
        simulated_llr=np.zeros(0),
        analysis_day=day,
        total_cases=C,
        observed_day=observed_day,
        expected_day=np.asarray(expected_day, dtype=np.float64),
        params=params,
    )
    if C == 0 or min_days > D:
        return empty

    circles = _circles(unique, C_z, max_share * C, max_radius)
    starts, ends = _windows(D, min_days, max_days_used, analysis)
    day_cum = np.concatenate(([0], np.cumsum(C_d)))
    T_w = day_cum[ends + 1] - day_cum[starts]
    scanner = _Scanner(circles, T_w, C, min_cases, engine)

    best, k_best, w_best = scanner.best_per_centroid(_window_counts(N, starts, ends))
    candidates = _rank_candidates(best, circles, k_best)

    sims = _replicates(N, scanner, starts, ends, n_replicates, _rng(seed), workers)

    members_of_unit = [np.flatnonzero(unit == u) for u in range(U)]
    clusters: list[ScanCluster] = []
    taken = np.zeros(U, dtype=bool)
    for i in candidates:
        units = circles.order[i, : k_best[i] + 1]
        if taken[units].any():
            continue
        llr = float(best[i])
        p = _p_value(llr, sims) if n_replicates > 0 else float("nan")
        if clusters and (llr < MIN_REPORTED_LLR or (n_replicates > 0 and p >= 1.0)):
            break
        taken[units] = True
        w = int(w_best[i])
        s, e = int(starts[w]), int(ends[w])
        c_A = int(N[units, s : e + 1].sum())
        mu_A = float(circles.P[i, k_best[i]]) * float(T_w[w]) / C
        chord = float(circles.distance[i, k_best[i]])
        clusters.append(
            ScanCluster(
                centre=int(members_of_unit[i][0]),
                radius=_reported_radius(chord, coordinates_type),
                locations=np.concatenate([members_of_unit[u] for u in units]).astype(np.int64),
                start=s,
                end=e,
                observed=c_A,
                expected=mu_A,
                llr=llr,
                p_value=p,
                recurrence_interval=(
                    max(1.0, 1.0 / p) if analysis == "prospective" and p == p else float("nan")
                ),
            )
        )
        if n_replicates == 0 and len(clusters) >= 10:
            break
    return ScanResult(
        clusters=tuple(clusters),
        simulated_llr=sims,
        analysis_day=day,
        total_cases=C,
        observed_day=observed_day,
        expected_day=np.asarray(expected_day, dtype=np.float64),
        params=params,
    )


def _rank_candidates(
    best: NDArray[np.float64], circles: _Circles, k_best: NDArray[np.int64]
) -> list[int]:
    """Centroids whose best cylinder has a high rate, by LLR descending; near-equal LLRs
    (within 1e-9) rank the cylinder with fewer locations first, then the lower centroid index
    (centroids are in coordinate order)."""
    idx = [int(i) for i in np.flatnonzero(best > 0)]
    order = sorted(idx, key=lambda i: -best[i])
    # Stable pass that applies SaTScan's tie rule within groups of near-equal LLR.
    ranked: list[int] = []
    g = 0
    while g < len(order):
        h = g + 1
        while h < len(order) and abs(best[order[g]] - best[order[h]]) < LLR_TIE_TOLERANCE:
            h += 1
        ranked.extend(sorted(order[g:h], key=lambda i: (int(k_best[i]), i)))
        g = h
    return ranked


def _replicates(
    N: NDArray[np.int64],
    scanner: _Scanner,
    starts: NDArray[np.int64],
    ends: NDArray[np.int64],
    n_replicates: int,
    rng: np.random.Generator,
    workers: int = 1,
) -> NDArray[np.float64]:
    """The scan statistic of ``n_replicates`` data sets with the days permuted among cases.

    The permutations are drawn one after another from ``rng`` in this thread, so the result
    does not depend on ``workers``; with ``workers > 1`` the replicates are scanned in threads
    (the compiled kernels release the GIL), a batch at a time to bound memory.
    """
    U, D = N.shape
    cell = np.repeat(np.arange(U * D), N.ravel())
    loc, day = np.divmod(cell, D)
    base = loc * D

    def draw() -> NDArray[np.int64]:
        Nr = np.bincount(base + rng.permutation(day), minlength=U * D).reshape(U, D)
        return _window_counts(Nr, starts, ends)

    out = np.empty(n_replicates)
    if workers <= 1:
        for r in range(n_replicates):
            out[r] = scanner.maximum(draw())
        return out
    batch = 4 * workers
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for first in range(0, n_replicates, batch):
            data = [draw() for _ in range(min(batch, n_replicates - first))]
            out[first : first + len(data)] = list(pool.map(scanner.maximum, data))
    return out


def _p_value(llr: float, sims: NDArray[np.float64]) -> float:
    """Monte Carlo p-value: (1 + replicates with a maximum at least ``llr``) / (R + 1)."""
    beaten = int(np.count_nonzero(sims >= llr - LLR_TIE_TOLERANCE))
    return (1 + beaten) / (sims.shape[0] + 1)


def _critical_llr(sims: NDArray[np.float64], alpha: float) -> float:
    """The LLR above which ``p <= alpha``: the (k+1)-th largest replicate maximum, where ``k``
    is the number of replicates a cluster may lose to."""
    k = int(np.floor(alpha * (sims.shape[0] + 1) + 1e-9)) - 1
    if sims.shape[0] == 0 or k < 0:
        return float("nan")
    if k >= sims.shape[0]:
        return 0.0
    return float(np.sort(sims)[::-1][k])


def _largest_quiet_count(mu: float, C: int, crit: float, min_cases: int) -> float:
    """Largest count a cylinder with expectation ``mu`` can hold and still have LLR <= crit."""
    if not np.isfinite(crit) or C == 0:
        return float("nan")
    c = np.arange(C + 1, dtype=np.float64)
    llr = poisson_llr(c, np.full_like(c, mu), float(C))
    alarming = (llr > crit) & (c >= min_cases)
    if not alarming.any():
        return float(C)
    return float(np.argmax(alarming) - 1)


def _reported_radius(chord: float, coordinates_type: str) -> float:
    """Cluster radius: the great-circle distance for longitude/latitude, else the distance."""
    if coordinates_type == "lonlat":
        return float(2 * EARTH_RADIUS_KM * np.arcsin(min(1.0, chord / (2 * EARTH_RADIUS_KM))))
    return chord


def counts_from_cases(
    location: Sequence[int] | NDArray[np.integer],
    day: Sequence[int] | NDArray[np.integer],
    n_locations: int,
    n_days: int,
) -> NDArray[np.int64]:
    """Turn a line list (one location index and day index per case) into the (T, S) counts
    :func:`stp_scan` takes. Rows with an index outside the ranges are reported by position."""
    loc = np.asarray(location, dtype=np.int64).ravel()
    d = np.asarray(day, dtype=np.int64).ravel()
    if loc.shape != d.shape:
        raise ValueError(f"location and day differ in length: {loc.shape[0]} vs {d.shape[0]}")
    bad = (loc < 0) | (loc >= n_locations) | (d < 0) | (d >= n_days)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"case {i}: location {loc[i]} / day {d[i]} outside 0..{n_locations - 1} / "
            f"0..{n_days - 1} ({int(bad.sum())} such cases)"
        )
    out = np.zeros((n_days, n_locations), dtype=np.int64)
    np.add.at(out, (d, loc), 1)
    return out
