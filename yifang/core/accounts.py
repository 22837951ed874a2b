"""Accounts: users, roles (with their permissions as data), API tokens and login attempts.

Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106's second recommended
parameter set) and re-hashed on login when the parameters change. The password policy follows
China's Multi-Level Protection Scheme (等保 2.0) practice: a minimum length and at least three
of the four character classes; it also refuses the user name and common passwords. After
``lockout_failures`` failed logins within ``lockout_window_minutes`` the account is locked for
``lockout_minutes``; every attempt, good or bad, is kept in ``login_attempt`` and the audit
trail. API tokens for machine clients (hospital systems) are random strings shown once; only
their SHA-256 is stored, so a stolen database does not yield working tokens.

Roles are loaded from ``yifang/core/data/roles.yaml``; an administrator may then edit them,
and a reload never overwrites an edited role.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    column,
    func,
    select,
    table,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from yifang.core import audit
from yifang.core.audit import BigId
from yifang.core.db import Base, utcnow

ROLES_FILE = Path(__file__).parent / "data" / "roles.yaml"

#: What part of the case data a role sees; see ``yifang.core.auth.scope_for``.
SCOPE_KINDS = ("organisation", "county", "city", "aggregate")


class AccountSettings(BaseSettings):
    """Password policy, lockout and token knobs, read from ``YIFANG_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="YIFANG_", env_file=".env", extra="ignore")

    password_min_length: int = Field(default=8, ge=6, description="Characters.")
    password_min_classes: int = Field(
        default=3, ge=1, le=4, description="Of lower case, upper case, digits, other symbols."
    )
    lockout_failures: int = Field(default=5, ge=1, description="Failed logins before a lock.")
    lockout_window_minutes: int = Field(default=15, ge=1, description="Failures counted within.")
    lockout_minutes: int = Field(default=15, ge=1, description="How long an account stays locked.")
    token_days: int = Field(default=365, ge=1, description="Default lifetime of an API token.")


@lru_cache(maxsize=1)
def get_account_settings() -> AccountSettings:
    """The process-wide account settings, read once."""
    return AccountSettings()


# --------------------------------------------------------------------------------------------
# Tables


