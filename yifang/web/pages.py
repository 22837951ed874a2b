"""The pages: login, dashboard, card entry, my cards, review queue, card list and detail,
account. Each page is a server-rendered shell; its script fetches the data from ``/api``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from yifang.cases import codes
from yifang.catalog.models import Disease, Organisation, Region
from yifang.core import accounts
from yifang.core.accounts import LoginError, Role, User
from yifang.core.auth import clear_session, issue_session, optional_user, scope_for
from yifang.core.db import SESSION, utcnow
from yifang.core.settings import get_settings
from yifang.web import cache
from yifang.web.i18n import pick_language, translate
from yifang.web.render import page_require, page_user, render, to_json

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else ``/`` (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def org_name(session: Session, code: str | None) -> str | None:
    """The organisation's name from the catalog, or None."""
    if not code:
        return None
    return labels(session)["places"]["orgs"].get(code, code)


def common(session: Session, user: User) -> dict[str, Any]:
    """Context every logged-in page shares."""
    return {"org_name": org_name(session, user.organisation_code)}


def labels(session: Session) -> dict[str, Any]:
    """Names the card tables show instead of codes: code lists, diseases, places, units
    (cached for a few minutes: see :mod:`yifang.web.cache`)."""
    return cache.reference(session, "labels", lambda: _labels(session))


def _labels(session: Session) -> dict[str, Any]:
    city = get_settings().city_code.rstrip("0")[:4] or get_settings().city_code
    regions = session.execute(
        select(Region.code, Region.name).where(
            Region.code.like(f"{city}%"), Region.level.in_((2, 3, 4))
        )
    ).all()
    orgs = session.execute(select(Organisation.code, Organisation.name)).all()
    codes = code_lists_json()
    diseases = {
        d.code: {"zh": d.name_zh, "en": d.name_en} for d in session.scalars(select(Disease))
    }
    places = {
        "regions": {code: name for code, name in regions},
        "orgs": {code: name for code, name in orgs},
    }
    return {
        "codes_json": codes,
        "disease_names": diseases,
        "places": places,
        # the same, encoded once for the pages' <script> (every page embeds them)
        "labels_json": {
            "codes": to_json(codes),
            "diseases": to_json(diseases),
            "places": to_json(places),
        },
    }


# --------------------------------------------------------------------------------------------
# Login and logout


