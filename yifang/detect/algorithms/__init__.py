"""Outbreak-detection algorithms: pure functions over count arrays, no database.

Each function takes ``observed`` of shape (T,) or (T, S) and returns a
:class:`~yifang.detect.algorithms.result.DetectionResult`. Usable on its own as a library::

    from yifang.detect import farrington_flexible
"""

from yifang.detect.algorithms.result import DetectionResult
from yifang.detect.algorithms.scan import ScanCluster, ScanResult, counts_from_cases, stp_scan

__all__ = ["DetectionResult"]
__all__ += ["ScanCluster", "ScanResult", "counts_from_cases", "stp_scan"]
# Each algorithm module adds its import here and its names to __all__ (one line each).
