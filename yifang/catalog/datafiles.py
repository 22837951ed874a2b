"""Reading and checking the catalog's data files (``yifang/catalog/data``) into table rows.

Pure functions, no database: the loader in ``service.py`` writes what these return, and the
data-integrity tests call them directly. Every error names the file and the entry or row
number at fault, so an administrator who edits a file is told exactly what to fix.

Files
-----
``diseases.yaml``       the disease catalogue (versioned; children inherit their parent's rules)
``codes.yaml``          the card's code lists (read by ``yifang.catalog.codes``)
``regions.csv``         GB/T 2260 divisions (whole country to county, the default city to township)
``population.csv``      population by region, year, sex and age band
``organisations.csv``   reporting organisations
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from yifang.catalog.codes import DATA_DIR, SafeLoader
from yifang.catalog.schemas import DiseaseCreate

DISEASES_FILE = DATA_DIR / "diseases.yaml"
REGIONS_FILE = DATA_DIR / "regions.csv"
POPULATION_FILE = DATA_DIR / "population.csv"
ORGANISATIONS_FILE = DATA_DIR / "organisations.csv"

# Fields a child disease takes from its parent when it does not set them itself.
INHERITED = (
    "disease_class",
    "managed_as_class_a",
    "report_limit_hours",
    "review_limit_hours",
    "classifications",
    "chronicity",
    "incubation_min_days",
    "incubation_mean_days",
    "incubation_max_days",
    "serial_interval_mean_days",
    "serial_interval_sd_days",
    "duplicate_window_days",
    "transmission_route",
    "valid_from",
    "valid_to",
    "active",
)
# YAML keys that go into the ``extra`` JSON column.
EXTRA_KEYS = ("aliases", "rules", "estimated", "notes", "subtype_required")
# ``estimated`` entries name these value groups; each maps to its columns.
ESTIMATE_COLUMNS = {
    "incubation_min": "incubation_min_days",
    "incubation_mean": "incubation_mean_days",
    "incubation_max": "incubation_max_days",
    "serial_interval_mean": "serial_interval_mean_days",
    "serial_interval_sd": "serial_interval_sd_days",
}
RENAMED = {"class": "disease_class", "parent": "parent_code", "route": "transmission_route"}
PLAIN_KEYS = {
    "code",
    "national_code",
    "icd10",
    "name_zh",
    "name_en",
    "managed_as_class_a",
    "report_limit_hours",
    "review_limit_hours",
    "classifications",
    "chronicity",
    "subtypes",
    "duplicate_window_days",
    "valid_from",
    "valid_to",
    "active",
}


class DataFileError(ValueError):
    """A data file that cannot be loaded; the message names the file and the entry or row."""


@dataclass(frozen=True, slots=True)
class DiseaseCatalogue:
    """The parsed ``diseases.yaml``: its version and every disease, parents first."""

    version: str
    effective_from: str | None
    diseases: list[DiseaseCreate]


def _entry_columns(entry: Mapping[str, Any], where: str) -> dict[str, Any]:
    """One YAML entry in column names (before inheritance and defaults)."""
    columns: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in entry.items():
        if key in PLAIN_KEYS:
            columns[key] = value
        elif key in RENAMED:
            columns[RENAMED[key]] = value
        elif key == "incubation_days":
            if not isinstance(value, Mapping) or not set(value) <= {"min", "mean", "max"}:
                raise DataFileError(f"{where}: incubation_days needs {{min, mean, max}}")
            for part in ("min", "mean", "max"):
                columns[f"incubation_{part}_days"] = value.get(part)
        elif key == "serial_interval_days":
            if not isinstance(value, Mapping) or not set(value) <= {"mean", "sd"}:
                raise DataFileError(f"{where}: serial_interval_days needs {{mean, sd}}")
            columns["serial_interval_mean_days"] = value.get("mean")
            columns["serial_interval_sd_days"] = value.get("sd")
        elif key in EXTRA_KEYS:
            extra[key] = value
        else:
            raise DataFileError(f"{where}: unknown key {key!r}")
    if "estimated" in extra:
        unknown = [e for e in extra["estimated"] if e not in ESTIMATE_COLUMNS]
        if unknown:
            raise DataFileError(
                f"{where}: estimated: unknown {unknown}; use {', '.join(ESTIMATE_COLUMNS)}"
            )
    if "subtype_required" in extra and not isinstance(extra["subtype_required"], bool):
        raise DataFileError(f"{where}: subtype_required must be true or false")
    extra.setdefault("subtype_required", False)
    columns["extra"] = extra
    return columns


def _inherit(own: dict[str, Any], parent: Mapping[str, Any]) -> dict[str, Any]:
    """``own`` completed with the parent's rule fields it does not set; estimate flags of
    inherited values come along."""
    merged = dict(own)
    inherited = [key for key in INHERITED if key not in own]
    for key in inherited:
        merged[key] = parent[key]
    parent_estimates = parent.get("extra", {}).get("estimated", [])
    carried = [e for e in parent_estimates if ESTIMATE_COLUMNS[e] in inherited]
    if carried:
        extra = dict(merged["extra"])
        extra["estimated"] = sorted(set(extra.get("estimated", [])) | set(carried))
        merged["extra"] = extra
    return merged


def parse_diseases(raw: Any, source: str = "diseases.yaml") -> DiseaseCatalogue:
    """Check ``diseases.yaml`` (already parsed) and resolve inheritance and defaults."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("diseases"), list):
        raise DataFileError(f"{source}: expected a mapping with a 'diseases' list")
    if not raw.get("version"):
        raise DataFileError(f"{source}: missing top-level 'version'")
    defaults = dict(raw.get("defaults") or {})
    default_columns = _entry_columns(defaults, f"{source}: defaults")
    default_columns.pop("extra")
    resolved: dict[str, dict[str, Any]] = {}
    out: list[DiseaseCreate] = []
    for i, entry in enumerate(raw["diseases"], start=1):
        code = entry.get("code") if isinstance(entry, Mapping) else None
        where = f"{source}: disease #{i} ({code or 'no code'})"
        if not isinstance(entry, Mapping) or not code:
            raise DataFileError(f"{where}: each entry needs a 'code'")
        if code in resolved:
            raise DataFileError(f"{where}: code {code} is defined twice")
        columns = _entry_columns(entry, where)
        parent = columns.get("parent_code")
        if parent is not None:
            if parent not in resolved:
                raise DataFileError(f"{where}: parent {parent} must be defined before it")
            columns = _inherit(columns, resolved[parent])
        for key, value in default_columns.items():
            columns.setdefault(key, value)
        try:
            disease = DiseaseCreate.model_validate(columns)
        except ValidationError as exc:
            raise DataFileError(f"{where}: {format_validation_error(exc)}") from None
        resolved[code] = disease.model_dump()
        out.append(disease)
    effective = raw.get("effective_from")
    return DiseaseCatalogue(
        version=str(raw["version"]),
        effective_from=str(effective) if effective is not None else None,
        diseases=out,
    )


