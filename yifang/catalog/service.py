"""Loading the catalog's data files into the database, and reading and editing the catalog.

``load_all`` is idempotent and fast (bulk inserts; it builds every test worker's template
database). The rule that keeps an administrator's work: a reload never overwrites a disease
whose ``edited_by`` is set, nor a disease created through the API. Regions, organisations and
populations have no ``edited_by`` column, so a reload only adds the rows that are missing and
leaves existing rows as they are, unless ``refresh=True`` asks it to restore the files'
values. Organisations have ``edited_by`` too: one an administrator created or changed is
left alone even by a refresh.

Errors are :class:`yifang.core.errors.AppError` subclasses with Chinese and English
messages and, for a broken rule, the fields at fault.

Region codes are GB/T 2260 / NBS statistical codes stored without zero padding (2 digits
province, 4 city, 6 county, 9 township); every function taking a region code also accepts
the padded forms (``640500``, ``640521100000``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import Table, func, insert, or_, select, update
from sqlalchemy.orm import Session

from yifang.catalog import datafiles
from yifang.catalog.models import Disease, Organisation, Population, Region
from yifang.catalog.schemas import (
    DiseaseCreate,
    DiseaseFields,
    DiseaseOut,
    DiseaseUpdate,
    OrganisationCreate,
    OrganisationFields,
    OrganisationUpdate,
    PopulationBand,
    PopulationOut,
    field_errors,
)
from yifang.core.audit import AuditEntry, diff, record
from yifang.core.errors import AppError


class CatalogError(AppError):
    """Base of the catalog's errors; the message says what is wrong in plain words
    (``str(error)`` is the English message)."""

    status = 400
    code = "catalog_error"


class NotFoundError(CatalogError, LookupError):
    """No disease, region, organisation or population with that key."""

    status = 404
    code = "not_found"


class ConflictError(CatalogError):
    """The change clashes with what is stored (e.g. the code already exists)."""

    status = 409
    code = "conflict"


class InvalidError(CatalogError, ValueError):
    """The request is malformed or breaks a catalog rule (``fields`` says which)."""

    status = 422
    code = "validation_failed"


def _invalid(exc: ValidationError) -> InvalidError:
    """A pydantic error of a whole disease or organisation as :class:`InvalidError`."""
    fields = field_errors(exc.errors())
    return InvalidError(
        "；".join(f.message_zh for f in fields),
        "; ".join(f.message_en for f in fields),
        fields=fields,
    )


# ------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class TableLoad:
    """What a load did to one table."""

    table: str
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0  # rows an administrator edited, left as they are


@dataclass(slots=True)
class LoadReport:
    """What ``load_all`` did: per-table counts, the disease file's version, elapsed seconds."""

    disease_version: str
    tables: list[TableLoad] = field(default_factory=list)
    seconds: float = 0.0

    def table(self, name: str) -> TableLoad:
        """The counts of table ``name``."""
        return next(t for t in self.tables if t.table == name)

    @property
    def changed(self) -> int:
        """Rows inserted or updated in all tables (0 for a repeated load)."""
        return sum(t.inserted + t.updated for t in self.tables)


Progress = Callable[[str], None]


def load_all(
    session: Session,
    *,
    data_dir: Path | None = None,
    refresh: bool = False,
    progress: Progress | None = None,
) -> LoadReport:
    """Load diseases, regions, organisations and populations from the data files.

    Runs in the caller's transaction (the caller commits). ``data_dir`` replaces the packaged
    ``yifang/catalog/data`` (same file names). ``progress`` is called with each table's name
    before it is loaded. Raises :class:`yifang.catalog.datafiles.DataFileError` naming the
    file and row when a file is malformed; nothing is then written.
    """
    started = time.perf_counter()
    catalogue, regions, organisations, population = _read_files(data_dir or datafiles.DATA_DIR)
    report = LoadReport(disease_version=catalogue.version)
    steps: list[tuple[str, Callable[[], TableLoad]]] = [
        ("disease", lambda: _load_diseases(session, catalogue)),
        ("region", lambda: _load_keyed(session, Region, regions, ("code",), refresh)),
        (
            "organisation",
            lambda: _load_keyed(session, Organisation, organisations, ("code",), refresh),
        ),
        ("population", lambda: _load_keyed(session, Population, population, _POP_KEY, refresh)),
    ]
    for name, step in steps:
        if progress is not None:
            progress(name)
        report.tables.append(step())
    session.flush()
    report.seconds = time.perf_counter() - started
    return report


