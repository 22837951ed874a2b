"""The result every detection algorithm returns, and the input handling they share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class DetectionResult:
    """Output of one algorithm over ``range`` time points (and S series).

    Arrays have shape ``(len(range),)`` for a single series or ``(len(range), S)``; row ``i``
    is time ``range[i]``. ``upperbound`` is the alarm threshold (NaN where the method gives
    none, e.g. a failed fit), ``alarm`` is True where the observed count exceeds it (never
    where it is NaN), ``expected`` is the method's baseline expectation where it has one.
    ``extra`` holds method-specific arrays of the same shape (e.g. ``trend``, ``score``).
    """

    range: NDArray[np.int64]
    observed: NDArray[np.float64]
    upperbound: NDArray[np.float64]
    alarm: NDArray[np.bool_]
    expected: NDArray[np.float64] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    method: str = ""
    params: dict[str, Any] = field(default_factory=dict)


def as_counts(observed: ArrayLike) -> tuple[NDArray[np.float64], bool]:
    """Return ``observed`` as a float (T, S) array (NaN allowed) and whether it was 1-D."""
    arr = np.asarray(observed, dtype=np.float64)
    if arr.ndim == 1:
        return arr[:, None], True
    if arr.ndim != 2:
        raise ValueError(f"observed must have shape (T,) or (T, S), got {arr.shape}")
    return arr, False


def as_range(
    range_: Sequence[int] | NDArray[np.integer] | None, T: int, default_start: int
) -> NDArray[np.int64]:
    """Validate 0-based time indices; ``None`` means ``default_start .. T-1``."""
    if range_ is None:
        return np.arange(max(default_start, 0), T, dtype=np.int64)
    idx = np.asarray(range_, dtype=np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= T):
        raise ValueError(f"range must lie in 0..{T - 1}")
    return idx


def squeeze(arr: NDArray[Any], one_d: bool) -> NDArray[Any]:
    """Drop the series axis again for 1-D input."""
    return arr[:, 0] if one_d else arr
