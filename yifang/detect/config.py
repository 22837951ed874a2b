"""Which detection method runs for which series: rules read from ``data/methods.yaml``.

The file is data so that a CDC can change methods and parameters without a release. A rule
watches one ``source`` of series: ``cards`` (report cards per disease; the first rule of each
name whose ``match`` fits a disease applies to it), ``syndrome`` (syndrome counts of the
hospital front end) or ``stream`` (the other surveillance streams: school absenteeism,
pharmacy sales, ILI%, multiplex positivity, livestock serology); for the last two ``match``
lists the series codes (none: every series the source holds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

METHODS_FILE = Path(__file__).parent / "data" / "methods.yaml"
SOURCES_FILE = Path(__file__).parent / "data" / "sources.yaml"

Level = Literal["city", "county", "township"]
Granularity = Literal["day", "week"]
#: Digits of the region code kept at each level (GB/T 2260 and the statistical township code).
LEVEL_DIGITS: dict[str, int] = {"city": 4, "county": 6, "township": 9}
#: Days in one period of each granularity.
PERIOD_DAYS: dict[str, int] = {"day": 1, "week": 7}
#: Where series come from: report cards, syndrome counts, other surveillance streams.
SOURCES: tuple[str, ...] = ("cards", "syndrome", "stream")


@dataclass(frozen=True)
class Rule:
    """One detection rule: a method with parameters for the diseases it matches."""

    name: str
    method: str
    level: Level
    granularity: Granularity
    params: dict[str, Any] = field(default_factory=dict)
    classes: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    managed_as_class_a: bool = False
    history_years: int = 5
    close_after: int = 3
    source: str = "cards"
    #: Leave out the periods no series of a batch has a value for (days without school, the
    #: days livestock are not sampled), so the method's baseline is the previous observed
    #: periods instead of a gap that leaves it undefined.
    skip_missing: bool = False

    def matches(self, code: str, disease_class: str, managed_as_class_a: bool) -> bool:
        """Whether this rule applies to a disease (rules of the card source only)."""
        if self.source != "cards":
            return False
        if code in self.codes:
            return True
        if self.managed_as_class_a and managed_as_class_a:
            return True
        return disease_class in self.classes


@dataclass(frozen=True)
class MethodConfig:
    """All rules, in file order, and the date the cases are counted by."""

    version: str
    date_field: str
    rules: tuple[Rule, ...]
    aggregate_to_parent: frozenset[str] = frozenset()

    def rules_for(self, code: str, disease_class: str, managed_as_class_a: bool) -> list[Rule]:
        """The rules that apply to one disease: the first matching rule of each name."""
        chosen: dict[str, Rule] = {}
        for rule in self.rules:
            if rule.name not in chosen and rule.matches(code, disease_class, managed_as_class_a):
                chosen[rule.name] = rule
        # A disease that gets the single-case rule needs no statistical rule beside it.
        singles = [r for r in chosen.values() if r.method == "fixed_threshold"]
        return singles or list(chosen.values())

    def rules_of(self, source: str) -> list[Rule]:
        """The rules watching a source other than the cards, in file order."""
        return [r for r in self.rules if r.source == source]


def parse_config(raw: dict[str, Any]) -> MethodConfig:
    """Validate and convert the YAML structure; raises ValueError naming the bad rule."""
    rules: list[Rule] = []
    for i, item in enumerate(raw.get("rules") or []):
        try:
            match = item.get("match") or {}
            level = item.get("level", "county")
            granularity = item.get("granularity", "day")
            if level not in LEVEL_DIGITS:
                raise ValueError(f"level must be one of {sorted(LEVEL_DIGITS)}")
            if granularity not in PERIOD_DAYS:
                raise ValueError(f"granularity must be one of {sorted(PERIOD_DAYS)}")
            source = str(item.get("source", "cards"))
            if source not in SOURCES:
                raise ValueError(f"source must be one of {list(SOURCES)}")
            rules.append(
                Rule(
                    name=str(item["name"]),
                    method=str(item["method"]),
                    level=level,
                    granularity=granularity,
                    params=dict(item.get("params") or {}),
                    classes=tuple(match.get("classes") or ()),
                    codes=tuple(match.get("codes") or ()),
                    managed_as_class_a=bool(match.get("managed_as_class_a", False)),
                    history_years=int(item.get("history_years", 5)),
                    close_after=int(item.get("close_after", 3)),
                    source=source,
                    skip_missing=bool(item.get("skip_missing", False)),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"methods rule #{i + 1} ({item!r:.60}): {exc}") from exc
    return MethodConfig(
        version=str(raw.get("version", "")),
        date_field=str(raw.get("date_field", "diagnosis")),
        rules=tuple(rules),
        aggregate_to_parent=frozenset(raw.get("aggregate_to_parent") or ()),
    )


@lru_cache(maxsize=4)
def load_config(path: Path = METHODS_FILE) -> MethodConfig:
    """Read the rules file (cached)."""
    with path.open(encoding="utf-8") as fh:
        return parse_config(yaml.safe_load(fh) or {})


# ---------------------------------------------------------------------------------------
# The series of the other sources: data/sources.yaml
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesInfo:
    """A syndrome or stream as the engine shows it: label and measure.

    ``measure``: ``count`` (cases, visits, packs per period), ``share`` (syndrome visits per
    100 visits) or ``rate`` (Σ value / Σ denominator per 100).
    """

    source: str
    code: str
    name_zh: str
    name_en: str
    measure: str = "count"

    @property
    def unit_zh(self) -> str:
        return "%" if self.measure in ("share", "rate") else ""


@dataclass(frozen=True)
class SourcesConfig:
    """Labels and measures of the syndrome and stream series, by source and code."""

    series: Mapping[tuple[str, str], SeriesInfo] = field(default_factory=dict)

    def info(self, source: str, code: str) -> SeriesInfo:
        """The series' label and measure (the code itself and counts when not declared)."""
        found = self.series.get((source, code))
        return found if found is not None else SeriesInfo(source, code, code, code)


MEASURES = ("count", "share", "rate")


def parse_sources(raw: Mapping[str, Any]) -> SourcesConfig:
    """Validate the sources file; raises ValueError naming the bad entry."""
    out: dict[tuple[str, str], SeriesInfo] = {}
    for source in ("syndrome", "stream"):
        for code, item in ((raw.get(source) or {}).get("series") or {}).items():
            item = item or {}
            measure = str(item.get("measure", "count"))
            if measure not in MEASURES:
                raise ValueError(f"{source} series {code!r}: measure must be one of {MEASURES}")
            out[(source, str(code))] = SeriesInfo(
                source=source,
                code=str(code),
                name_zh=str(item.get("name_zh", code)),
                name_en=str(item.get("name_en", code)),
                measure=measure,
            )
    return SourcesConfig(out)


@lru_cache(maxsize=4)
def load_sources(path: Path = SOURCES_FILE) -> SourcesConfig:
    """Read the sources file (cached)."""
    with path.open(encoding="utf-8") as fh:
        return parse_sources(yaml.safe_load(fh) or {})