@router.get("/login", response_class=HTMLResponse)
def login_page(
    request: Request, next: str = "/", user: User | None = Depends(optional_user)
) -> Response:
    """The login form (a logged-in user goes straight on)."""
    if user is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", {"next": safe_next(next), "username": ""})


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    next: str = Form("/"),
    session: Session = SESSION,
) -> Response:
    """Check the credentials; on success set the session cookie and go to ``next``."""
    lang = pick_language(request)
    host = request.client.host if request.client else None
    try:
        user = accounts.authenticate(
            session,
            username[:64],
            password[:256],
            ip=host,
            user_agent=request.headers.get("user-agent"),
        )
    except LoginError as err:
        session.commit()  # keep the failed attempt and any lock
        if err.reason == "locked" and err.locked_until is not None:
            minutes = max(1, int((err.locked_until - utcnow()).total_seconds() // 60) + 1)
            message = translate("login.locked", lang, minutes=minutes)
        else:
            message = translate(f"login.{err.reason}", lang)
        return render(
            request,
            "login.html",
            {"next": safe_next(next), "username": username[:64], "error": message},
            status_code=401 if err.reason == "invalid" else 403,
        )
    target = "/account?must_change=1" if user.must_change_password else safe_next(next)
    response = RedirectResponse(target, status_code=303)
    issue_session(session, request, response, user)
    return response


@router.post("/logout")
def logout_submit(
    user: User | None = Depends(optional_user), session: Session = SESSION
) -> Response:
    """End the user's sessions and return to the login page."""
    if user is not None:
        accounts.end_sessions(session, user, actor=user.username)
    response = RedirectResponse("/login", status_code=303)
    clear_session(response)
    return response


# --------------------------------------------------------------------------------------------
# Pages


@router.get("/", response_class=HTMLResponse)
def dashboard(
    request: Request,
    user: User = Depends(page_user),
    session: Session = SESSION,
) -> Response:
    """The dashboard of the user's jurisdiction (other roles land on their main page)."""
    if not accounts.has_permission(user, "dashboard.view"):
        for path, permission in (("/cards/mine", "card.create"), ("/review", "card.review")):
            if accounts.has_permission(user, permission):
                return RedirectResponse(path, status_code=303)
        return RedirectResponse("/account", status_code=303)
    context = common(session, user)
    context["diseases"] = disease_options(session)
    return render(request, "dashboard.html", context, user=user)


@router.get("/account", response_class=HTMLResponse)
def account_page(
    request: Request,
    must_change: int = 0,
    user: User = Depends(page_user),
    session: Session = SESSION,
) -> Response:
    """Own account: password change and (for machine clients' owners) API tokens."""
    context = common(session, user)
    context["must_change"] = bool(must_change) or user.must_change_password
    return render(request, "account.html", context, user=user)


def validate_url(request: Request, user: User) -> str:
    """The card check the form calls: the cases API's if it has one (it asks for
    ``card.create``), else, and for reviewers who only correct cards, the pages' own."""
    if accounts.has_permission(user, "card.create"):
        for route in request.app.routes:
            if getattr(route, "path", None) == "/api/cards/validate":
                return "/api/cards/validate"
    return "/api/web/validate-card"


def organisation_options(session: Session, user: User) -> tuple[list[dict[str, str]], bool]:
    """Reporting organisations the user may pick, and whether the choice is fixed (hospital)."""
    scope = scope_for(user)
    stmt = select(Organisation).where(Organisation.active.is_(True)).order_by(Organisation.code)
    if scope.organisation_code:
        stmt = stmt.where(Organisation.code == scope.organisation_code)
    elif scope.region_prefix:
        stmt = stmt.where(Organisation.region_code.like(f"{scope.region_prefix}%"))
    orgs = [{"code": o.code, "name": o.name} for o in session.scalars(stmt)]
    return orgs, bool(scope.organisation_code)


def card_form_context(request: Request, session: Session, user: User) -> dict[str, Any]:
    """What the card form needs: code lists, diseases, townships, organisations, dates."""
    now_local = local_now()
    orgs, fixed = organisation_options(session, user)
    return {
        **common(session, user),
        "codes": codes,
        "diseases": [d for d in disease_options(session) if not d["is_parent"]],
        "townships": township_options(session),
        "organisations": orgs,
        "fixed_org": fixed,
        "today": now_local.date().isoformat(),
        "now_local": now_local.strftime("%Y-%m-%dT%H:00"),
        "validate_url": validate_url(request, user),
    }


def local_now() -> datetime:
    """The wall-clock time in the city (naive)."""
    zone = ZoneInfo(get_settings().timezone)
    return datetime.now(zone).replace(tzinfo=None)


@router.get("/cards/new", response_class=HTMLResponse)
def card_new(
    request: Request,
    user: User = page_require("card.create"),
    session: Session = SESSION,
) -> Response:
    """Enter a new card."""
    context = card_form_context(request, session, user)
    return render(request, "card_form.html", {**context, "card_id": None}, user=user)


@router.get("/cards/mine", response_class=HTMLResponse)
def my_cards(
    request: Request,
    user: User = page_require("card.create"),
    session: Session = SESSION,
) -> Response:
    """The cards of the user's organisation: returned ones to fix first, then the latest."""
    context = {**common(session, user), **labels(session)}
    return render(request, "my_cards.html", context, user=user)


@router.get("/cards/import", response_class=HTMLResponse)
def card_import(
    request: Request,
    user: User = page_require("card.import"),
    session: Session = SESSION,
) -> Response:
    """Upload a file of cards (CSV, XLSX, JSON Lines) and see what became of each row."""
    return render(request, "card_import.html", common(session, user), user=user)


@router.get("/review", response_class=HTMLResponse)
def review_queue(
    request: Request,
    user: User = page_require("card.review"),
    session: Session = SESSION,
) -> Response:
    """Cards awaiting review, the most urgent first, each with its time left."""
    context = {**common(session, user), **labels(session)}
    return render(request, "review.html", context, user=user)


@router.get("/cards", response_class=HTMLResponse)
def card_list(
    request: Request,
    user: User = page_require("card.view"),
    session: Session = SESSION,
) -> Response:
    """Every card of the jurisdiction with filters, keyset paging and export."""
    context = {
        **common(session, user),
        "diseases": disease_options(session),
        "statuses": ["submitted", "returned", "reviewed", "draft", "deleted"],
        "counties": county_options(session),
        **labels(session),
    }
    return render(request, "cards.html", context, user=user)


@router.get("/cards/{card_id:int}", response_class=HTMLResponse)
def card_detail(
    request: Request,
    card_id: int,
    user: User = page_require("card.view"),
    session: Session = SESSION,
) -> Response:
    """One card with its history and the actions the user may take."""
    context = {**common(session, user), **labels(session), "card_id": card_id}
    return render(request, "card_detail.html", context, user=user)


@router.get("/cards/{card_id:int}/edit", response_class=HTMLResponse)
def card_edit(
    request: Request,
    card_id: int,
    user: User = page_require("card.edit"),
    session: Session = SESSION,
) -> Response:
    """Correct a returned (or draft) card and submit it again."""
    context = card_form_context(request, session, user)
    return render(request, "card_form.html", {**context, "card_id": card_id}, user=user)


def code_lists_json() -> dict[str, dict[str, dict[str, str]]]:
    """Every code list of the card, for the scripts that show labels."""
    return {
        "sex": code_table(codes.SEXES),
        "id_type": code_table(codes.ID_TYPES),
        "age_unit": code_table(codes.AGE_UNITS),
        "residence_category": code_table(codes.RESIDENCE_CATEGORIES),
        "occupation": code_table(codes.OCCUPATIONS),
        "classification": code_table(codes.CLASSIFICATIONS),
        "chronicity": code_table(codes.CHRONICITIES),
        "report_type": code_table(codes.REPORT_TYPES),
    }


def county_options(session: Session) -> list[dict[str, str]]:
    """Counties of the configured city (cached)."""
    return cache.reference(session, "counties", lambda: _county_options(session))


def _county_options(session: Session) -> list[dict[str, str]]:
    city = get_settings().city_code.rstrip("0")[:4] or get_settings().city_code
    rows = session.scalars(
        select(Region).where(Region.level == 3, Region.code.like(f"{city}%")).order_by(Region.code)
    ).all()
    return [{"code": r.code, "name": r.name} for r in rows]


@router.get("/signals", response_class=HTMLResponse)
def signals(
    request: Request,
    user: User = page_require("signal.view"),
    session: Session = SESSION,
) -> Response:
    """Early-warning signals of the jurisdiction."""
    context = {**common(session, user), **labels(session), "diseases": disease_options(session)}
    return render(request, "signals.html", context, user=user)


@router.get("/signals/{signal_id:int}", response_class=HTMLResponse)
def signal_detail(
    request: Request,
    signal_id: int,
    user: User = page_require("signal.view"),
    session: Session = SESSION,
) -> Response:
    """One signal: its chart of counts against the threshold, and its explanation."""
    context = {**common(session, user), **labels(session), "signal_id": signal_id}
    return render(request, "signal_detail.html", context, user=user)


@router.get("/admin/users", response_class=HTMLResponse)
def admin_users(
    request: Request,
    user: User = page_require("admin.users"),
    session: Session = SESSION,
) -> Response:
    """Accounts and roles: create, disable, unlock, reset; tick permissions per role."""
    roles = session.scalars(select(Role).order_by(Role.code)).all()
    permissions = sorted({p for r in roles for p in r.permissions or []} | KNOWN_PERMISSIONS)
    city = get_settings().city_code.rstrip("0")[:4] or get_settings().city_code
    regions = session.scalars(
        select(Region).where(Region.code.like(f"{city}%"), Region.level <= 3).order_by(Region.code)
    ).all()
    lang = pick_language(request, user.language)
    context = {
        **common(session, user),
        "roles": roles,
        "permissions": permissions,
        "organisations": [
            {"code": o.code, "name": o.name}
            for o in session.scalars(select(Organisation).order_by(Organisation.code))
        ],
        "regions": [{"code": r.code, "name": r.name} for r in regions],
        "departments": accounts.departments(),
        "role_names": {r.code: r.name_zh if lang == "zh" else r.name_en for r in roles},
        "org_names": {
            code: name
            for code, name in session.execute(select(Organisation.code, Organisation.name))
        },
    }
    return render(request, "admin_users.html", context, user=user)


#: Every permission a page or route asks for (roles.yaml documents them).
KNOWN_PERMISSIONS = frozenset(
    {
        "card.create",
        "card.edit",
        "card.view",
        "card.view_identified",
        "card.review",
        "card.delete",
        "card.export",
        "card.import",
        "dashboard.view",
        "aggregate.view",
        "signal.view",
        "signal.respond",
        "event.view",
        "event.manage",
        "task.view",
        "admin.users",
        "admin.roles",
        "admin.catalog",
        "admin.algorithms",
        "audit.view",
        "token.manage",
    }
)


# --------------------------------------------------------------------------------------------
# Reference data for the forms (public catalog data, not case data)


def code_table(table: dict[str, codes.Code]) -> dict[str, dict[str, str]]:
    """A code list as {code: {zh, en}} for the page scripts."""
    return {c.code: {"zh": c.zh, "en": c.en} for c in table.values()}


def disease_options(session: Session) -> list[dict[str, Any]]:
    """Active diseases, grouped by class, for select boxes (cached)."""
    return cache.reference(session, "diseases", lambda: _disease_options(session))


def _disease_options(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Disease)
        .where(Disease.active.is_(True))
        .order_by(Disease.disease_class, Disease.code)
    ).all()
    parents = {d.parent_code for d in rows if d.parent_code}
    return [
        {
            "code": d.code,
            "zh": d.name_zh,
            "en": d.name_en,
            "class": d.disease_class,
            "classifications": d.classifications or [],
            "chronicity": d.chronicity or [],
            "subtypes": d.subtypes or [],
            "parent": d.parent_code,
            "is_parent": d.code in parents,
        }
        for d in rows
    ]


def township_options(session: Session) -> list[dict[str, Any]]:
    """Townships (level 4) of the configured city, with their county, for the address
    (cached)."""
    return cache.reference(session, "townships", lambda: _township_options(session))


def _township_options(session: Session) -> list[dict[str, Any]]:
    city = get_settings().city_code.rstrip("0")[:4] or get_settings().city_code
    counties = {
        r.code: r.name
        for r in session.scalars(
            select(Region).where(Region.level == 3, Region.code.like(f"{city}%"))
        ).all()
    }
    towns = session.scalars(
        select(Region)
        .where(Region.level == 4, Region.code.like(f"{city}%"), Region.active.is_(True))
        .order_by(Region.code)
    ).all()
    return [
        {"code": r.code, "name": r.name, "county": counties.get(r.code[:6], r.code[:6])}
        for r in towns
    ]


def login_redirect(request: Request) -> RedirectResponse:
    """Where an unauthenticated page visit is sent."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


__all__ = ["login_redirect", "page_require", "router"]
