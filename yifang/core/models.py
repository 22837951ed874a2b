"""Tables owned by core."""

from yifang.core.accounts import ApiToken, LoginAttempt, Role, SiteSecret, User
from yifang.core.audit import AuditEntry

__all__ = ["ApiToken", "AuditEntry", "LoginAttempt", "Role", "SiteSecret", "User"]
