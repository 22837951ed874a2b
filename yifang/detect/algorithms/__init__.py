"""Outbreak-detection algorithms: pure functions over count arrays, no database.

Each function takes ``observed`` of shape (T,) or (T, S) and returns a
:class:`~yifang.detect.algorithms.result.DetectionResult`. Usable on its own as a library::

    from yifang.detect import farrington_flexible
"""

from yifang.detect.algorithms.cusum import cusum
from yifang.detect.algorithms.ears import ears_c
from yifang.detect.algorithms.epiestim import ReproductionEstimate, discr_si, estimate_r
from yifang.detect.algorithms.essence import adaptive_regression, essence_switch, ewma
from yifang.detect.algorithms.farrington import (
    NOUFAILY_2013,
    ORIGINAL_FARRINGTON,
    farrington,
    farrington_flexible,
)
from yifang.detect.algorithms.fixed import CIDARS_SINGLE_CASE_DISEASES, fixed_threshold
from yifang.detect.algorithms.mpm import CIDARS_MPM_PERCENTILES, mpm
from yifang.detect.algorithms.result import DetectionResult
from yifang.detect.algorithms.scan import ScanCluster, ScanResult, counts_from_cases, stp_scan

__all__ = [
    "CIDARS_MPM_PERCENTILES",
    "CIDARS_SINGLE_CASE_DISEASES",
    "NOUFAILY_2013",
    "ORIGINAL_FARRINGTON",
    "DetectionResult",
    "ReproductionEstimate",
    "ScanCluster",
    "ScanResult",
    "adaptive_regression",
    "counts_from_cases",
    "cusum",
    "discr_si",
    "ears_c",
    "essence_switch",
    "estimate_r",
    "ewma",
    "farrington",
    "farrington_flexible",
    "fixed_threshold",
    "mpm",
    "stp_scan",
]
