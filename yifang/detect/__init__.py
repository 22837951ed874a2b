"""Early warning: outbreak-detection algorithms (``yifang.detect.algorithms``, a pure NumPy
library) and the engine that runs them over the store and records signals."""

from yifang.detect.algorithms import *  # noqa: F403
from yifang.detect.algorithms import __all__  # noqa: F401