class Role(Base):
    """A role and its permissions (data an administrator may change)."""

    __tablename__ = "role"

    code: Mapped[str] = mapped_column(String(48), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(String(16))  # one of SCOPE_KINDS
    permissions: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    edited_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def allows(self, permission: str) -> bool:
        """Whether this role grants ``permission``."""
        return self.active and permission in (self.permissions or [])


class User(Base):
    """An account. ``organisation_code`` and ``region_code`` (GB/T 2260) give its jurisdiction.

    ``department`` names the bureau of an other-department liaison (see roles.yaml).
    ``session_version`` is written into each session cookie; raising it (logout, password
    change, deactivation) invalidates every cookie issued before.
    """

    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    role_code: Mapped[str] = mapped_column(ForeignKey("role.code"), index=True)
    role: Mapped[Role] = relationship(lazy="joined")
    organisation_code: Mapped[str | None] = mapped_column(String(32), index=True)
    region_code: Mapped[str | None] = mapped_column(String(12))
    department: Mapped[str | None] = mapped_column(String(32))
    phone: Mapped[str | None] = mapped_column(String(20))
    language: Mapped[str | None] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column()
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    last_login_at: Mapped[datetime | None] = mapped_column()
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ApiToken(Base):
    """A bearer token of a machine client; only the SHA-256 of the secret is stored."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists to tell tokens apart
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class LoginAttempt(Base):
    """One login attempt, successful or not (also the source of the lockout count)."""

    __tablename__ = "login_attempt"
    __table_args__ = (Index("ix_login_attempt_user_at", "username", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    username: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(Integer)
    success: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(String(32))  # ok, bad_password, locked, ...
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))


class SiteSecret(Base):
    """A generated secret kept in the database (the session-cookie signing key).

    Used when ``YIFANG_SECRET_KEY`` is not set, so every worker process and every restart
    signs with the same key without a file to manage.
    """

    __tablename__ = "site_secret"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def site_secret(session: Session, name: str) -> str:
    """The secret called ``name``, created (random, 384 bits) on first use.

    Created inside a savepoint, so a race with another worker only undoes that insert.
    """
    row = session.get(SiteSecret, name)
    if row is not None:
        return row.value
    try:
        with session.begin_nested():
            session.add(SiteSecret(name=name, value=secrets.token_urlsafe(48)))
    except IntegrityError:  # another worker created it at the same moment
        pass
    row = session.get(SiteSecret, name)
    assert row is not None
    return row.value


# --------------------------------------------------------------------------------------------
# Passwords

_hasher = PasswordHasher()
# Verified against when the user name is unknown, so that a miss costs as much as a hit.
_DUMMY_HASH = _hasher.hash("not-a-real-password")

_COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "password123",
        "passw0rd",
        "p@ssw0rd",
        "p@ssword1",
        "admin123",
        "admin@123",
        "qwerty123",
        "qwer1234",
        "abc12345",
        "abcd1234",
        "1qaz2wsx",
        "1qaz@wsx",
        "a1234567",
        "12345678",
        "123456789",
        "11111111",
        "88888888",
        "iloveyou",
        "woaini1314",
        "aa123456",
        "zxcvbnm1",
        "yifang123",
        "welcome1",
    }
)


def hash_password(password: str) -> str:
    """The Argon2id hash of ``password`` (salt and parameters included in the string)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``; malformed hashes never match."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class PasswordPolicyError(ValueError):
    """A password that the policy refuses; ``problems`` lists every reason, in words."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def password_problems(
    password: str, username: str = "", settings: AccountSettings | None = None
) -> list[str]:
    """Every way ``password`` breaks the policy (empty when it is acceptable).

    Messages are codes with parameters, e.g. ``"too_short:8"``, so the web layer can show
    them in the user's language.
    """
    settings = settings or get_account_settings()
    problems: list[str] = []
    if len(password) < settings.password_min_length:
        problems.append(f"too_short:{settings.password_min_length}")
    classes = sum(
        [
            any(c in string.ascii_lowercase for c in password),
            any(c in string.ascii_uppercase for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        ]
    )
    if classes < settings.password_min_classes:
        problems.append(f"too_few_classes:{settings.password_min_classes}")
    if username and username.lower() in password.lower():
        problems.append("contains_username")
    if password.lower() in _COMMON_PASSWORDS:
        problems.append("too_common")
    if password != password.strip():
        problems.append("surrounding_spaces")
    return problems


def check_password_policy(password: str, username: str = "") -> None:
    """Raise :class:`PasswordPolicyError` when ``password`` breaks the policy."""
    problems = password_problems(password, username)
    if problems:
        raise PasswordPolicyError(problems)


def generate_password(length: int = 14) -> str:
    """A random password that satisfies the policy (for demo users and resets)."""
    alphabet = string.ascii_letters + string.digits + "-_#@%+"
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if not password_problems(candidate):
            return candidate


# --------------------------------------------------------------------------------------------
# Roles


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What a role reload did (counts of rows)."""

    added: int
    updated: int
    kept_edited: int


def read_roles_file(path: Path = ROLES_FILE) -> dict[str, Any]:
    """The parsed roles file, checked: every role has a known scope and a permission list."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    roles = data.get("roles") or []
    for i, role in enumerate(roles):
        for key in ("code", "name_zh", "name_en", "scope", "permissions"):
            if key not in role:
                raise ValueError(f"{path.name}: role #{i + 1} has no '{key}'")
        if role["scope"] not in SCOPE_KINDS:
            raise ValueError(
                f"{path.name}: role '{role['code']}' has scope '{role['scope']}', "
                f"expected one of {', '.join(SCOPE_KINDS)}"
            )
    return data


def departments(path: Path = ROLES_FILE) -> list[dict[str, str]]:
    """The departments a liaison may belong to (code, name_zh, name_en)."""
    return list(read_roles_file(path).get("departments") or [])


def load_roles(session: Session, path: Path = ROLES_FILE) -> LoadReport:
    """Insert missing roles and refresh unedited ones from ``path``; idempotent."""
    added = updated = kept = 0
    for spec in read_roles_file(path)["roles"]:
        role = session.get(Role, spec["code"])
        fields = {
            "name_zh": spec["name_zh"],
            "name_en": spec["name_en"],
            "scope": spec["scope"],
            "permissions": sorted(set(spec["permissions"])),
            "description": spec.get("description"),
        }
        if role is None:
            session.add(Role(code=spec["code"], **fields))
            added += 1
        elif role.edited_by:
            kept += 1
        elif any(getattr(role, k) != v for k, v in fields.items()):
            for k, v in fields.items():
                setattr(role, k, v)
            updated += 1
    session.flush()
    return LoadReport(added=added, updated=updated, kept_edited=kept)


def edit_role(
    session: Session,
    code: str,
    *,
    actor: str,
    permissions: Iterable[str] | None = None,
    name_zh: str | None = None,
    name_en: str | None = None,
    active: bool | None = None,
) -> Role:
    """Change a role as an administrator; marks it edited and audits the change."""
    role = session.get(Role, code)
    if role is None:
        raise LookupError(f"no role '{code}'")
    before = {"permissions": role.permissions, "name_zh": role.name_zh, "active": role.active}
    if permissions is not None:
        role.permissions = sorted(set(permissions))
    if name_zh is not None:
        role.name_zh = name_zh
    if name_en is not None:
        role.name_en = name_en
    if active is not None:
        role.active = active
    role.edited_by = actor
    after = {"permissions": role.permissions, "name_zh": role.name_zh, "active": role.active}
    old, new = audit.diff(before, after)
    audit.record(
        session,
        actor=actor,
        action="role.edit",
        entity_type="role",
        entity_id=code,
        before=old,
        after=new,
    )
    session.flush()
    return role


# --------------------------------------------------------------------------------------------
# Users


def get_user(session: Session, username: str) -> User | None:
    """The account called ``username`` (case-insensitive), if any."""
    return session.scalars(
        select(User).where(func.lower(User.username) == username.strip().lower())
    ).first()


def user_role(session: Session, user: User) -> Role:
    """The role of ``user`` (always present: ``role_code`` is a foreign key)."""
    role = session.get(Role, user.role_code)
    assert role is not None, f"user {user.username} has unknown role {user.role_code}"
    return role


def has_permission(user: User, permission: str) -> bool:
    """Whether the active ``user``'s role grants ``permission``."""
    return user.active and user.role is not None and user.role.allows(permission)


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role_code: str,
    display_name: str | None = None,
    organisation_code: str | None = None,
    region_code: str | None = None,
    department: str | None = None,
    actor: str = "system",
    check_policy: bool = True,
) -> User:
    """Create an account; the password must satisfy the policy. Audited."""
    username = username.strip()
    if not username or len(username) > 64:
        raise ValueError("username: 1 to 64 characters")
    if get_user(session, username) is not None:
        raise ValueError(f"username: '{username}' is taken")
    if session.get(Role, role_code) is None:
        raise ValueError(f"role_code: no role '{role_code}'")
    if check_policy:
        check_password_policy(password, username)
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        role_code=role_code,
        organisation_code=organisation_code,
        region_code=region_code,
        department=department,
        active=True,
        failed_logins=0,
        session_version=1,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.create",
        entity_type="user",
        entity_id=user.id,
        after={
            "username": username,
            "role_code": role_code,
            "organisation_code": organisation_code,
            "region_code": region_code,
            "department": department,
        },
    )
    return user


