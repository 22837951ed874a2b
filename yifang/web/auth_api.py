"""JSON routes of accounts: login, logout, who am I, password change, API tokens, and the
administration of users and roles. Mounted under ``/api`` by :func:`yifang.web.app.create_app`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from yifang.core import accounts, audit
from yifang.core.accounts import ApiToken, LoginError, PasswordPolicyError, Role, User
from yifang.core.auth import (
    clear_session,
    csrf_token,
    current_user,
    issue_session,
    optional_user,
    require,
    scope_for,
)
from yifang.core.db import SESSION

router = APIRouter(tags=["accounts"])


class LoginIn(BaseModel):
    """Credentials of a login."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class PasswordIn(BaseModel):
    """A password change by the account's owner."""

    old_password: str = Field(max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class TokenIn(BaseModel):
    """A new API token: a name to tell it apart, and its lifetime in days."""

    name: str = Field(min_length=1, max_length=64)
    days: int | None = Field(default=None, ge=1, le=3650)


class UserIn(BaseModel):
    """A new account, created by an administrator."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    role_code: str
    display_name: str | None = Field(default=None, max_length=64)
    organisation_code: str | None = Field(default=None, max_length=32)
    region_code: str | None = Field(default=None, max_length=12)
    department: str | None = Field(default=None, max_length=32)


class UserPatch(BaseModel):
    """Changes an administrator makes to an account (only the fields given)."""

    display_name: str | None = Field(default=None, max_length=64)
    role_code: str | None = None
    organisation_code: str | None = Field(default=None, max_length=32)
    region_code: str | None = Field(default=None, max_length=12)
    department: str | None = Field(default=None, max_length=32)
    active: bool | None = None
    unlock: bool | None = None
    new_password: str | None = Field(default=None, max_length=256)


class RolePatch(BaseModel):
    """Changes an administrator makes to a role."""

    permissions: list[str] | None = None
    name_zh: str | None = Field(default=None, max_length=64)
    name_en: str | None = Field(default=None, max_length=128)
    active: bool | None = None


def policy_error(err: PasswordPolicyError) -> HTTPException:
    """The 422 answer naming every way a new password breaks the policy."""
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT, detail={"code": "policy", "problems": err.problems}
    )


def user_out(user: User) -> dict[str, Any]:
    """What the API tells about an account (never the password hash)."""
    scope = scope_for(user)
    role = user.role
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": {
            "code": role.code,
            "name_zh": role.name_zh,
            "name_en": role.name_en,
            "scope": role.scope,
        },
        "permissions": sorted(role.permissions or []) if role.active else [],
        "organisation_code": user.organisation_code,
        "region_code": user.region_code,
        "department": user.department,
        "active": user.active,
        "must_change_password": user.must_change_password,
        "locked_until": user.locked_until,
        "last_login_at": user.last_login_at,
        "scope": {
            "region_prefix": scope.region_prefix,
            "organisation_code": scope.organisation_code,
            "identified": scope.identified,
        },
    }


def _client(request: Request) -> tuple[str | None, str | None]:
    host = request.client.host if request.client else None
    return host, request.headers.get("user-agent")


def login_error_status(err: LoginError) -> int:
    """HTTP status of a refused login: 423 while locked, 403 inactive, else 401."""
    return {"locked": 423, "inactive": 403}.get(err.reason, 401)


@router.get("/auth/csrf")
def get_csrf(request: Request) -> dict[str, str]:
    """The CSRF token to send back in ``X-CSRF-Token`` (its cookie is set alongside)."""
    return {"csrf_token": csrf_token(request)}


@router.post("/auth/login")
def login(
    body: LoginIn, request: Request, response: Response, session: Session = SESSION
) -> dict[str, Any]:
    """Log in with user name and password; sets the session cookie and a new CSRF token."""
    ip, agent = _client(request)
    try:
        user = accounts.authenticate(session, body.username, body.password, ip=ip, user_agent=agent)
    except LoginError as err:
        session.commit()  # keep the failed attempt and the lock even though we refuse
        raise HTTPException(
            login_error_status(err),
            detail={
                "code": err.reason,
                "locked_until": err.locked_until.isoformat() if err.locked_until else None,
            },
        ) from None
    issue_session(session, request, response, user)
    return {**user_out(user), "csrf_token": csrf_token(request)}


@router.post("/auth/logout")
def logout(
    response: Response,
    user: User | None = Depends(optional_user),
    session: Session = SESSION,
) -> dict[str, bool]:
    """End the caller's sessions (every device) and clear the cookie."""
    if user is not None:
        accounts.end_sessions(session, user, actor=user.username)
    clear_session(response)
    return {"ok": True}


@router.get("/auth/me")
def me(user: User = Depends(current_user)) -> dict[str, Any]:
    """The logged-in account, its role, permissions and jurisdiction."""
    return user_out(user)


@router.post("/auth/password")
def change_password(
    body: PasswordIn,
    request: Request,
    response: Response,
    user: User = Depends(current_user),
    session: Session = SESSION,
) -> dict[str, Any]:
    """Change one's own password (the old one is required); other sessions end."""
    if not accounts.verify_password(user.password_hash, body.old_password):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail={"code": "wrong_old_password"})
    try:
        accounts.set_password(session, user, body.new_password, actor=user.username)
    except PasswordPolicyError as err:
        raise policy_error(err) from None
    issue_session(session, request, response, user)
    return {"ok": True, "csrf_token": csrf_token(request)}


