"""JSON routes the pages need beyond the capabilities' own API: the dashboard's figures and
the card check as you type. Mounted under ``/api/web``.

Both read case data only through :mod:`yifang.cases.queries` with the caller's
:class:`~yifang.core.jurisdiction.Scope`, so the jurisdiction rule applied is the same one
the card API applies, inside the SQL.

Dashboard definitions (ISO weeks, days are calendar days in the city's time zone):

* *this week*: cards diagnosed in the 7 days ending today;
* *5-year average*: for each of the 5 previous years, cards diagnosed in the same 7 days
  shifted back by whole weeks (364 or 371 days per year, so weekdays line up), averaged over
  the years the database covers (a city that started reporting 2 years ago is compared with
  2 years, not with 3 empty ones; coverage is the database's, not the jurisdiction's);
* *epidemic curve*: cards by ISO week of onset over the last 26 weeks, per disease;
* *map*: cards diagnosed in the last 28 days per township of residence (current address)
  and per county, per 100,000 residents of the catalog's latest population year not after
  this one (county and city jurisdictions; a hospital's own cards are no incidence).

The figures of a jurisdiction are computed once for all its users and kept for
``dashboard_cache_seconds`` (:mod:`yifang.web.cache`); ``as_of`` says when. The aggregates
group in SQL by exactly what is shown (disease; disease and onset day), on the diagnosis-time
index.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Depends, HTTPException, status
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yifang.cases import queries
from yifang.cases.models import Card
from yifang.cases.service import RETURNED, SUBMITTED
from yifang.cases.validation import Reference, validate_card
from yifang.catalog.models import Disease, Population, Region
from yifang.core.accounts import User, has_permission
from yifang.core.auth import current_scope, current_user, require
from yifang.core.db import SESSION, utcnow
from yifang.core.jurisdiction import Scope
from yifang.core.settings import get_settings
from yifang.detect import service as signal_service
from yifang.detect.models import Signal
from yifang.respond.models import Event, Verification
from yifang.respond.service import (
    ACTIVE_EVENT_STATUSES,
    PENDING,
    Viewer,
    event_clause,
    verification_clause,
)
from yifang.web import cache

router = APIRouter(prefix="/web", tags=["pages"])

CURVE_WEEKS = 26
BASELINE_YEARS = 5
MAP_DAYS = 28
PER = 100_000


def local_today(now: datetime | None = None) -> date:
    """Today's date in the city's time zone (``now`` is naive UTC)."""
    now = now or utcnow()
    zone = ZoneInfo(get_settings().timezone)
    return now.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone).date()


def same_week_back(end: date, years: int) -> date:
    """``end`` moved back ``years`` years by whole weeks (52 or 53), keeping the weekday."""
    target = (
        end.replace(year=end.year - years)
        if not (end.month == 2 and end.day == 29)
        else (end - timedelta(days=365 * years))
    )
    weeks = round((end - target).days / 7)
    return end - timedelta(weeks=weeks)


def _grouped(session: Session, scope: Scope, flt: queries.CardFilter, *columns: Any) -> list[Any]:
    """Card counts grouped by ``columns`` within ``scope`` and ``flt`` (deleted cards left
    out by the filter), the jurisdiction applied by the cards' own scope clause."""
    stmt = (
        select(*columns, func.count())
        .where(queries.scope_clause(scope), *flt.clauses())
        .group_by(*columns)
    )
    return list(session.execute(stmt).all())


def _disease_totals(session: Session, scope: Scope, start: date, end: date) -> dict[str, int]:
    """Cards by disease diagnosed from ``start`` to ``end`` (inclusive days)."""
    flt = queries.CardFilter(diagnosis_from=start, diagnosis_to=end)
    return {d: int(n) for d, n in _grouped(session, scope, flt, Card.disease_code)}


def _first_card_day(session: Session) -> date | None:
    """The first diagnosis day the database holds (its coverage, read from the index)."""
    first = session.scalar(select(func.min(Card.diagnosis_time)))
    if first is None:
        return None
    return first.date() if isinstance(first, datetime) else date.fromisoformat(str(first)[:10])


def _count(session: Session, scope: Scope, *clauses: Any) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(Card).where(queries.scope_clause(scope), *clauses)
        )
        or 0
    )