_POP_KEY = ("region_code", "year", "sex", "age_from")

DataFiles = tuple[
    datafiles.DiseaseCatalogue, list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]
]
_FILE_CACHE: dict[tuple[Any, ...], DataFiles] = {}


def _read_files(folder: Path) -> DataFiles:
    """The four data files of ``folder``, checked; parsed once per process while the files'
    size and modification time stay the same (a test worker loads many databases)."""
    paths = [
        folder / f.name
        for f in (
            datafiles.DISEASES_FILE,
            datafiles.REGIONS_FILE,
            datafiles.ORGANISATIONS_FILE,
            datafiles.POPULATION_FILE,
        )
    ]
    stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    cached = _FILE_CACHE.get(stamp)
    if cached is None:
        catalogue = datafiles.read_diseases(paths[0])
        regions = datafiles.read_regions(paths[1])
        organisations = datafiles.read_organisations(paths[2])
        population = datafiles.read_population(paths[3])
        _check_references(regions, organisations, population)
        cached = (catalogue, regions, organisations, population)
        _FILE_CACHE.clear()
        _FILE_CACHE[stamp] = cached
    return cached


def _check_references(
    regions: Sequence[dict[str, Any]],
    organisations: Sequence[dict[str, Any]],
    population: Sequence[dict[str, Any]],
) -> None:
    """Every parent, organisation region and population region exists in the files."""
    codes = {r["code"] for r in regions}
    for r in regions:
        if r["parent_code"] is not None and r["parent_code"] not in codes:
            raise datafiles.DataFileError(f"regions.csv: {r['code']}: unknown parent")
    for o in organisations:
        if o["region_code"] not in codes:
            raise datafiles.DataFileError(f"organisations.csv: {o['code']}: unknown region")
    for p in population:
        if p["region_code"] not in codes:
            raise datafiles.DataFileError(f"population.csv: unknown region {p['region_code']}")