def token_out(token: ApiToken) -> dict[str, Any]:
    """An API token as listed (the secret is never shown again)."""
    return {
        "id": token.id,
        "name": token.name,
        "prefix": token.prefix,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }


@router.get("/tokens")
def list_tokens(
    user: User = Depends(require("token.manage")), session: Session = SESSION
) -> list[dict[str, Any]]:
    """The caller's API tokens, newest first."""
    rows = session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
    ).all()
    return [token_out(t) for t in rows]


@router.post("/tokens", status_code=status.HTTP_201_CREATED)
def create_token(
    body: TokenIn,
    user: User = Depends(require("token.manage")),
    session: Session = SESSION,
) -> dict[str, Any]:
    """A new API token for the caller; ``token`` in the answer is shown this once only."""
    token, secret = accounts.create_token(session, user, body.name, days=body.days)
    return {**token_out(token), "token": secret}


@router.delete("/tokens/{token_id}")
def revoke_token(
    token_id: int,
    user: User = Depends(require("token.manage")),
    session: Session = SESSION,
) -> dict[str, Any]:
    """Revoke one of the caller's tokens."""
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such token")
    accounts.revoke_token(session, token, actor=user.username)
    return token_out(token)


# --------------------------------------------------------------------------------------------
# Administration


@router.get("/roles")
def list_roles(
    _user: User = Depends(current_user), session: Session = SESSION
) -> list[dict[str, Any]]:
    """Every role with its scope and permissions (any logged-in user may read them)."""
    roles = session.scalars(select(Role).order_by(Role.code)).all()
    return [
        {
            "code": r.code,
            "name_zh": r.name_zh,
            "name_en": r.name_en,
            "scope": r.scope,
            "permissions": r.permissions,
            "active": r.active,
            "edited_by": r.edited_by,
        }
        for r in roles
    ]


@router.patch("/roles/{code}")
def patch_role(
    code: str,
    body: RolePatch,
    admin: User = Depends(require("admin.roles")),
    session: Session = SESSION,
) -> dict[str, Any]:
    """Change a role's permissions or names; a later reload of roles.yaml keeps the change."""
    try:
        role = accounts.edit_role(
            session,
            code,
            actor=admin.username,
            permissions=body.permissions,
            name_zh=body.name_zh,
            name_en=body.name_en,
            active=body.active,
        )
    except LookupError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no role '{code}'") from None
    return {"code": role.code, "permissions": role.permissions, "active": role.active}


@router.get("/users")
def list_users(
    _admin: User = Depends(require("admin.users")), session: Session = SESSION
) -> list[dict[str, Any]]:
    """Every account."""
    return [user_out(u) for u in session.scalars(select(User).order_by(User.username)).all()]


@router.post("/users", status_code=status.HTTP_201_CREATED)
def create_user(
    body: UserIn,
    admin: User = Depends(require("admin.users")),
    session: Session = SESSION,
) -> dict[str, Any]:
    """Create an account (the password must satisfy the policy)."""
    try:
        user = accounts.create_user(session, actor=admin.username, **body.model_dump())
    except PasswordPolicyError as err:
        raise policy_error(err) from None
    except ValueError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(err)) from None
    user.must_change_password = True
    session.flush()
    return user_out(user)


@router.patch("/users/{user_id}")
def patch_user(
    user_id: int,
    body: UserPatch,
    admin: User = Depends(require("admin.users")),
    session: Session = SESSION,
) -> dict[str, Any]:
    """Change an account: role, jurisdiction, active flag, unlock, or reset its password."""
    user = session.get(User, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such user")
    fields = body.model_dump(exclude_unset=True, exclude={"new_password", "unlock"})
    if "role_code" in fields and session.get(Role, fields["role_code"]) is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="role_code: unknown")
    before = {k: getattr(user, k) for k in fields}
    for key, value in fields.items():
        setattr(user, key, value)
    if fields.get("active") is False or "role_code" in fields:
        user.session_version += 1  # the change takes effect at once
    if body.unlock:
        user.locked_until = None
        user.failed_logins = 0
        fields["locked_until"] = None
    old, new = audit.diff(before, fields)
    audit.record(
        session,
        actor=admin.username,
        action="user.edit",
        entity_type="user",
        entity_id=user.id,
        before=old,
        after=new,
    )
    if body.new_password:
        try:
            accounts.set_password(session, user, body.new_password, actor=admin.username)
        except PasswordPolicyError as err:
            raise policy_error(err) from None
    session.flush()
    session.refresh(user)
    return user_out(user)