def set_password(session: Session, user: User, password: str, *, actor: str) -> None:
    """Replace the password (policy checked), end every session and unlock. Audited."""
    check_password_policy(password, user.username)
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    user.must_change_password = actor != user.username
    user.session_version = (user.session_version or 1) + 1
    user.failed_logins = 0
    user.locked_until = None
    audit.record(
        session, actor=actor, action="user.password", entity_type="user", entity_id=user.id
    )
    session.flush()


class LoginError(Exception):
    """A refused login; ``reason`` is ``invalid``, ``locked`` or ``inactive``.

    The message shown to the person is the same for unknown users and wrong passwords.
    """

    def __init__(self, reason: str, locked_until: datetime | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.locked_until = locked_until


def _record_attempt(
    session: Session,
    *,
    username: str,
    user: User | None,
    success: bool,
    reason: str,
    ip: str | None,
    user_agent: str | None,
) -> None:
    session.add(
        LoginAttempt(
            username=username[:64],
            user_id=user.id if user else None,
            success=success,
            reason=reason,
            ip=(ip or "")[:64] or None,
            user_agent=(user_agent or "")[:255] or None,
        )
    )
    audit.record(
        session,
        actor=user.username if user else username[:64],
        action="login" if success else "login.failed",
        entity_type="user",
        entity_id=user.id if user else "-",
        after={"reason": reason, "ip": ip},
    )


def authenticate(
    session: Session,
    username: str,
    password: str,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
    now: datetime | None = None,
) -> User:
    """The account if ``password`` is right and the account may log in, else :class:`LoginError`.

    Records the attempt and audits it. ``lockout_failures`` wrong passwords within
    ``lockout_window_minutes`` lock the account for ``lockout_minutes``; a login while
    locked fails even with the right password and does not extend the lock.
    """
    settings = get_account_settings()
    now = now or utcnow()
    user = get_user(session, username)

    def refuse(reason: str, locked_until: datetime | None = None) -> LoginError:
        _record_attempt(
            session,
            username=username,
            user=user,
            success=False,
            reason=reason,
            ip=ip,
            user_agent=user_agent,
        )
        session.flush()
        return LoginError(
            "invalid" if reason in ("unknown_user", "bad_password") else reason, locked_until
        )

    if user is None:
        verify_password(_DUMMY_HASH, password)
        raise refuse("unknown_user")
    if user.locked_until is not None and user.locked_until > now:
        raise refuse("locked", user.locked_until)
    if not verify_password(user.password_hash, password):
        window_start = now - timedelta(minutes=settings.lockout_window_minutes)
        if user.locked_until is not None and user.locked_until > window_start:
            window_start = user.locked_until  # failures before the last lock are spent
        recent = session.scalar(
            select(func.count())
            .select_from(LoginAttempt)
            .where(
                LoginAttempt.user_id == user.id,
                LoginAttempt.at >= window_start,
                LoginAttempt.success.is_(False),
                LoginAttempt.reason == "bad_password",
            )
        )
        user.failed_logins = int(recent or 0) + 1
        if user.failed_logins >= settings.lockout_failures:
            user.locked_until = now + timedelta(minutes=settings.lockout_minutes)
            user.failed_logins = 0
            audit.record(
                session,
                actor="system",
                action="user.locked",
                entity_type="user",
                entity_id=user.id,
                after={"locked_until": user.locked_until},
            )
        raise refuse("bad_password", user.locked_until)
    role = session.get(Role, user.role_code)
    if not user.active or role is None or not role.active:
        raise refuse("inactive")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    _record_attempt(
        session,
        username=username,
        user=user,
        success=True,
        reason="ok",
        ip=ip,
        user_agent=user_agent,
    )
    session.flush()
    return user


def end_sessions(session: Session, user: User, *, actor: str) -> None:
    """Invalidate every session cookie of ``user`` (logout everywhere). Audited."""
    user.session_version = (user.session_version or 1) + 1
    audit.record(session, actor=actor, action="logout", entity_type="user", entity_id=user.id)
    session.flush()


# --------------------------------------------------------------------------------------------
# API tokens

TOKEN_PREFIX = "yf_"


def _token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(
    session: Session,
    user: User,
    name: str,
    *,
    days: int | None = None,
    actor: str | None = None,
) -> tuple[ApiToken, str]:
    """A new API token for ``user``: the row, and the secret (shown once, never stored)."""
    name = name.strip()
    if not name or len(name) > 64:
        raise ValueError("name: 1 to 64 characters")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    lifetime = days if days is not None else get_account_settings().token_days
    token = ApiToken(
        user_id=user.id,
        name=name,
        prefix=secret[:10],
        token_sha256=_token_digest(secret),
        expires_at=utcnow() + timedelta(days=lifetime),
    )
    session.add(token)
    session.flush()
    audit.record(
        session,
        actor=actor or user.username,
        action="token.create",
        entity_type="api_token",
        entity_id=token.id,
        after={"name": name, "user": user.username, "expires_at": token.expires_at},
    )
    return token, secret


def user_for_token(session: Session, secret: str, now: datetime | None = None) -> User | None:
    """The active account a live token belongs to, else None; notes when it was used."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = session.scalars(
        select(ApiToken).where(ApiToken.token_sha256 == _token_digest(secret))
    ).first()
    now = now or utcnow()
    if token is None or token.revoked_at is not None:
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    user = session.get(User, token.user_id)
    if user is None or not user.active:
        return None
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
        token.last_used_at = now  # coarse, so a busy client does not write on every call
    return user


def revoke_token(session: Session, token: ApiToken, *, actor: str) -> None:
    """Revoke ``token`` for good. Audited."""
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(
            session, actor=actor, action="token.revoke", entity_type="api_token", entity_id=token.id
        )
        session.flush()


# --------------------------------------------------------------------------------------------
# Demo accounts

_organisation = table(
    "organisation", column("code"), column("name"), column("kind"), column("region_code")
)


@dataclass(frozen=True, slots=True)
class DemoUser:
    """One demo account: who it is and where it sits in Zhongwei."""

    username: str
    role_code: str
    display_name: str
    organisation_name: str | None  # looked up in the catalog by name
    region_code: str
    department: str | None = None


_ZN_HOSPITAL = "中宁县人民医院"
_ZN_CDC = "中宁县疾病预防控制中心"
_SPS_CDC = "沙坡头区疾病预防控制中心"
_CITY_CDC = "中卫市疾病预防控制中心"
_COMMISSION = "中卫市卫生健康委员会"

#: One account per role, bound to Zhongwei (中卫市 6405; 中宁县 640521; 沙坡头区 640502).
#: The health commission and the education bureau are matched only if the catalog lists them.
DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("zn_hospital", "hospital_reporter", "李医生", _ZN_HOSPITAL, "640521"),
    DemoUser("zn_prevention", "hospital_prevention_head", "王科长", _ZN_HOSPITAL, "640521"),
    DemoUser("zn_cdc_review", "county_cdc_reviewer", "张审核", _ZN_CDC, "640521"),
    DemoUser("zn_cdc_epi", "county_cdc_epidemiologist", "赵流调", _ZN_CDC, "640521"),
    DemoUser("sps_cdc_review", "county_cdc_reviewer", "刘审核", _SPS_CDC, "640502"),
    DemoUser("city_cdc", "city_cdc", "陈主任", _CITY_CDC, "6405"),
    DemoUser("commission", "health_commission_leader", "孙主任", _COMMISSION, "6405"),
    DemoUser("edu_liaison", "department_liaison", "周老师", "中卫市教育局", "6405", "education"),
    DemoUser("admin", "system_admin", "系统管理员", None, "6405"),
)


def _find_organisation(session: Session, name: str | None, region_code: str) -> str | None:
    """The catalog code of the organisation called ``name`` (or like it), if loaded."""
    if not name:
        return None
    exact = session.execute(
        select(_organisation.c.code).where(_organisation.c.name == name)
    ).first()
    if exact is not None:
        return str(exact[0])
    # Catalogs differ in how they spell CDCs (疾控中心 / 疾病预防控制中心): try the short form.
    short = name.replace("疾病预防控制中心", "疾控").replace("卫生健康委员会", "卫生健康委")
    like = session.execute(
        select(_organisation.c.code)
        .where(
            _organisation.c.name.like(f"%{short}%")
            | (
                _organisation.c.region_code.like(f"{region_code}%")
                & _organisation.c.name.like(f"%{short[-4:]}%")
            )
        )
        .order_by(_organisation.c.code)
    ).first()
    return str(like[0]) if like is not None else None


def create_demo_users(session: Session) -> list[tuple[str, str, str]]:
    """One account per role for the demo, with fresh random passwords; idempotent.

    Loads the roles first. Existing demo accounts get a new password (so the printed list is
    always right). Returns ``(username, password, role label)`` rows.
    """
    load_roles(session)
    rows: list[tuple[str, str, str]] = []
    for demo in DEMO_USERS:
        password = generate_password()
        org = _find_organisation(session, demo.organisation_name, demo.region_code)
        user = get_user(session, demo.username)
        if user is None:
            user = create_user(
                session,
                username=demo.username,
                password=password,
                role_code=demo.role_code,
                display_name=demo.display_name,
                organisation_code=org,
                region_code=demo.region_code,
                department=demo.department,
            )
        else:
            user.role_code = demo.role_code
            user.organisation_code = org
            user.region_code = demo.region_code
            user.department = demo.department
            user.active = True
            set_password(session, user, password, actor="system")
            user.must_change_password = False
        role = user_role(session, user)
        label = f"{role.name_zh} {role.name_en}"
        if demo.organisation_name:
            label += f" · {demo.organisation_name}"
        rows.append((demo.username, password, label))
    session.flush()
    return rows
