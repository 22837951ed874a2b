"""Multi-source triggers (多点触发): a warning that several sources confirm ranks higher.

A signal of one series (a disease's report cards, a syndrome, a stream) is confirmed by a
signal of another series that ``data/corroboration.yaml`` puts in the same group (e.g.
influenza cards, the fever-with-respiratory-symptoms syndrome, ILI% and influenza
positivity of the multiplex panel) when the two lie in the same place — the same region at
the group's level, so a county's ILI% signal covers every township inside the county — and
their alarm periods come within the group's ``window_days`` of each other. Card series of two
different diseases never confirm each other: they are two outbreaks, not one seen twice.

Each signal records

* ``corroboration`` — how many other members confirm it (each member once, whatever the
  number of its signals or rules);
* ``rank_score`` — 1 + the sum of their weights (1 unless the file gives a smaller weight to
  sources that react to many causes, such as all-cause school absence or pharmacy sales);
* ``corroborated_by`` — who: source, code, label, the confirming signal, its region and
  dates, and the group;

and its explanation ends with a sentence naming them. :func:`corroborate_signals` recomputes
this for every signal near the evaluated days after each detection run, so a later signal
of another source raises the rank of an earlier one too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from yifang.detect.config import LEVEL_DIGITS, SOURCES
from yifang.detect.models import Signal

CORROBORATION_FILE = Path(__file__).parent / "data" / "corroboration.yaml"
#: Where the sentence naming the confirming sources starts in an explanation.
MARK_ZH = "\n多点触发："
MARK_EN = "\nMulti-source: "

Member = tuple[str, str]  # (source, code)


@dataclass(frozen=True)
class Group:
    """Series that confirm each other: member → weight; same place at ``level``, alarm
    periods within ``window_days``."""

    name: str
    name_zh: str
    name_en: str
    members: Mapping[Member, float]
    window_days: int = 7
    level: str = "county"


@dataclass(frozen=True)
class CorroborationConfig:
    """All groups of the file, and for each member the groups it is in."""

    groups: tuple[Group, ...]

    def groups_of(self, member: Member) -> list[Group]:
        return [g for g in self.groups if member in g.members]

    @property
    def max_window(self) -> int:
        return max((g.window_days for g in self.groups), default=0)


def parse_corroboration(raw: Mapping[str, Any]) -> CorroborationConfig:
    """Validate the file's structure; raises ValueError naming the bad group or member."""
    window = int(raw.get("window_days", 7))
    level = str(raw.get("level", "county"))
    groups: list[Group] = []
    for name, item in (raw.get("groups") or {}).items():
        try:
            g_level = str(item.get("level", level))
            if g_level not in LEVEL_DIGITS:
                raise ValueError(f"level must be one of {sorted(LEVEL_DIGITS)}")
            members: dict[Member, float] = {}
            for m in item.get("members") or []:
                source = str(m["source"])
                if source not in SOURCES:
                    raise ValueError(f"member {m!r}: source must be one of {list(SOURCES)}")
                weight = float(m.get("weight", 1.0))
                if weight < 0:
                    raise ValueError(f"member {m!r}: weight must not be negative")
                members[(source, str(m["code"]))] = weight
            if len(members) < 2:
                raise ValueError("a group needs at least two members")
            g_window = int(item.get("window_days", window))
            if g_window < 0:
                raise ValueError("window_days must not be negative")
            groups.append(
                Group(
                    name=str(name),
                    name_zh=str(item.get("name_zh", name)),
                    name_en=str(item.get("name_en", name)),
                    members=members,
                    window_days=g_window,
                    level=g_level,
                )
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"corroboration group {name!r}: {exc}") from exc
    return CorroborationConfig(tuple(groups))


@lru_cache(maxsize=4)
def load_corroboration(path: Path = CORROBORATION_FILE) -> CorroborationConfig:
    """Read the groups file (cached)."""
    with path.open(encoding="utf-8") as fh:
        return parse_corroboration(yaml.safe_load(fh) or {})


def member_of(sig: Signal) -> Member:
    """The (source, code) a signal belongs to (older card signals have only a disease)."""
    return (sig.source or "cards", sig.series_code or sig.disease_code or "")


def _label(sig: Signal) -> tuple[str, str]:
    code = member_of(sig)[1]
    return sig.series_name_zh or code, sig.series_name_en or code


def same_place(a: str, b: str, level: str) -> bool:
    """Whether two region codes fall in the same region at ``level`` (a coarser code
    matches every finer code inside it)."""
    digits = min(LEVEL_DIGITS[level], len(a), len(b))
    return a[:digits] == b[:digits]


