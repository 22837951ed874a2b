"""Grading of confirmed events: 突发公共卫生事件相关信息 and emergency levels I-IV.

The thresholds are data (``data/grading.yaml``; rows not confirmed by a source carry
``confirmed: false``). :func:`suggest_grade` counts the cases linked to the event per
group (collective unit, township, county, city or the whole event) within sliding windows
of onset dates and reports every threshold reached; the suggestion is the most serious level
reached and whether any 相关信息 threshold is. A person then accepts the suggestion or sets
another grade with a reason (:func:`grade_event`); every grading is kept
(:class:`~yifang.respond.models.EventGrade`), so a re-grading never loses the earlier one.

What the counts cannot show — spread tendency, several provinces, incidence against the
5-year mean — is left to the people grading; the basis lists what was counted.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yifang.catalog.models import Disease
from yifang.core.db import utcnow
from yifang.respond.config import LEVELS, GradeRule, grading_config
from yifang.respond.models import Event, EventGrade
from yifang.respond.service import (
    EVENT,
    BadRequestError,
    Viewer,
    event_cases,
    event_for_update,
    notify_cdc,
    transition,
)


@dataclass(frozen=True)
class CaseFact:
    """What grading needs of one linked case."""

    disease_code: str
    subtype_code: str | None
    onset: date
    unit: str
    township: str
    county: str
    city: str
    died: bool


@dataclass(frozen=True)
class RuleHit:
    """A threshold reached: which rule, in which group, with what counts."""

    rule: str
    level: str | None
    group: str
    cases: int
    deaths: int
    groups: int
    confirmed: bool
    zh: str
    en: str


@dataclass(frozen=True)
class Suggestion:
    """The grade Yifang suggests and the thresholds behind it."""

    related_info: bool
    level: str | None
    basis: list[RuleHit] = field(default_factory=list)

    def basis_dicts(self) -> list[dict[str, Any]]:
        """The basis as JSON-ready dicts."""
        return [asdict(h) for h in self.basis]


def case_facts(session: Session, event_id: int) -> list[CaseFact]:
    """The linked cases of an event reduced to what the thresholds count."""
    facts = []
    for link, card in event_cases(session, event_id):
        township = card.address_code[:9]
        facts.append(
            CaseFact(
                disease_code=card.disease_code,
                subtype_code=card.subtype_code,
                onset=card.onset_date,
                unit=(link.unit or card.work_unit or f"township:{township}").strip(),
                township=township,
                county=card.address_code[:6],
                city=card.address_code[:4],
                died=card.death_date is not None,
            )
        )
    return facts


def _window(rule: GradeRule, session: Session, diseases: set[str]) -> int | None:
    """The rule's window in days; ``incubation_mean`` reads the catalog (rounded up)."""
    if rule.window_days is None:
        return None
    if isinstance(rule.window_days, int):
        return rule.window_days
    means = [
        d.incubation_mean_days
        for d in session.scalars(select(Disease).where(Disease.code.in_(sorted(diseases))))
        if d.incubation_mean_days
    ]
    return max(1, math.ceil(max(means))) if means else 7


def _max_in_window(days: Sequence[date], window: int | None) -> tuple[int, date | None]:
    """The most dates falling in any ``window`` consecutive days (all of them if None)."""
    ordered = sorted(days)
    if not ordered:
        return 0, None
    if window is None:
        return len(ordered), ordered[0]
    best, start_at, j = 0, ordered[0], 0
    for i, day in enumerate(ordered):
        while (day - ordered[j]).days >= window:
            j += 1
        if i - j + 1 > best:
            best, start_at = i - j + 1, ordered[j]
    return best, start_at


def _evaluate(
    rule: GradeRule, facts: Sequence[CaseFact], event: Event, session: Session
) -> RuleHit | None:
    if rule.event_types:
        if event.event_type not in rule.event_types:
            return None
        if rule.tags and not set(rule.tags) & set(event.tags or []):
            return None
        people = max(len(facts), event.affected or 0)
        deaths = max(sum(f.died for f in facts), event.deaths or 0)
        if (rule.min_cases and people >= rule.min_cases) or (
            rule.min_deaths and deaths >= rule.min_deaths
        ):
            return RuleHit(
                rule.id, rule.level, "event", people, deaths, 1, rule.confirmed, rule.zh, rule.en
            )
        return None
    chosen = [
        f
        for f in facts
        if f.disease_code in rule.diseases
        and (not rule.subtypes or (f.subtype_code or "") in rule.subtypes)
    ]
    if not chosen:
        return None
    window = _window(rule, session, {f.disease_code for f in chosen})
    groups: dict[str, list[CaseFact]] = defaultdict(list)
    for f in chosen:
        key = {"unit": f.unit, "township": f.township, "county": f.county, "city": f.city}.get(
            rule.per, "event"
        )
        groups[key].append(f)
    best: RuleHit | None = None
    for key, members in groups.items():
        cases, _ = _max_in_window([m.onset for m in members], window)
        deaths, _ = _max_in_window([m.onset for m in members if m.died], window)
        if (rule.min_cases and cases >= rule.min_cases) or (
            rule.min_deaths and deaths >= rule.min_deaths
        ):
            hit = RuleHit(
                rule.id,
                rule.level,
                key,
                cases,
                deaths,
                len(groups),
                rule.confirmed,
                rule.zh,
                rule.en,
            )
            if best is None or cases > best.cases:
                best = hit
    if best is None and rule.min_groups:
        spread = _spread(chosen, rule.per, window)
        if spread >= rule.min_groups:
            best = RuleHit(
                rule.id, rule.level, "*", len(chosen), 0, spread, rule.confirmed, rule.zh, rule.en
            )
    return best


