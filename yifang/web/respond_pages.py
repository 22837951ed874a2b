"""The response pages: verification queue, events with their timeline, task board,
consultations, contacts and the response plan templates. Each page is a server-rendered
shell; its script fetches the data from the response API under ``/api``, which applies the
caller's jurisdiction.

The guards here only decide whether a page is shown at all (``page_require``): the verification
queue needs ``signal.view`` (its form ``signal.respond``), events, consultations and contacts
``event.view`` (their forms ``event.manage``), the task board ``task.view`` — so liaisons of
other departments reach only the board, where the API gives them their department's tasks
and warnings and nothing else. The plan templates (``/plans``) need ``event.manage``; only
callers without a regional restriction (the city CDC) get its edit forms, as only they may
``PATCH /api/plans/{code}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from yifang.cases import codes
from yifang.core.accounts import User, has_permission
from yifang.core.auth import scope_for
from yifang.core.db import SESSION
from yifang.respond import contacts, service, tasks
from yifang.respond.config import LEVELS, grading_config, response_config
from yifang.web.i18n import messages, pick_language, translate
from yifang.web.pages import code_table, common, county_options, disease_options, labels
from yifang.web.render import page_require, render

router = APIRouter(include_in_schema=False)

#: Groups of message keys (the part before the first dot) sent to the response pages'
#: scripts, keys unchanged, so a template and its script share one catalog entry.
SCRIPT_MESSAGE_GROUPS = frozenset(
    {
        "respond",
        "verify",
        "events",
        "event",
        "task",
        "tasks",
        "grade",
        "warning",
        "sample",
        "consult",
        "contact",
        "kind",
        "action",
        "hours",
        "level",
        "sex",
        "common",
        "signals",
        "plans",
        "attach",
    }
)


def script_messages(lang: str) -> dict[str, str]:
    """The messages the response pages' scripts use (see :data:`SCRIPT_MESSAGE_GROUPS`)."""
    return {
        key: translate(key, lang)
        for key in messages()
        if key.split(".", 1)[0] in SCRIPT_MESSAGE_GROUPS
    }


def reference(lang: str) -> dict[str, Any]:
    """Code lists and labels every response page's script needs, in ``lang`` where the
    catalogs have it (the same lists the API's ``/api/respond/reference`` gives)."""
    cfg = response_config()
    grading_cfg = grading_config()

    def pick(entry: dict[str, str]) -> str:
        return entry.get(lang) or entry.get("zh") or ""

    return {
        "dismiss_reasons": {k: pick(v) for k, v in cfg.dismiss_reasons.items()},
        "checks": {k: pick(v) for k, v in cfg.checks.items()},
        "event_types": {
            k: zh if lang == "zh" else en for k, (zh, en) in service.EVENT_TYPES.items()
        },
        "owners": {k: pick(v) for k, v in tasks.owners().items()},
        "levels": {lvl: pick(grading_cfg.level_names.get(lvl, {})) for lvl in LEVELS},
        "level_colours": {
            lvl: grading_cfg.level_names.get(lvl, {}).get("colour", "") for lvl in LEVELS
        },
        "risk_levels": [
            {"level": b["level"], "min_score": b["min_score"], "name": pick(b)}
            for b in cfg.risk_levels
        ],
        "verification_statuses": _labels(service.VERIFICATION.labels, lang),
        "event_statuses": _labels(service.EVENT.labels, lang),
        "task_statuses": _labels(tasks.TASK.labels, lang),
        "contact_statuses": _labels(contacts.CONTACT.labels, lang),
        "task_status_order": list(tasks.TASK_STATUSES),
        "conditions": list(contacts.CONDITIONS),
        "attachment_max_bytes": cfg.attachment_max_bytes,
        "attachment_types": sorted(cfg.attachment_types),
    }


def _labels(table: Any, lang: str) -> dict[str, str]:
    return {k: zh if lang == "zh" else en for k, (zh, en) in table.items()}


def thresholds(lang: str) -> list[dict[str, Any]]:
    """The configured grading thresholds (grading.yaml), for the grading panel."""
    cfg = grading_config()
    rows = []
    for rule in (*cfg.related_info, *cfg.levels):
        rows.append(
            {
                "id": rule.id,
                "level": rule.level,
                "text": rule.zh if lang == "zh" else (rule.en or rule.zh),
                "confirmed": rule.confirmed,
            }
        )
    return rows


