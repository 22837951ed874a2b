"""Jurisdiction: what part of the data a caller may see.

Every query that returns case data takes a :class:`Scope` and applies it in SQL, so the rule
is enforced where the data is read, not by hiding links. Accounts and roles (which produce a
scope from a logged-in user) build on this.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scope:
    """The slice of data a caller may read.

    ``region_prefix`` restricts to address/report regions whose GB/T 2260 code starts with it
    (``"640521"`` = 中宁县; ``None`` = everywhere). ``organisation_code`` restricts to cards
    reported by that organisation (a hospital sees its own cards). ``identified`` is False for
    callers that may only see de-identified, aggregated data.
    """

    region_prefix: str | None = None
    organisation_code: str | None = None
    identified: bool = True
    actor: str = "system"

    @classmethod
    def everything(cls, actor: str = "system") -> Scope:
        """The unrestricted scope of system jobs and the city CDC."""
        return cls(actor=actor)
