"""Compiled inner loops of the space–time permutation scan (see :mod:`.scan`).

For each centroid the circle grows one neighbour at a time; the cases of the new neighbour in
every time window are added to the running cylinder counts ``c`` and each cylinder's log
likelihood ratio is evaluated where the rate is high. Logarithms of counts come from a table
(``log_n[c] = ln c``, also giving ``ln P``) and ``ln μ = ln P + ln T − ln C``, so a cylinder
costs one logarithm, ``ln(C − μ)``, and none at all in the replicates when a cheap upper bound
shows it cannot beat the best cylinder found so far (``ln x <= x − 1`` bounds the second term
of the LLR).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray


@njit(cache=True, nogil=True)
def _llr(c: int, mu: float, log_mu: float, C: int, log_n: NDArray[np.float64]) -> float:
    """``c ln(c/μ) + (C − c) ln((C − c)/(C − μ))``; the caller has checked ``c > μ``."""
    rest = C - c
    value = c * (log_n[c] - log_mu)
    if rest > 0:
        value += rest * (log_n[rest] - np.log(C - mu))
    return value


@njit(cache=True, nogil=True)
def best_per_centroid(
    W: NDArray[np.int64],
    order: NDArray[np.intp],
    n_neighbours: NDArray[np.int64],
    P: NDArray[np.int64],
    log_P: NDArray[np.float64],
    T: NDArray[np.int64],
    C: int,
    log_n: NDArray[np.float64],
    min_cases: int,
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """Each centroid's best cylinder (LLR, neighbour index, window index), first in scanning
    order on ties (fewest neighbours, then window order), as SaTScan keeps them."""
    U = order.shape[0]
    nW = T.shape[0]
    log_C = np.log(C)
    log_T_C = np.log(np.maximum(T, 1).astype(np.float64)) - log_C
    best = np.zeros(U)
    k_best = np.zeros(U, dtype=np.int64)
    w_best = np.zeros(U, dtype=np.int64)
    for i in range(U):
        c = np.zeros(nW, dtype=np.int64)
        top = 0.0
        kt = 0
        wt = 0
        for k in range(n_neighbours[i]):
            z = order[i, k]
            Pk = P[i, k]
            if Pk == 0:
                continue
            lp = log_P[i, k]
            for w in range(nW):
                c[w] += W[z, w]
                cw = c[w]
                if cw < min_cases:
                    continue
                mu = Pk * T[w] / C
                if cw > mu:
                    value = _llr(cw, mu, lp + log_T_C[w], C, log_n)
                    if value > top:
                        top = value
                        kt = k
                        wt = w
        best[i] = top
        k_best[i] = kt
        w_best[i] = wt
    return best, k_best, w_best


@njit(cache=True, nogil=True, fastmath=True)
def _bounds(
    c: NDArray[np.int64],
    row: NDArray[np.int64],
    Pk: float,
    log_P: float,
    T: NDArray[np.float64],
    log_T_C: NDArray[np.float64],
    C: int,
    log_n: NDArray[np.float64],
    min_cases: int,
    out: NDArray[np.float64],
) -> float:
    """Add a neighbour's window counts ``row`` to ``c`` and bound each cylinder's LLR from
    above (0 where the rate is not high); return the largest bound. Branch-free, so the
    compiler vectorises it; the bounds only decide which cylinders to evaluate exactly."""
    top = 0.0
    Cf = float(C)
    for w in range(c.shape[0]):
        cw = c[w] + row[w]
        c[w] = cw
        mu = Pk * T[w] / Cf
        inside = cw * (log_n[cw] - log_P - log_T_C[w])
        bound = inside - (C - cw) * (cw - mu) / (Cf - mu)
        ok = (cw >= min_cases) & (cw > mu)
        bound = bound if ok else 0.0
        out[w] = bound
        top = max(top, bound)
    return top


@njit(cache=True, nogil=True)
def max_llr(
    W: NDArray[np.int64],
    order: NDArray[np.intp],
    n_neighbours: NDArray[np.int64],
    P: NDArray[np.int64],
    log_P: NDArray[np.float64],
    T: NDArray[np.int64],
    C: int,
    log_n: NDArray[np.float64],
    min_cases: int,
) -> float:
    """The scan statistic (largest LLR over all cylinders) of one data set.

    A cylinder is evaluated exactly only when its bound (see :func:`_bounds`) comes within a
    safety margin of the best LLR so far, which after the first few circles is rare.
    """
    U = order.shape[0]
    nW = T.shape[0]
    log_C = np.log(C)
    Tf = T.astype(np.float64)
    log_T_C = np.log(np.maximum(Tf, 1.0)) - log_C
    c = np.zeros(nW, dtype=np.int64)
    bound = np.zeros(nW)
    top = 0.0
    for i in range(U):
        c[:] = 0
        for k in range(n_neighbours[i]):
            z = order[i, k]
            Pk = P[i, k]
            if Pk == 0:
                continue
            lp = log_P[i, k]
            largest = _bounds(c, W[z], float(Pk), lp, Tf, log_T_C, C, log_n, min_cases, bound)
            if largest + 1e-6 * (1.0 + largest) <= top:
                continue
            for w in range(nW):
                if bound[w] + 1e-6 * (1.0 + bound[w]) > top:
                    cw = c[w]
                    mu = Pk * T[w] / C
                    value = _llr(cw, mu, lp + log_T_C[w], C, log_n)
                    if value > top:
                        top = value
    return top
