"""Every table of every capability, imported in one place for Alembic and the test fixtures.

Like ``web`` and ``cli`` this module assembles the capabilities; nothing else imports it.
"""

from yifang.cases import models as cases_models
from yifang.catalog import models as catalog_models
from yifang.core import models as core_models
from yifang.core.db import Base
from yifang.detect import models as detect_models
from yifang.hospital import models as hospital_models  # noqa: F401
from yifang.respond import models as respond_models  # noqa: F401
from yifang.simulate import models as simulate_models

__all__ = [
    "Base",
    "cases_models",
    "catalog_models",
    "core_models",
    "detect_models",
    "simulate_models",
]
