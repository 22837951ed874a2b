"""The administration pages beyond accounts: disease settings and organisations (the
early-warning algorithms' settings have a page of their own). Each page is a
server-rendered shell; its script calls the catalog's routes under ``/api``
(``/api/diseases``, ``/api/organisations``), so the rules, the audit trail and the
``admin.catalog`` permission are enforced by the API, not by the page.

The shells carry only public reference data the forms need: code lists with their Chinese
and English labels, and the configured city's regions.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from yifang.catalog.codes import code_list
from yifang.catalog.models import Region
from yifang.core.accounts import User, has_permission
from yifang.core.db import SESSION
from yifang.core.settings import get_settings
from yifang.web.pages import common
from yifang.web.render import page_require, render

router = APIRouter(include_in_schema=False)

#: The code lists the disease form offers.
DISEASE_CODE_LISTS = ("disease_class", "case_classification", "chronicity", "transmission_route")

#: Organisation levels offered as suggestions (the field is free text).
ORGANISATION_LEVELS = ("三级", "二级", "一级", "未定级", "市级", "县级")


def code_tables(*names: str) -> dict[str, dict[str, dict[str, str]]]:
    """Code lists as ``{list: {code: {zh, en}}}`` for the page scripts, in the file's order."""
    return {
        name: {code: {"zh": label.zh, "en": label.en} for code, label in code_list(name).items()}
        for name in names
    }


def city_regions(session: Session) -> list[dict[str, Any]]:
    """The configured city, its counties and their townships, in code order (a county's
    townships follow it), as ``{code, name, level, parent}``."""
    city = get_settings().city_code.rstrip("0")[:4] or get_settings().city_code
    rows = session.scalars(
        select(Region)
        .where(Region.code.startswith(city, autoescape=True), Region.level.in_((2, 3, 4)))
        .order_by(Region.code)
    )
    return [
        {"code": r.code, "name": r.name, "level": r.level, "parent": r.parent_code} for r in rows
    ]


def admin_tabs(user: User) -> list[dict[str, str]]:
    """The administration pages this user may open: (href, message key)."""
    tabs = [
        ("/admin/users", "catalog.tab_users", "admin.users"),
        ("/admin/diseases", "nav.diseases", "admin.catalog"),
        ("/admin/organisations", "nav.organisations", "admin.catalog"),
    ]
    return [{"href": h, "key": k} for h, k, p in tabs if has_permission(user, p)]


@router.get("/admin/diseases", response_class=HTMLResponse)
def admin_diseases(
    request: Request,
    user: User = page_require("admin.catalog"),
    session: Session = SESSION,
) -> Response:
    """Disease settings: every disease of the catalog with its reporting rules, filtered by
    class or text; edit one, add one, see its edit history, give it back to the data file."""
    context = {
        **common(session, user),
        "tabs": admin_tabs(user),
        "codes": code_tables(*DISEASE_CODE_LISTS),
    }
    return render(request, "admin_diseases.html", context, user=user)


@router.get("/admin/organisations", response_class=HTMLResponse)
def admin_organisations(
    request: Request,
    user: User = page_require("admin.catalog"),
    session: Session = SESSION,
) -> Response:
    """Organisations: the registry of reporting and receiving organisations, filtered by
    kind, county, state or text; create one, edit one, see its edit history."""
    regions = city_regions(session)
    context = {
        **common(session, user),
        "tabs": admin_tabs(user),
        "codes": code_tables("organisation_kind"),
        "regions": regions,
        "counties": [r for r in regions if r["level"] == 3],
        "levels": ORGANISATION_LEVELS,
    }
    return render(request, "admin_organisations.html", context, user=user)