def _spread(facts: Sequence[CaseFact], per: str, window: int | None) -> int:
    """The most distinct groups with a case within any window of onset dates."""
    ordered = sorted(facts, key=lambda f: f.onset)
    best = 0
    for i, first in enumerate(ordered):
        keys = {
            getattr(f, per, "event")
            for f in ordered[i:]
            if window is None or (f.onset - first.onset).days < window
        }
        best = max(best, len(keys))
    return best


def suggest_grade(session: Session, event: Event) -> Suggestion:
    """The grade the linked cases (and the event's counts) reach under grading.yaml."""
    cfg = grading_config()
    facts = case_facts(session, event.id)
    hits = [
        h
        for rule in (*cfg.related_info, *cfg.levels)
        if (h := _evaluate(rule, facts, event, session)) is not None
    ]
    levels = [h.level for h in hits if h.level]
    level = min(levels, key=LEVELS.index) if levels else None
    related = any(h.level is None for h in hits) or level is not None
    return Suggestion(related_info=related, level=level, basis=hits)


def grade_event(
    session: Session,
    event_id: int,
    *,
    viewer: Viewer,
    version: int,
    related_info: bool | None = None,
    level: str | None = None,
    accept: bool = False,
    reason: str | None = None,
    now: datetime | None = None,
) -> EventGrade:
    """Grade (or re-grade) a confirmed or responding event.

    ``accept`` takes Yifang's suggestion as it stands; otherwise ``related_info`` and
    ``level`` are set by hand, and a grade that differs from the suggestion needs a reason.
    Each call adds an :class:`EventGrade`; the event holds the latest.
    """
    now = now or utcnow()
    if level is not None and level not in LEVELS:
        raise BadRequestError(
            f"事件级别应为 {'、'.join(LEVELS)} 之一",
            f"level must be one of {', '.join(LEVELS)} or empty",
            field="level",
        )
    event = event_for_update(session, viewer, event_id)
    EVENT.check(event, "grade", version)
    suggestion = suggest_grade(session, event)
    if accept:
        related_info, level = suggestion.related_info, suggestion.level
    elif related_info is None:
        raise BadRequestError(
            "须选择是否属于突发公共卫生事件相关信息,或接受系统建议",
            "give related_info (and level) or accept the suggestion",
            field="related_info",
        )
    if level is not None:
        related_info = True
    agreed = related_info == suggestion.related_info and level == suggestion.level
    text = (reason or "").strip() or None
    if not agreed and not text:
        raise BadRequestError(
            "定级与系统建议不同,须填写理由",
            "a grade other than the suggestion needs a reason",
            field="reason",
        )
    assert related_info is not None
    transition(
        session,
        EVENT,
        event,
        "grade",
        actor=viewer.actor,
        version=version,
        changes={"related_info": related_info, "level": level},
        reason=text,
        now=now,
    )
    grade = EventGrade(
        event_id=event.id,
        related_info=related_info,
        level=level,
        suggested_related_info=suggestion.related_info,
        suggested_level=suggestion.level,
        accepted=agreed,
        basis=suggestion.basis_dicts(),
        reason=text,
        actor=viewer.actor,
        at=now,
    )
    session.add(grade)
    session.flush()
    names = grading_config().level_names
    label = f"{level}级({names.get(level, {}).get('zh', '')})" if level else "未达分级标准"
    notify_cdc(
        session,
        event.organisation_code,
        event.region_code,
        kind="event_graded",
        title=f"事件定级:{event.title}",
        body=(
            f"{event.number}:{'属于' if related_info else '不属于'}突发公共卫生事件相关信息;{label}"
        ),
        entity_type="event",
        entity_id=event.id,
    )
    return grade


def grades(session: Session, event_id: int) -> list[EventGrade]:
    """Every grading of an event, oldest first."""
    return list(
        session.scalars(
            select(EventGrade).where(EventGrade.event_id == event_id).order_by(EventGrade.id)
        )
    )
