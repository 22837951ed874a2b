"""Yifang (医防): the city's infectious-disease surveillance, early-warning and response platform.

Each sub-package is one capability of the product; see ``DEVELOPERS.md`` for the layout and
the direction in which they may import each other.
"""

__version__ = "0.1.0"
