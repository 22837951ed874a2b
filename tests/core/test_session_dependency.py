"""Routes take their session through ``yifang.core.db.SESSION`` only.

``Depends(get_session)`` would use FastAPI's default scope, which commits *after* the answer
is sent (see tests/web/test_commit_order.py); this keeps a new route from bringing it back.
"""

from __future__ import annotations

from pathlib import Path

import yifang

PACKAGE = Path(yifang.__file__).parent


def test_no_route_depends_on_get_session_directly() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "core" / "db.py" and "get_session" in path.read_text("utf-8")
    ]
    assert offenders == [], f"use yifang.core.db.SESSION instead of get_session in {offenders}"