def _load_diseases(session: Session, catalogue: datafiles.DiseaseCatalogue) -> TableLoad:
    counts = TableLoad("disease")
    existing = {d.code: d for d in session.scalars(select(Disease))}
    new_rows: list[dict[str, Any]] = []
    for spec in catalogue.diseases:
        values = spec.model_dump()
        values["source_version"] = catalogue.version
        row = existing.get(spec.code)
        if row is None:
            new_rows.append(values)
            counts.inserted += 1
        elif row.edited_by is not None:
            counts.kept += 1
        elif any(getattr(row, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
            counts.updated += 1
        else:
            counts.unchanged += 1
    if new_rows:
        session.connection().execute(insert(_table(Disease)), new_rows)
    return counts


def _load_keyed(
    session: Session,
    table: type[Region] | type[Organisation] | type[Population],
    rows: Sequence[dict[str, Any]],
    key: tuple[str, ...],
    refresh: bool,
) -> TableLoad:
    """Insert the rows whose key is not stored yet; with ``refresh`` also restore the others."""
    counts = TableLoad(str(table.__tablename__))
    columns = [getattr(table, k) for k in key]
    stored = {tuple(r) for r in session.execute(select(*columns))}
    missing = [r for r in rows if tuple(r[k] for k in key) not in stored]
    if missing:
        _bulk_insert(session, _table(table), missing)
    counts.inserted = len(missing)
    present = [r for r in rows if tuple(r[k] for k in key) in stored]
    edited = _edited_codes(session, table) if present else set()
    if edited:
        counts.kept = sum(1 for r in present if r["code"] in edited)
        present = [r for r in present if r["code"] not in edited]
    if refresh and present:
        counts.updated = _restore(session, table, present, key)
    counts.unchanged = len(present) - counts.updated
    return counts


def _edited_codes(
    session: Session, table: type[Region] | type[Organisation] | type[Population]
) -> set[str]:
    """Codes of the rows of ``table`` an administrator created or changed (only
    organisations record that); a reload leaves them alone."""
    if table is not Organisation:
        return set()
    query = select(Organisation.code).where(Organisation.edited_by.is_not(None))
    return set(session.scalars(query))


def _table(model: type[Disease] | type[Region] | type[Organisation] | type[Population]) -> Table:
    return cast(Table, model.__table__)


def _bulk_insert(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert plain rows (no JSON or date columns) with one driver-level ``executemany``.

    The ORM's bulk path splits a batch wherever the set of NULL columns changes (the open age
    band) and SQLAlchemy's per-row parameter processing dominates at this size; the drivers
    take tuples directly. Falls back to a Core insert for other parameter styles.
    """
    connection = session.connection()
    columns = list(rows[0])
    quote = connection.dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        raw = connection.connection.driver_connection
        assert raw is not None
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {quote(table.name)} ({names}) FROM STDIN") as copy,
        ):
            for r in rows:
                copy.write_row(tuple(r[c] for c in columns))
        return
    marks = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(connection.dialect.paramstyle)
    if marks is None:
        connection.execute(insert(table), list(rows))
        return
    sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({', '.join(marks for _ in columns)})"
    connection.exec_driver_sql(sql, [tuple(r[c] for c in columns) for r in rows])


def _restore(
    session: Session,
    table: type[Region] | type[Organisation] | type[Population],
    rows: Sequence[dict[str, Any]],
    key: tuple[str, ...],
) -> int:
    """Set the stored rows that differ from the files back to the files' values."""
    columns = list(rows[0])
    pk = "id" if table is Population else "code"
    select_columns = [getattr(table, c) for c in dict.fromkeys([pk, *columns])]
    stored = {
        tuple(getattr(r, k) for k in key): r._asdict()
        for r in session.execute(select(*select_columns))
    }
    changed = []
    for row in rows:
        current = stored[tuple(row[k] for k in key)]
        if any(current[c] != row[c] for c in columns):
            changed.append({**row, pk: current[pk]})
    if changed:
        session.execute(update(table), changed)
    return len(changed)


# ------------------------------------------------------------------------------------------
# Diseases
# ------------------------------------------------------------------------------------------


def get_disease(session: Session, code: str) -> Disease:
    """The disease with Yifang code ``code``; :class:`NotFoundError` if there is none."""
    disease = session.get(Disease, code)
    if disease is None:
        raise NotFoundError(f"没有编码为 {code} 的病种", f"no disease with code {code!r}")
    return disease


def list_diseases(
    session: Session,
    *,
    disease_class: str | None = None,
    active: bool | None = None,
    parent_code: str | None = None,
    leaf_only: bool = False,
) -> list[Disease]:
    """Diseases ordered by class (A, B, C, other) then code, optionally filtered."""
    query = select(Disease)
    if disease_class is not None:
        query = query.where(Disease.disease_class == disease_class)
    if active is not None:
        query = query.where(Disease.active.is_(active))
    if parent_code is not None:
        query = query.where(Disease.parent_code == parent_code)
    rows = list(session.scalars(query))
    if leaf_only:
        parents = _parent_codes(session)
        rows = [d for d in rows if d.code not in parents]
    order = {"A": 0, "B": 1, "C": 2}
    return sorted(rows, key=lambda d: (order.get(d.disease_class, 3), d.code))


def _parent_codes(session: Session) -> set[str]:
    query = select(Disease.parent_code).where(Disease.parent_code.is_not(None)).distinct()
    return {c for c in session.scalars(query) if c is not None}


def disease_out(session: Session, disease: Disease, parents: set[str] | None = None) -> DiseaseOut:
    """The API shape of ``disease`` (``leaf`` tells whether a card may name it)."""
    parents = _parent_codes(session) if parents is None else parents
    out = DiseaseOut.model_validate(disease)
    out.leaf = disease.code not in parents
    return out


def diseases_out(session: Session, diseases: Sequence[Disease]) -> list[DiseaseOut]:
    """``disease_out`` of many diseases with one query for the parent set."""
    parents = _parent_codes(session)
    return [disease_out(session, d, parents) for d in diseases]


def _fields(disease: Disease) -> dict[str, Any]:
    return DiseaseFields.model_validate(disease).model_dump(mode="json")


def _check_parent(session: Session, code: str, parent_code: str | None) -> None:
    seen = {code}
    current = parent_code
    while current is not None:
        if current in seen:
            raise InvalidError(
                f"上级病种 {parent_code} 会形成循环",
                f"parent_code: {parent_code} would make a cycle",
                field="parent_code",
            )
        seen.add(current)
        parent = session.get(Disease, current)
        if parent is None:
            raise InvalidError(
                f"上级病种：没有编码为 {current} 的病种",
                f"parent_code: no disease with code {current!r}",
                field="parent_code",
            )
        current = parent.parent_code


def create_disease(session: Session, data: DiseaseCreate, actor: str) -> Disease:
    """Add a disease (an administrator's; a reload never touches it) and audit it."""
    if session.get(Disease, data.code) is not None:
        raise ConflictError(
            f"编码为 {data.code} 的病种已存在",
            f"a disease with code {data.code!r} already exists",
            field="code",
        )
    _check_parent(session, data.code, data.parent_code)
    disease = Disease(**data.model_dump(), source_version="admin", edited_by=actor)
    session.add(disease)
    session.flush()
    record(
        session,
        actor=actor,
        action="disease.create",
        entity_type="disease",
        entity_id=data.code,
        after=_fields(disease),
    )
    return disease


def update_disease(session: Session, code: str, patch: DiseaseUpdate, actor: str) -> Disease:
    """Change some settings of a disease, check the result as a whole, and audit it.

    The disease is marked ``edited_by=actor`` so that reloading the data files keeps the
    change. Raises :class:`InvalidError` naming the field when the result breaks a rule.
    """
    disease = get_disease(session, code)
    before = _fields(disease)
    changes = patch.model_dump(exclude_unset=True, exclude={"reason"})
    try:
        merged = DiseaseCreate.model_validate({**before, **changes, "code": code})
    except ValidationError as exc:
        raise _invalid(exc) from None
    if "parent_code" in changes:
        _check_parent(session, code, merged.parent_code)
    for key, value in merged.model_dump(exclude={"code"}).items():
        setattr(disease, key, value)
    disease.edited_by = actor
    session.flush()
    old, new = diff(before, _fields(disease))
    record(
        session,
        actor=actor,
        action="disease.update",
        entity_type="disease",
        entity_id=code,
        before=old,
        after=new,
        reason=patch.reason,
    )
    return disease


def reset_disease(session: Session, code: str, actor: str, data_dir: Path | None = None) -> Disease:
    """Give a disease back to the data file: restore the file's values, clear ``edited_by``
    (later reloads update it again) and audit the change. :class:`NotFoundError` if the
    file does not define ``code`` (a disease created through the API cannot be reset)."""
    disease = get_disease(session, code)
    catalogue = _read_files(data_dir or datafiles.DATA_DIR)[0]
    spec = next((d for d in catalogue.diseases if d.code == code), None)
    if spec is None:
        raise NotFoundError(
            f"数据文件中没有病种 {code}（管理员新增的病种无法恢复）",
            f"the data file does not define disease {code!r}",
        )
    before = _fields(disease)
    for key, value in spec.model_dump(exclude={"code"}).items():
        setattr(disease, key, value)
    disease.source_version = catalogue.version
    disease.edited_by = None
    session.flush()
    old, new = diff(before, _fields(disease))
    record(
        session,
        actor=actor,
        action="disease.reset",
        entity_type="disease",
        entity_id=code,
        before=old,
        after=new,
        reason=f"restored from diseases.yaml {catalogue.version}",
    )
    return disease


def history(session: Session, entity_type: str, code: str, limit: int = 100) -> list[AuditEntry]:
    """The audit entries of one disease or organisation (``entity_type`` ``disease`` or
    ``organisation``), newest first: who changed what, when, before and after, and why."""
    query = (
        select(AuditEntry)
        .where(AuditEntry.entity_type == entity_type, AuditEntry.entity_id == code)
        .order_by(AuditEntry.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


# ------------------------------------------------------------------------------------------
# Regions
# ------------------------------------------------------------------------------------------


def normalise_region_code(code: str) -> str:
    """``code`` without zero padding: ``640500`` → ``6405``, ``640521100000`` → ``640521100``.

    Raises :class:`InvalidError` for anything but 2, 4, 6, 9 or 12 digits.
    """
    code = code.strip()
    if not code.isdigit() or len(code) not in (2, 4, 6, 9, 12):
        raise InvalidError(
            f"地区代码 {code}：须为 2、4、6、9 或 12 位数字",
            f"region code {code!r}: expected 2, 4, 6, 9 or 12 digits",
        )
    for length, pad in ((12, "000"), (9, "000"), (6, "00"), (4, "00")):
        if len(code) == length and code.endswith(pad):
            code = code[: length - len(pad)]
    return code


def get_region(session: Session, code: str) -> Region:
    """The region ``code`` (padded or not); :class:`NotFoundError` if unknown."""
    region = session.get(Region, code.strip())
    if region is None:
        region = session.get(Region, normalise_region_code(code))
    if region is None:
        raise NotFoundError(f"没有代码为 {code} 的地区", f"no region with code {code!r}")
    return region


def region_children(session: Session, parent_code: str | None = None) -> list[Region]:
    """The direct children of ``parent_code`` (the provinces when ``None``), by code."""
    if parent_code is None:
        query = select(Region).where(Region.parent_code.is_(None))
    else:
        parent = get_region(session, parent_code)
        query = select(Region).where(Region.parent_code == parent.code)
    return list(session.scalars(query.order_by(Region.code)))


def region_descendants(session: Session, code: str, level: int | None = None) -> list[Region]:
    """Every region below ``code`` (by code prefix), optionally only those at ``level``."""
    region = get_region(session, code)
    query = select(Region).where(
        Region.code.startswith(region.code, autoescape=True), Region.code != region.code
    )
    if level is not None:
        query = query.where(Region.level == level)
    return list(session.scalars(query.order_by(Region.code)))


def region_ancestors(session: Session, code: str) -> list[Region]:
    """The chain from the province down to ``code`` itself."""
    chain = [get_region(session, code)]
    while chain[-1].parent_code is not None:
        chain.append(get_region(session, chain[-1].parent_code))
    return chain[::-1]


def county_of(session: Session, code: str) -> Region | None:
    """The county-level region (level 3) containing ``code``; ``None`` above county level."""
    region = get_region(session, code)
    if region.level < 3:
        return None
    return next(r for r in region_ancestors(session, region.code) if r.level == 3)


def region_path(session: Session, code: str, separator: str = "") -> str:
    """The full Chinese name, e.g. ``宁夏回族自治区中卫市中宁县宁安镇``."""
    return separator.join(r.name for r in region_ancestors(session, code))


# ------------------------------------------------------------------------------------------
# Organisations
# ------------------------------------------------------------------------------------------


def get_organisation(session: Session, code: str) -> Organisation:
    """The organisation ``code``; :class:`NotFoundError` if unknown."""
    organisation = session.get(Organisation, code)
    if organisation is None:
        raise NotFoundError(f"没有编码为 {code} 的机构", f"no organisation with code {code!r}")
    return organisation


def list_organisations(
    session: Session,
    *,
    region: str | None = None,
    kind: str | None = None,
    active: bool | None = None,
    text: str | None = None,
) -> list[Organisation]:
    """Organisations located in ``region`` or below it (code prefix), of ``kind``, active or
    not, whose name or code contains ``text``; by code."""
    query = select(Organisation)
    if region is not None:
        prefix = get_region(session, region).code
        query = query.where(Organisation.region_code.startswith(prefix, autoescape=True))
    if kind is not None:
        query = query.where(Organisation.kind == kind)
    if active is not None:
        query = query.where(Organisation.active.is_(active))
    if text is not None and text.strip():
        needle = text.strip()
        query = query.where(
            or_(
                Organisation.name.contains(needle, autoescape=True),
                Organisation.code.contains(needle.upper(), autoescape=True),
            )
        )
    return list(session.scalars(query.order_by(Organisation.code)))


#: The settings of an organisation an administrator may change (all but the code).
_ORGANISATION_FIELDS = tuple(OrganisationFields.model_fields)


def _organisation_values(organisation: Organisation) -> dict[str, Any]:
    return {k: getattr(organisation, k) for k in _ORGANISATION_FIELDS}


def _check_organisation_references(session: Session, code: str, data: OrganisationFields) -> str:
    """Check that the region exists and the parent exists without a cycle; return the
    region's code without padding."""
    try:
        region = get_region(session, data.region_code)
    except CatalogError:
        raise InvalidError(
            f"所在地区：目录中没有代码为 {data.region_code} 的地区",
            f"region_code: no region with code {data.region_code!r} in the catalog",
            field="region_code",
        ) from None
    seen = {code}
    current = data.parent_code
    while current is not None:
        if current in seen:
            raise InvalidError(
                f"上级机构 {data.parent_code} 会形成循环",
                f"parent_code: {data.parent_code} would make a cycle",
                field="parent_code",
            )
        seen.add(current)
        parent = session.get(Organisation, current)
        if parent is None:
            raise InvalidError(
                f"上级机构：没有编码为 {current} 的机构",
                f"parent_code: no organisation with code {current!r}",
                field="parent_code",
            )
        current = parent.parent_code
    return region.code


def create_organisation(session: Session, data: OrganisationCreate, actor: str) -> Organisation:
    """Add an organisation (an administrator's: a reload never touches it) and audit it.

    The region must exist in the catalog (padded codes are stored without padding), the
    parent must exist; :class:`ConflictError` if the code is taken.
    """
    if session.get(Organisation, data.code) is not None:
        raise ConflictError(
            f"编码为 {data.code} 的机构已存在",
            f"an organisation with code {data.code!r} already exists",
            field="code",
        )
    region_code = _check_organisation_references(session, data.code, data)
    values = {**data.model_dump(), "region_code": region_code}
    organisation = Organisation(**values, synthetic=False, edited_by=actor)
    session.add(organisation)
    session.flush()
    record(
        session,
        actor=actor,
        action="organisation.create",
        entity_type="organisation",
        entity_id=data.code,
        after=_organisation_values(organisation),
    )
    return organisation


def update_organisation(
    session: Session, code: str, patch: OrganisationUpdate, actor: str
) -> Organisation:
    """Change some settings of an organisation, check the result as a whole, and audit it.

    The organisation is marked ``edited_by=actor`` so that reloading ``organisations.csv``
    (even with ``refresh``) keeps the change. The code itself cannot change (cards and
    accounts refer to it). Raises :class:`InvalidError` naming the field.
    """
    organisation = get_organisation(session, code)
    before = _organisation_values(organisation)
    changes = patch.model_dump(exclude_unset=True, exclude={"reason"})
    try:
        merged = OrganisationFields.model_validate({**before, **changes})
    except ValidationError as exc:
        raise _invalid(exc) from None
    region_code = _check_organisation_references(session, code, merged)
    for key, value in merged.model_dump().items():
        setattr(organisation, key, value)
    organisation.region_code = region_code
    organisation.edited_by = actor
    session.flush()
    old, new = diff(before, _organisation_values(organisation))
    record(
        session,
        actor=actor,
        action="organisation.update",
        entity_type="organisation",
        entity_id=code,
        before=old,
        after=new,
        reason=patch.reason,
    )
    return organisation


def reset_organisation(
    session: Session, code: str, actor: str, data_dir: Path | None = None
) -> Organisation:
    """Give an organisation back to ``organisations.csv``: restore the file's values, clear
    ``edited_by`` and audit it. :class:`NotFoundError` if the file does not list ``code``."""
    organisation = get_organisation(session, code)
    rows = _read_files(data_dir or datafiles.DATA_DIR)[2]
    row = next((r for r in rows if r["code"] == code), None)
    if row is None:
        raise NotFoundError(
            f"数据文件中没有机构 {code}（管理员新增的机构无法恢复）",
            f"the data file does not list organisation {code!r}",
        )
    before = _organisation_values(organisation)
    for key, value in row.items():
        setattr(organisation, key, value)
    organisation.edited_by = None
    session.flush()
    old, new = diff(before, _organisation_values(organisation))
    record(
        session,
        actor=actor,
        action="organisation.reset",
        entity_type="organisation",
        entity_id=code,
        before=old,
        after=new,
        reason="restored from organisations.csv",
    )
    return organisation


def reviewing_cdc(session: Session, code: str) -> Organisation | None:
    """The CDC that reviews the cards of organisation ``code``: the nearest CDC among its
    parents (a county CDC for hospitals and health centres); ``None`` if it has none."""
    organisation = get_organisation(session, code)
    current = organisation.parent_code
    while current is not None:
        parent = get_organisation(session, current)
        if parent.kind == "cdc":
            return parent
        current = parent.parent_code
    return None


# ------------------------------------------------------------------------------------------
# Populations
# ------------------------------------------------------------------------------------------


def population_bands(
    session: Session, region: str, year: int, sex: str = "T"
) -> list[PopulationBand]:
    """Residents of ``region`` in ``year`` by age band for ``sex`` (M, F or T = both)."""
    code = get_region(session, region).code
    sexes = ("M", "F") if sex == "T" else (sex,)
    query = (
        select(Population.age_from, Population.age_to, func.sum(Population.count))
        .where(
            Population.region_code == code,
            Population.year == year,
            Population.sex.in_(sexes),
        )
        .group_by(Population.age_from, Population.age_to)
        .order_by(Population.age_from)
    )
    return [
        PopulationBand(sex=sex, age_from=lo, age_to=hi, count=int(n))
        for lo, hi, n in session.execute(query)
    ]


def population(session: Session, region: str, year: int) -> PopulationOut:
    """Total and bands (M and F) of ``region`` in ``year``; :class:`NotFoundError` if none."""
    code = get_region(session, region).code
    rows = list(
        session.scalars(
            select(Population)
            .where(Population.region_code == code, Population.year == year)
            .order_by(Population.sex, Population.age_from)
        )
    )
    if not rows:
        raise NotFoundError(
            f"没有地区 {code} {year} 年的人口数", f"no population for region {code} in {year}"
        )
    totals = [r for r in rows if r.sex == "T" and r.age_from == 0 and r.age_to is None]
    bands = [r for r in rows if r.sex in ("M", "F")]
    total = totals[0].count if totals else sum(r.count for r in bands)
    head = totals[0] if totals else rows[0]
    return PopulationOut(
        region_code=code,
        year=year,
        total=total,
        synthetic=any(r.synthetic for r in rows),
        source=head.source,
        bands=[
            PopulationBand(sex=r.sex, age_from=r.age_from, age_to=r.age_to, count=r.count)
            for r in bands
        ],
    )


def population_total(session: Session, region: str, year: int) -> int | None:
    """The resident population of ``region`` in ``year``, or ``None`` if not known."""
    try:
        return population(session, region, year).total
    except NotFoundError:
        return None
