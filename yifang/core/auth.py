"""Who is calling, what they may do and what they may see: the web's authentication layer.

A caller is identified either by a signed session cookie (set at login; HttpOnly,
SameSite=Lax, Secure when the request came over HTTPS) or by an ``Authorization: Bearer``
API token (machine clients such as hospital systems). The cookie carries only the user id
and the account's ``session_version``, signed with itsdangerous and limited in age; raising
the version (logout, password change) voids every cookie issued before.

Every route that returns case data asks for :func:`current_scope`, so the jurisdiction rule
(:func:`scope_for`) lives here once and the queries apply it in SQL.

Forms and fetches that change state are protected against cross-site request forgery by
the double-submit pattern: a random token sits in a cookie and must come back in the
``X-CSRF-Token`` header or the ``csrf_token`` form field (:class:`CSRFMiddleware`). Requests
that authenticate with a bearer token carry no ambient credential and are exempt.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from functools import lru_cache
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from fastapi import Depends, HTTPException, Request, Response, status
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.orm import Session

from yifang.core.accounts import User, has_permission, site_secret, user_for_token
from yifang.core.db import SESSION
from yifang.core.jurisdiction import Scope

SESSION_COOKIE = "yifang_session"
CSRF_COOKIE = "yifang_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"

#: Paths that create a session: a forged login is also refused (login CSRF).
LOGIN_PATHS = frozenset({"/login", "/api/auth/login"})

#: A scope that matches no card: used for accounts missing the organisation or region their
#: role needs, so a half-configured account sees nothing rather than everything.
NOTHING = Scope(region_prefix="-", organisation_code="-", identified=False, actor="-")


class AuthSettings(BaseSettings):
    """Session knobs, read from ``YIFANG_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="YIFANG_", env_file=".env", extra="ignore")

    secret_key: str = Field(
        default="",
        description="Key that signs session cookies; empty: a random key kept in the database.",
    )
    session_hours: float = Field(default=12.0, gt=0, description="Lifetime of a login, hours.")
    cookie_secure: bool | None = Field(
        default=None,
        description="Force the Secure cookie flag on/off; unset: on when the request is HTTPS.",
    )


@lru_cache(maxsize=1)
def get_auth_settings() -> AuthSettings:
    """The process-wide auth settings, read once."""
    return AuthSettings()


_secrets_by_database: dict[str, str] = {}


def _signing_key(session: Session) -> str:
    configured = get_auth_settings().secret_key
    if configured:
        return configured
    url = str(session.get_bind().engine.url)
    key = _secrets_by_database.get(url)
    if key is None:
        key = site_secret(session, "session")
        _secrets_by_database[url] = key
    return key


def _serializer(session: Session) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(_signing_key(session), salt="yifang.session")


def _is_https(request: Request) -> bool:
    forced = get_auth_settings().cookie_secure
    return forced if forced is not None else request.url.scheme == "https"


# --------------------------------------------------------------------------------------------
# Session cookies


def issue_session(session: Session, request: Request, response: Response, user: User) -> None:
    """Set the session cookie for ``user`` on ``response`` and rotate the CSRF token."""
    value = _serializer(session).dumps({"u": user.id, "v": user.session_version})
    max_age = int(get_auth_settings().session_hours * 3600)
    secure = _is_https(request)
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )
    token = new_csrf_token()
    request.state.csrf_token = token
    set_csrf_cookie(response, token, secure=secure)


def clear_session(response: Response) -> None:
    """Remove the session cookie (the account's other sessions are ended separately)."""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")


def user_from_cookie(session: Session, cookie: str) -> User | None:
    """The active account a valid, unexpired session cookie names, else None."""
    max_age = int(get_auth_settings().session_hours * 3600)
    try:
        data = _serializer(session).loads(cookie, max_age=max_age)
    except (BadSignature, SignatureExpired):
        return None
    if not isinstance(data, dict):
        return None
    user = session.get(User, data.get("u"))
    if user is None or not user.active or user.session_version != data.get("v"):
        return None
    return user


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


# --------------------------------------------------------------------------------------------
# Dependencies


def optional_user(request: Request, session: Session = SESSION) -> User | None:
    """The caller's account, or None when not logged in (bearer token first, then cookie)."""
    if hasattr(request.state, "user"):
        cached: User | None = request.state.user
        return cached
    user: User | None = None
    token = _bearer_token(request)
    if token is not None:
        user = user_for_token(session, token)
        request.state.auth_method = "token" if user else None
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            user = user_from_cookie(session, cookie)
            request.state.auth_method = "session" if user else None
    request.state.user = user
    return user


async def current_user(user: User | None = Depends(optional_user)) -> User:
    """The caller's account; 401 when not logged in."""
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="not logged in",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


def require(permission: str) -> Callable[..., Awaitable[User]]:
    """A dependency that admits only callers whose role grants ``permission`` (else 403)."""

    async def dependency(user: User = Depends(current_user)) -> User:
        if not has_permission(user, permission):
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"needs {permission}")
        return user

    dependency.__name__ = f"require_{permission.replace('.', '_')}"
    return dependency