@router.get("/dashboard")
def dashboard(
    user: User = Depends(require("dashboard.view")),
    scope: Scope = Depends(current_scope),
    session: Session = SESSION,
) -> dict[str, Any]:
    """The dashboard's figures for the caller's jurisdiction (aggregates only), at most
    ``dashboard_cache_seconds`` old, with the response's open work as of now."""
    now = utcnow()
    key = (cache.database_key(session), scope.region_prefix, scope.organisation_code)
    ttl = cache.get_cache_settings().dashboard_cache_seconds
    figures, computed = cache.dashboard_cache.get(key, ttl, lambda: figures_of(session, scope, now))
    as_of = datetime.fromtimestamp(computed, ZoneInfo(get_settings().timezone))
    return {
        **figures,
        "response": response_figures(session, Viewer.from_user(user, scope), now),
        "as_of": as_of.replace(microsecond=0).isoformat(),
    }


def response_figures(session: Session, viewer: Viewer, now: datetime) -> dict[str, Any]:
    """Open work of the response within the viewer's jurisdiction: open signals, pending
    verifications (how many overdue, how many escalated to the next level) and events
    still being handled, by status. A handful of counts on small tables, never cached, so
    an overdue verification shows the moment it falls due."""
    pending = (verification_clause(viewer), Verification.status == PENDING)

    def count(stmt: Any) -> int:
        return int(session.scalar(stmt) or 0)

    events = dict(
        session.execute(
            select(Event.status, func.count())
            .where(event_clause(viewer), Event.status.in_(ACTIVE_EVENT_STATUSES))
            .group_by(Event.status)
        ).all()
    )
    verifications = session.execute(
        select(
            func.count(),
            func.count().filter(Verification.due_at < now),
            func.count().filter(Verification.escalated_at.is_not(None)),
        ).where(*pending)
    ).one()
    return {
        "open_signals": count(
            signal_service.scoped(select(func.count()).select_from(Signal), viewer.scope).where(
                Signal.status == "open"
            )
        ),
        "verifications_pending": int(verifications[0]),
        "verifications_overdue": int(verifications[1]),
        "verifications_escalated": int(verifications[2]),
        "events": {status: int(events.get(status, 0)) for status in ACTIVE_EVENT_STATUSES},
        "events_open": int(sum(events.values())),
    }


def figures_of(session: Session, scope: Scope, now: datetime) -> dict[str, Any]:
    """Compute the dashboard's figures of ``scope`` at ``now`` (naive UTC)."""
    today = local_today(now)
    week_start = today - timedelta(days=6)
    this_week = _disease_totals(session, scope, week_start, today)

    first_day = _first_card_day(session)
    baseline: dict[str, float] = defaultdict(float)
    years_used = 0
    for k in range(1, BASELINE_YEARS + 1):
        end = same_week_back(today, k)
        start = end - timedelta(days=6)
        if first_day is None or first_day > start:
            continue
        years_used += 1
        for disease, n in _disease_totals(session, scope, start, end).items():
            baseline[disease] += n
    if years_used:
        baseline = defaultdict(float, {d: n / years_used for d, n in baseline.items()})

    curve_start = today - timedelta(weeks=CURVE_WEEKS - 1, days=today.weekday())
    # onset ≤ diagnosis, so bounding the diagnosis time too lets the index do the work
    curve_rows = _grouped(
        session,
        scope,
        queries.CardFilter(onset_from=curve_start, onset_to=today, diagnosis_from=curve_start),
        Card.disease_code,
        Card.onset_date,
    )
    weeks = [curve_start + timedelta(weeks=i) for i in range(CURVE_WEEKS)]
    curve: dict[str, list[int]] = defaultdict(lambda: [0] * CURVE_WEEKS)
    for disease, onset, n in curve_rows:
        day = onset if isinstance(onset, date) else date.fromisoformat(str(onset))
        index = (day - curve_start).days // 7
        if 0 <= index < CURVE_WEEKS:
            curve[disease][index] += int(n)

    names = {
        d.code: {"zh": d.name_zh, "en": d.name_en, "class": d.disease_class}
        for d in session.scalars(select(Disease))
    }
    diseases = sorted(
        set(this_week) | {d for d, v in baseline.items() if v > 0},
        key=lambda d: (-this_week.get(d, 0), -baseline.get(d, 0.0), d),
    )
    by_disease = [
        {
            "code": d,
            "name": names.get(d, {"zh": d, "en": d}),
            "this_week": this_week.get(d, 0),
            "baseline": round(baseline.get(d, 0.0), 2),
            "ratio": round(this_week.get(d, 0) / baseline[d], 2) if baseline.get(d) else None,
        }
        for d in diseases
    ]
    top = sorted(curve, key=lambda d: -sum(curve[d]))
    return {
        "map": incidence_map(session, scope, today),
        "today": today,
        "week": {"start": week_start, "end": today, "iso_week": today.isocalendar().week},
        "baseline_years": years_used,
        "totals": {
            "this_week": sum(this_week.values()),
            "baseline": round(sum(baseline.values()), 1),
            "awaiting_review": _count(session, scope, Card.status == SUBMITTED),
            "overdue": _count(session, scope, Card.status == SUBMITTED, Card.review_due_at < now),
            "returned": _count(session, scope, Card.status == RETURNED),
        },
        "by_disease": by_disease,
        "curve": {
            "weeks": [w.isoformat() for w in weeks],
            "series": [
                {"code": d, "name": names.get(d, {"zh": d, "en": d}), "counts": curve[d]}
                for d in top[:8]
            ],
            "total": [sum(curve[d][i] for d in curve) for i in range(CURVE_WEEKS)],
        },
    }