def format_validation_error(exc: ValidationError) -> str:
    """A pydantic error as one line: ``field: message; field: message``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}" if loc else str(err["msg"]))
    return "; ".join(parts)


def read_diseases(path: Path = DISEASES_FILE) -> DiseaseCatalogue:
    """The disease catalogue of ``path`` (default: the packaged ``diseases.yaml``)."""
    try:
        with path.open(encoding="utf-8") as fh:
            raw = yaml.load(fh, Loader=SafeLoader)
    except yaml.YAMLError as exc:
        raise DataFileError(f"{path.name}: not valid YAML: {exc}") from None
    return parse_diseases(raw, source=path.name)


# ------------------------------------------------------------------------------------------
# CSV files
# ------------------------------------------------------------------------------------------

T = TypeVar("T")


def _opt(value: str, convert: Callable[[str], T]) -> T | None:
    return convert(value) if value != "" else None


def _bool(value: str) -> bool:
    if value not in ("0", "1"):
        raise ValueError(f"expected 0 or 1, got {value!r}")
    return value == "1"


def _rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a UTF-8 CSV file whose header has the ``required`` columns."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise DataFileError(f"{path.name}: missing column(s) {', '.join(missing)}")
        yield from enumerate(reader, start=2)


def _convert_rows(
    path: Path, required: tuple[str, ...], convert: Callable[[dict[str, str]], dict[str, Any]]
) -> list[dict[str, Any]]:
    out = []
    for line, row in _rows(path, required):
        try:
            out.append(convert(row))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataFileError(f"{path.name}: line {line}: {exc}") from None
    return out


def _region(row: dict[str, str]) -> dict[str, Any]:
    code = row["code"]
    if not code.isdigit() or len(code) not in (2, 4, 6, 9, 12):
        raise ValueError(f"code {code!r}: expected 2, 4, 6, 9 or 12 digits")
    level = int(row["level"])
    if level != {2: 1, 4: 2, 6: 3, 9: 4, 12: 5}[len(code)]:
        raise ValueError(f"code {code}: level {level} does not match its length")
    return {
        "code": code,
        "name": row["name"],
        "level": level,
        "parent_code": row["parent_code"] or None,
        "kind": row["kind"] or None,
        "urban": _opt(row["urban"], _bool),
        "herding": _opt(row["herding"], _bool),
        "longitude": _opt(row["longitude"], float),
        "latitude": _opt(row["latitude"], float),
        "name_en": row["name_en"] or None,
        "active": True,
        "source_version": row["source"][:32] or None,
    }


def read_regions(path: Path = REGIONS_FILE) -> list[dict[str, Any]]:
    """Region rows (``region`` table columns), parents before children."""
    required: tuple[str, ...] = ("code", "name", "level", "parent_code", "kind", "urban")
    required += ("herding", "longitude", "latitude", "name_en", "source")
    rows = _convert_rows(path, required, _region)
    rows.sort(key=lambda r: (r["level"], r["code"]))
    return rows


def _population(row: dict[str, str]) -> dict[str, Any]:
    sex = row["sex"]
    if sex not in ("T", "M", "F"):
        raise ValueError(f"sex {sex!r}: expected T, M or F")
    count = int(row["count"])
    if count < 0:
        raise ValueError("count: negative")
    return {
        "region_code": row["region_code"],
        "year": int(row["year"]),
        "sex": sex,
        "age_from": int(row["age_from"]),
        "age_to": _opt(row["age_to"], int),
        "count": count,
        "synthetic": _bool(row["synthetic"]),
        "source": row["source"] or None,
    }


def read_population(path: Path = POPULATION_FILE) -> list[dict[str, Any]]:
    """Population rows (``population`` table columns)."""
    required = ("region_code", "year", "sex", "age_from", "age_to", "count", "synthetic")
    return _convert_rows(path, (*required, "source"), _population)


def _organisation(row: dict[str, str]) -> dict[str, Any]:
    if not row["code"] or not row["name"] or not row["kind"] or not row["region_code"]:
        raise ValueError("code, name, kind and region_code are required")
    return {
        "code": row["code"],
        "name": row["name"],
        "kind": row["kind"],
        "level": row["level"] or None,
        "region_code": row["region_code"],
        "parent_code": row["parent_code"] or None,
        "phone": row.get("phone") or None,
        "active": True,
        "synthetic": _bool(row["synthetic"]),
    }


def read_organisations(path: Path = ORGANISATIONS_FILE) -> list[dict[str, Any]]:
    """Organisation rows (``organisation`` table columns), parents before children."""
    required = ("code", "name", "kind", "level", "region_code", "parent_code", "synthetic")
    rows = _convert_rows(path, required, _organisation)
    order = {r["code"]: i for i, r in enumerate(rows)}
    for r in rows:
        parent = r["parent_code"]
        if parent is not None and parent not in order:
            raise DataFileError(f"{path.name}: {r['code']}: unknown parent {parent}")
    return _parents_first(rows)


def _parents_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_code = {r["code"]: r for r in rows}
    depth: dict[str, int] = {}

    def depth_of(code: str, seen: frozenset[str] = frozenset()) -> int:
        if code in depth:
            return depth[code]
        if code in seen:
            raise DataFileError(f"organisations: parent cycle through {code}")
        parent = by_code[code]["parent_code"]
        depth[code] = 0 if parent is None else depth_of(parent, seen | {code}) + 1
        return depth[code]

    return sorted(rows, key=lambda r: (depth_of(r["code"]), r["code"]))
