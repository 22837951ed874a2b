"""Tables owned by core."""

from yifang.core.audit import AuditEntry

__all__ = ["AuditEntry"]