def _context(request: Request, session: Session, user: User) -> dict[str, Any]:
    """What every response page shares: the labels of cards and places, the code lists and
    the scripts' messages."""
    lang = pick_language(request, user.language)
    return {
        **common(session, user),
        **labels(session),
        "ref": reference(lang),
        "department": user.department,
        "respond_messages": script_messages(lang),
        "rights": {
            p: has_permission(user, p)
            for p in (
                "signal.respond",
                "event.view",
                "event.manage",
                "task.view",
                "card.view",
                "card.view_identified",
            )
        },
    }


@router.get("/verify", response_class=HTMLResponse)
def verification_queue(
    request: Request,
    user: User = page_require("signal.view"),
    session: Session = SESSION,
) -> Response:
    """Signals awaiting verification by the user's CDC, soonest due first, with the form to
    record what was checked and the outcome."""
    context = {**_context(request, session, user), "diseases": disease_options(session)}
    return render(request, "respond_verify.html", context, user=user)


@router.get("/events", response_class=HTMLResponse)
def events(
    request: Request,
    user: User = page_require("event.view"),
    session: Session = SESSION,
) -> Response:
    """Events of the jurisdiction: the map of active ones and the list."""
    context = {
        **_context(request, session, user),
        "diseases": disease_options(session),
        "counties": county_options(session),
    }
    return render(request, "respond_events.html", context, user=user)


@router.get("/events/{event_id:int}", response_class=HTMLResponse)
def event_detail(
    request: Request,
    event_id: int,
    user: User = page_require("event.view"),
    session: Session = SESSION,
) -> Response:
    """One event: investigation, cases, samples, grading, tasks, warnings, timeline,
    epidemic curve and map, and the final report downloads."""
    lang = pick_language(request, user.language)
    context = {
        **_context(request, session, user),
        "event_id": event_id,
        "thresholds": thresholds(lang),
        "grading_version": grading_config().version,
        "sample_results": list(service.SAMPLE_RESULTS),
        "levels": list(LEVELS),
    }
    return render(request, "event_detail.html", context, user=user)


@router.get("/tasks", response_class=HTMLResponse)
def task_board(
    request: Request,
    user: User = page_require("task.view"),
    session: Session = SESSION,
) -> Response:
    """The task board by department (command view); other departments see their own tasks
    and warnings, de-identified, and acknowledge them."""
    return render(request, "respond_tasks.html", _context(request, session, user), user=user)


@router.get("/consultations", response_class=HTMLResponse)
def consultations(
    request: Request,
    user: User = page_require("event.view"),
    session: Session = SESSION,
) -> Response:
    """研判会商: sessions, agenda from current signals and events, risk matrix, minutes and
    decisions that become tasks."""
    return render(
        request, "respond_consultations.html", _context(request, session, user), user=user
    )


@router.get("/contacts", response_class=HTMLResponse)
def contact_list(
    request: Request,
    user: User = page_require("event.view"),
    session: Session = SESSION,
) -> Response:
    """Close contacts with their daily follow-up and conversion into a case."""
    context = {
        **_context(request, session, user),
        "codes": codes,
        "occupations": code_table(codes.OCCUPATIONS),
    }
    return render(request, "respond_contacts.html", context, user=user)


@router.get("/plans", response_class=HTMLResponse)
def plan_templates(
    request: Request,
    user: User = page_require("event.manage"),
    session: Session = SESSION,
) -> Response:
    """Response plan templates: per event type, disease, tag and level, which departments
    do what within how many hours; editable by the city CDC (whole-city scope)."""
    context = {
        **_context(request, session, user),
        "editable": may_edit_plans(user),
        "levels": list(LEVELS),
    }
    return render(request, "respond_plans.html", context, user=user)


def may_edit_plans(user: User) -> bool:
    """Whether ``user`` may edit plan templates: ``event.manage`` over the whole city (the
    rule of ``PATCH /api/plans/{code}``)."""
    return has_permission(user, "event.manage") and not scope_for(user).region_prefix
