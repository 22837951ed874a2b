"""Rendering pages: the Jinja2 environment, what every template may use, and page guards.

Pages are server-rendered; their scripts then call the ``/api`` routes of the capabilities,
so what a user may see is decided in one place (the API's scope). A page guard only decides
whether to show the page at all: unauthenticated visitors are sent to the login page, users
without the permission get a 403 page.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from yifang import __version__
from yifang.core.accounts import User, has_permission
from yifang.core.auth import csrf_token, optional_user, scope_for
from yifang.core.settings import get_settings
from yifang.web.i18n import LANG_COOKIE, client_messages, normalise, pick_language, translator

WEB_DIR = Path(__file__).parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
# The templates ship with the package and change only with it: no stat() of every template
# file on every render to see whether it changed.
templates.env.auto_reload = False


#: The navigation bar: (page path, message key, permission needed).
NAV: tuple[tuple[str, str, str | None], ...] = (
    ("/", "nav.dashboard", "dashboard.view"),
    ("/cards/new", "nav.new_card", "card.create"),
    ("/cards/mine", "nav.my_cards", "card.create"),
    ("/cards/import", "nav.import", "card.import"),
    ("/review", "nav.review", "card.review"),
    ("/cards", "nav.cards", "card.view"),
    ("/signals", "nav.signals", "signal.view"),
    ("/admin/users", "nav.admin", "admin.users"),
)


class LoginRequiredError(Exception):
    """Raised by page guards when nobody is logged in; the app redirects to the login page."""


class PageForbiddenError(Exception):
    """Raised by page guards when the user lacks the page's permission.

    Carries the user's id: the request's session is rolled back by the time the error page
    is drawn, so the handler loads the account again.
    """

    def __init__(self, permission: str, user_id: int) -> None:
        super().__init__(permission)
        self.permission = permission
        self.user_id = user_id


async def page_user(user: User | None = Depends(optional_user)) -> User:
    """Page guard: the logged-in user, else :class:`LoginRequiredError`."""
    if user is None:
        raise LoginRequiredError()
    return user


def page_require(permission: str) -> Any:
    """Page guard: the logged-in user holding ``permission``, else a redirect or a 403 page."""

    async def guard(user: User = Depends(page_user)) -> User:
        if not has_permission(user, permission):
            raise PageForbiddenError(permission, user.id)
        return user

    guard.__name__ = f"page_require_{permission.replace('.', '_')}"
    return Depends(guard)


def static_url(path: str) -> str:
    """URL of a static file, with the version so browsers refetch after an upgrade."""
    return f"/static/{path}?v={__version__}"


def to_json(value: Any) -> Markup:
    """``value`` as JSON safe to put inside a ``<script>`` element."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


@lru_cache(maxsize=8)
def _js_messages(lang: str) -> Markup:
    """The page scripts' messages in ``lang`` as JSON, made once per language (they are
    read from the package's message files, which do not change while it runs)."""
    return to_json(client_messages(lang))


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    user: User | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render ``template`` with the common context; remembers ``?lang=`` in a cookie."""
    lang = pick_language(request, user.language if user else None)
    t = translator(lang)
    nav = []
    if user is not None:
        nav = [
            {"href": href, "label": t(key), "active": _is_active(request.url.path, href)}
            for href, key, permission in NAV
            if permission is None or has_permission(user, permission)
        ]
    base: dict[str, Any] = {
        "lang": lang,
        "other_lang": "en" if lang == "zh" else "zh",
        "t": t,
        "user": user,
        "scope": scope_for(user) if user is not None else None,
        "can": (lambda permission: has_permission(user, permission)) if user else (lambda _: False),
        "csrf_token": csrf_token(request),
        "lang_url": _lang_url(request, "en" if lang == "zh" else "zh"),
        "static_url": static_url,
        "nav": nav,
        "js_messages": _js_messages(lang),
        "to_json": to_json,
        "version": __version__,
        "timezone": get_settings().timezone,
    }
    base.update(context or {})
    response = templates.TemplateResponse(request, template, base, status_code=status_code)
    asked = normalise(request.query_params.get("lang"))
    if asked and asked != request.cookies.get(LANG_COOKIE):
        response.set_cookie(LANG_COOKIE, asked, max_age=365 * 86400, samesite="lax", path="/")
    response.headers["Cache-Control"] = "no-store"
    return response


def _lang_url(request: Request, lang: str) -> str:
    """This page's path and query with ``lang`` switched (relative, so proxies keep working)."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    query.append(("lang", lang))
    return request.url.path + "?" + urlencode(query)


def _is_active(path: str, href: str) -> bool:
    if href == "/":
        return path == "/"
    if href == "/cards":
        return path == "/cards" or (path.startswith("/cards/") and path[7:8].isdigit())
    return path == href or path.startswith(href + "/")
