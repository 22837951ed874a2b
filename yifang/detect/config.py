"""Which detection method runs for which disease: rules read from ``data/methods.yaml``.

The file is data so that a CDC can change methods and parameters without a release; the
first rule of each name whose ``match`` fits a disease applies to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

METHODS_FILE = Path(__file__).parent / "data" / "methods.yaml"

Level = Literal["city", "county", "township"]
Granularity = Literal["day", "week"]
#: Digits of the region code kept at each level (GB/T 2260 and the statistical township code).
LEVEL_DIGITS: dict[str, int] = {"city": 4, "county": 6, "township": 9}
#: Days in one period of each granularity.
PERIOD_DAYS: dict[str, int] = {"day": 1, "week": 7}


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

    def matches(self, code: str, disease_class: str, managed_as_class_a: bool) -> bool:
        """Whether this rule applies to a disease."""
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