def near_in_time(a: Signal, b: Signal, window_days: int) -> bool:
    """Whether two signals' alarm periods come within ``window_days`` of each other."""
    w = timedelta(days=window_days)
    return a.first_date <= b.last_date + w and b.first_date <= a.last_date + w


@dataclass(frozen=True)
class Confirmation:
    """One member confirming a signal, through its best (heaviest, then nearest) signal."""

    member: Member
    weight: float
    signal: Signal
    group: Group


def confirmations(
    sig: Signal, others: Iterable[Signal], config: CorroborationConfig
) -> list[Confirmation]:
    """The members confirming ``sig`` among ``others``, one each, heaviest first."""
    mine = member_of(sig)
    groups = config.groups_of(mine)
    best: dict[Member, Confirmation] = {}
    if not groups:
        return []
    for other in others:
        theirs = member_of(other)
        if theirs == mine or (mine[0] == "cards" and theirs[0] == "cards"):
            continue
        for g in groups:
            weight = g.members.get(theirs)
            if weight is None:
                continue
            if not (
                same_place(sig.region_code, other.region_code, g.level)
                and near_in_time(sig, other, g.window_days)
            ):
                continue
            held = best.get(theirs)
            gap = abs((other.last_date - sig.last_date).days)
            if (
                held is None
                or weight > held.weight
                or (
                    weight == held.weight
                    and gap < abs((held.signal.last_date - sig.last_date).days)
                )
            ):
                best[theirs] = Confirmation(theirs, weight, other, g)
    return sorted(best.values(), key=lambda c: (-c.weight, c.member))


def _sentence(found: Sequence[Confirmation]) -> tuple[str, str]:
    names_zh = "、".join(_label(c.signal)[0] for c in found)
    names_en = ", ".join(_label(c.signal)[1] for c in found)
    zh = f"{MARK_ZH}同期同地另有 {len(found)} 个来源预警（{names_zh}），排序靠前。"
    en = f"{MARK_EN}{len(found)} other source(s) alarm in the same place and time ({names_en})."
    return zh, en


def _strip(text: str, mark: str) -> str:
    return text.split(mark, 1)[0]


def apply(sig: Signal, found: Sequence[Confirmation]) -> bool:
    """Record ``found`` on ``sig`` (score, names, explanation); True if anything changed."""
    score = 1.0 + sum(c.weight for c in found)
    listed = [
        {
            "source": c.member[0],
            "code": c.member[1],
            "name_zh": _label(c.signal)[0],
            "name_en": _label(c.signal)[1],
            "signal_id": c.signal.id,
            "region_code": c.signal.region_code,
            "first_date": c.signal.first_date.isoformat(),
            "last_date": c.signal.last_date.isoformat(),
            "group": c.group.name,
            "weight": c.weight,
        }
        for c in found
    ]
    base_zh = _strip(sig.explanation_zh or "", MARK_ZH)
    base_en = _strip(sig.explanation_en or "", MARK_EN)
    zh, en = _sentence(found) if found else ("", "")
    changed = (
        sig.corroboration != len(found)
        or abs((sig.rank_score or 0.0) - score) > 1e-9
        or (sig.corroborated_by or []) != listed
        or sig.explanation_zh != base_zh + zh
    )
    if changed:
        sig.corroboration = len(found)
        sig.rank_score = score
        sig.corroborated_by = listed
        sig.explanation_zh = base_zh + zh
        sig.explanation_en = base_en + en
    return changed


def corroborate_signals(
    session: Session,
    *,
    start: date,
    end: date,
    config: CorroborationConfig | None = None,
) -> int:
    """Recompute the corroboration of every signal whose alarm periods reach from ``start``
    minus the widest window to ``end`` plus it (the signals of a run's days and those they
    may confirm); returns how many signals it changed. The caller commits."""
    config = config or load_corroboration()
    if not config.groups:
        return 0
    w = timedelta(days=config.max_window)
    lo, hi = start - w, end + w
    # signals near the days, and the ones those may reach
    signals = list(
        session.scalars(
            select(Signal).where(and_(Signal.last_date >= lo - w, Signal.first_date <= hi + w))
        )
    )
    by_member: dict[Member, list[Signal]] = defaultdict(list)
    for sig in signals:
        by_member[member_of(sig)].append(sig)
    changed = 0
    for sig in signals:
        if sig.last_date < lo or sig.first_date > hi:
            continue
        mine = member_of(sig)
        related = {m for g in config.groups_of(mine) for m in g.members if m != mine}
        others = [o for m in related for o in by_member.get(m, ())]
        if apply(sig, confirmations(sig, others, config)):
            changed += 1
    session.flush()
    return changed