def _populations(session: Session, prefix: str, year: int) -> tuple[int | None, dict[str, int]]:
    """Total residents of each region under ``prefix`` in the latest year up to ``year``."""
    latest = session.scalar(
        select(func.max(Population.year)).where(
            Population.region_code.startswith(prefix), Population.year <= year
        )
    )
    if latest is None:
        return None, {}
    rows = session.execute(
        select(Population.region_code, Population.count).where(
            Population.region_code.startswith(prefix),
            Population.year == latest,
            Population.sex == "T",
            Population.age_from == 0,
            Population.age_to.is_(None),
        )
    )
    return int(latest), {code: int(n) for code, n in rows}


def _rate(cases: int, population: int | None) -> float | None:
    return round(cases * PER / population, 2) if population else None


def incidence_map(session: Session, scope: Scope, today: date) -> dict[str, Any] | None:
    """Cards per 100,000 residents by township and county over the last :data:`MAP_DAYS`
    days, within the jurisdiction's region; None for a hospital's own-cards scope."""
    if scope.organisation_code:
        return None
    city = get_settings().city_code.rstrip("0")[:4] or get_settings().city_code
    prefix = scope.region_prefix or city
    start = today - timedelta(days=MAP_DAYS - 1)
    flt = queries.CardFilter(diagnosis_from=start, diagnosis_to=today)
    by_town: dict[str, int] = defaultdict(int)
    for address, n in _grouped(session, scope, flt, Card.address_code):
        if address and address.startswith(prefix):
            by_town[address[:9]] += int(n)
    year, population = _populations(session, prefix, today.year)
    regions = session.scalars(
        select(Region)
        .where(Region.code.startswith(prefix), Region.level.in_((3, 4)), Region.active.is_(True))
        .order_by(Region.code)
    ).all()
    counties = {r.code: r.name for r in regions if r.level == 3}
    county_cases: dict[str, int] = defaultdict(int)
    for town, n in by_town.items():
        county_cases[town[:6]] += n
    return {
        "days": MAP_DAYS,
        "start": start,
        "end": today,
        "population_year": year,
        "counties": [
            {
                "code": code,
                "name": name,
                "cases": county_cases.get(code, 0),
                "population": population.get(code),
                "incidence": _rate(county_cases.get(code, 0), population.get(code)),
            }
            for code, name in counties.items()
        ],
        "townships": [
            {
                "code": r.code,
                "name": r.name,
                "county": counties.get(r.code[:6], r.code[:6]),
                "lon": r.longitude,
                "lat": r.latitude,
                "cases": by_town.get(r.code, 0),
                "population": population.get(r.code),
                "incidence": _rate(by_town.get(r.code, 0), population.get(r.code)),
            }
            for r in regions
            if r.level == 4 and r.longitude is not None and r.latitude is not None
        ],
    }


async def card_writer(user: User = Depends(current_user)) -> User:
    """Callers who may enter or correct cards (``card.create`` or ``card.edit``)."""
    if not (has_permission(user, "card.create") or has_permission(user, "card.edit")):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="needs card.create or card.edit")
    return user


@router.post("/validate-card")
def validate(
    data: dict[str, Any] = Body(...),
    _user: User = Depends(card_writer),
    session: Session = SESSION,
) -> dict[str, Any]:
    """Check a card as entered (raw form values) against every rule; nothing is stored."""
    raw = {k: v for k, v in data.items() if isinstance(v, str | int | float) or v is None}
    outcome = validate_card(raw, Reference.from_session(session), utcnow())
    return {"ok": outcome.ok, "errors": [e.model_dump() for e in outcome.errors]}
