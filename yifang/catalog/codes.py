"""The card's code lists (sex, ID types, 人群分类, case classifications …) read from
``data/codes.yaml``.

The lists are reference data, not code: an administrator changes the YAML file (and its
``version``) without a release. They are read once per process and cached; the returned
mappings are read-only.

>>> code_list("sex")["1"].zh
'男'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

# The C parser when PyYAML was built with libyaml (several times faster), else Python's.
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

DATA_DIR = Path(__file__).parent / "data"
CODES_FILE = DATA_DIR / "codes.yaml"


class UnknownCodeListError(KeyError):
    """Raised for a code-list name that ``codes.yaml`` does not define."""


@dataclass(frozen=True, slots=True)
class Label:
    """The Chinese and English label of one code, plus any extra attributes of the list
    (e.g. ``max_age_years`` for the 人群分类 codes only children may have)."""

    zh: str
    en: str
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def text(self, language: str = "zh") -> str:
        """The label in ``language`` ("zh" or "en"; anything else gives Chinese)."""
        return self.en if language == "en" else self.zh


@dataclass(frozen=True, slots=True)
class CodeLists:
    """Every code list of one version of ``codes.yaml``."""

    version: str
    lists: Mapping[str, Mapping[str, Label]]


def parse_code_lists(raw: Mapping[str, Any], source: str = "codes.yaml") -> CodeLists:
    """Check and convert the parsed YAML; errors name the list and code at fault."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("lists"), Mapping):
        raise ValueError(f"{source}: expected a mapping with a 'lists' key")
    lists: dict[str, Mapping[str, Label]] = {}
    for name, entries in raw["lists"].items():
        if not isinstance(entries, Mapping) or not entries:
            raise ValueError(f"{source}: list {name!r} must be a non-empty mapping")
        parsed: dict[str, Label] = {}
        for code, entry in entries.items():
            if not isinstance(code, str):
                raise ValueError(f"{source}: {name}.{code!r}: codes must be quoted strings")
            if not isinstance(entry, Mapping) or not entry.get("zh") or not entry.get("en"):
                raise ValueError(f"{source}: {name}.{code}: needs both 'zh' and 'en' labels")
            attributes = {k: v for k, v in entry.items() if k not in ("zh", "en")}
            parsed[code] = Label(
                zh=str(entry["zh"]),
                en=str(entry["en"]),
                attributes=MappingProxyType(attributes),
            )
        lists[str(name)] = MappingProxyType(parsed)
    return CodeLists(version=str(raw.get("version", "")), lists=MappingProxyType(lists))


@cache
def load_code_lists(path: Path = CODES_FILE) -> CodeLists:
    """All code lists of ``path`` (default: the packaged ``codes.yaml``), cached."""
    with path.open(encoding="utf-8") as fh:
        raw = yaml.load(fh, Loader=SafeLoader)
    return parse_code_lists(raw, source=str(path.name))


def code_list(name: str) -> Mapping[str, Label]:
    """The codes of list ``name`` mapped to their labels, in file order.

    Raises :class:`UnknownCodeListError` (a ``KeyError``) naming the known lists when ``name`` is
    not defined.
    """
    lists = load_code_lists().lists
    try:
        return lists[name]
    except KeyError:
        known = ", ".join(sorted(lists))
        raise UnknownCodeListError(f"no code list {name!r}; known lists: {known}") from None


def code_list_names() -> list[str]:
    """The names of every code list, sorted."""
    return sorted(load_code_lists().lists)


def label(name: str, code: str, language: str = "zh") -> str | None:
    """The label of ``code`` in list ``name``, or ``None`` if the code is not in the list."""
    entry = code_list(name).get(code)
    return entry.text(language) if entry is not None else None


def is_valid(name: str, code: str | None) -> bool:
    """Whether ``code`` is a code of list ``name``."""
    return code is not None and code in code_list(name)