def scope_for(user: User) -> Scope:
    """The slice of case data ``user`` may read, from the role's scope kind.

    organisation (hospital) → the cards its organisation reported; county (county CDC) → the
    county's region-code prefix (6 digits); city (city CDC, health commission) → everything;
    aggregate (other departments, administrators) → de-identified aggregates only. Personal
    data (``identified``) are open only to roles holding ``card.view_identified``, so a
    leader who sees the whole city still sees it masked. An account missing the
    organisation or region its role needs gets :data:`NOTHING`.
    """
    kind = user.role.scope if user.role is not None and user.role.active else None
    actor = user.username
    if not user.active or kind is None:
        return NOTHING
    identified = has_permission(user, "card.view_identified")
    if kind == "city":
        return Scope(identified=identified, actor=actor)
    if kind == "county":
        region = (user.region_code or "").strip()
        if len(region) < 6:
            return NOTHING
        return Scope(region_prefix=region[:6], identified=identified, actor=actor)
    if kind == "organisation":
        if not user.organisation_code:
            return NOTHING
        return Scope(organisation_code=user.organisation_code, identified=identified, actor=actor)
    return Scope(identified=False, actor=actor)


async def current_scope(user: User = Depends(current_user)) -> Scope:
    """Dependency: the logged-in caller's :class:`Scope` (401 when not logged in)."""
    return scope_for(user)


async def current_actor(user: User = Depends(current_user)) -> str:
    """Dependency: the logged-in caller's user name, as written in history and audit."""
    return user.username


# --------------------------------------------------------------------------------------------
# CSRF: double-submit token


def new_csrf_token() -> str:
    """A fresh random CSRF token (256 bits)."""
    return secrets.token_urlsafe(32)


def set_csrf_cookie(response: Response, token: str, *, secure: bool) -> None:
    """Set the CSRF cookie; pages read the same token from their ``<meta>`` tag."""
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="lax", secure=secure, path="/")


def csrf_token(request: Request) -> str:
    """The CSRF token of this request (to put in forms and the page's ``<meta>``)."""
    return str(getattr(request.state, "csrf_token", "") or "")


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_MAX_FORM_BYTES = 1_000_000

ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Any], Awaitable[None]]


class CSRFMiddleware:
    """Refuse state-changing requests that ride on the session cookie without the token.

    Checked for every POST/PUT/PATCH/DELETE that carries the session cookie, and for the
    login paths, unless the request authenticates with a bearer token. The token comes in
    the ``X-CSRF-Token`` header or, for urlencoded forms, the ``csrf_token`` field. A
    request without the CSRF cookie is given one on its response.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]], send: Any
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        cookies = _parse_cookies(headers.get("cookie", ""))
        cookie_token = cookies.get(CSRF_COOKIE, "")
        token = cookie_token or new_csrf_token()
        scope.setdefault("state", {})["csrf_token"] = token

        method = scope["method"].upper()
        bearer = headers.get("authorization", "").lower().startswith("bearer ")
        needs_check = (
            method not in _SAFE_METHODS
            and not bearer
            and (SESSION_COOKIE in cookies or scope["path"] in LOGIN_PATHS)
        )
        if needs_check:
            sent = headers.get(CSRF_HEADER, "")
            content_type = headers.get("content-type", "")
            if not sent and content_type.startswith("application/x-www-form-urlencoded"):
                body, receive = await _buffer_body(receive)
                if body is not None:
                    sent = (parse_qs(body.decode("utf-8", "replace")).get(CSRF_FIELD) or [""])[0]
            if not (cookie_token and sent and hmac.compare_digest(cookie_token, sent)):
                await _refuse(scope, send, headers)
                return

        if cookie_token:
            await self.app(scope, receive, send)
            return
        secure = scope.get("scheme") == "https"
        forced = get_auth_settings().cookie_secure
        if forced is not None:
            secure = forced

        async def send_with_cookie(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", []))
                already = any(
                    k.lower() == b"set-cookie" and v.startswith(CSRF_COOKIE.encode() + b"=")
                    for k, v in raw
                )
                if not already:
                    attrs = f"{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=lax"
                    if secure:
                        attrs += "; Secure"
                    raw.append((b"set-cookie", attrs.encode("latin-1")))
                message = {**message, "headers": raw}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _parse_cookies(header: str) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # a malformed Cookie header is treated as no cookies
        return {}
    return {k: m.value for k, m in jar.items()}


async def _buffer_body(
    receive: Callable[[], Awaitable[dict[str, Any]]],
) -> tuple[bytes | None, Callable[[], Awaitable[dict[str, Any]]]]:
    """Read the whole (small) body and return it with a ``receive`` that replays it."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more = message.get("more_body", False)
        if size > _MAX_FORM_BYTES:
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> dict[str, Any]:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return (body if not more else None), replay


async def _refuse(scope: dict[str, Any], send: Any, headers: dict[str, str]) -> None:
    wants_html = "text/html" in headers.get("accept", "") and not scope["path"].startswith("/api")
    if wants_html:
        body = (
            "<!doctype html><meta charset=utf-8><title>403</title>"
            "<p>页面已过期，请返回并刷新后重试。</p>"
            "<p>The page expired: go back, reload and try again.</p>"
        ).encode()
        content_type = b"text/html; charset=utf-8"
    else:
        body = b'{"detail":"CSRF token missing or wrong"}'
        content_type = b"application/json"
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
