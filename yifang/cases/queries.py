"""Reading cards: filtered lists with keyset pagination, counts, and masked personal data.

Every function takes a :class:`~yifang.core.jurisdiction.Scope` and applies it inside the SQL
(:func:`scope_clause`), so a caller can never read a card outside its jurisdiction, whatever
the filters say. A region scope covers the cards whose current address lies in the region and
the cards reported by an organisation of the region (a county CDC reviews what its hospitals
report and follows up its residents reported elsewhere).

Lists are ordered by diagnosis time, newest first, then id (``diagnosis_time DESC, id DESC``)
and paged by keyset: the opaque cursor carries the last row's (diagnosis_time, id), so page
1,000 costs what page 1 costs and rows inserted while a user pages neither repeat nor vanish.

Personal data are masked (张*, 6404**********1234, 138****5678, no address detail) unless the
caller asks to reveal them and its scope is ``identified``; every reveal is audited.
"""

from __future__ import annotations

import base64
import binascii
import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO, Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, true
from sqlalchemy.orm import Session

from yifang.cases.models import Card, county_of
from yifang.cases.schemas import CARD_FIELDS
from yifang.cases.service import (
    DELETED,
    SUBMITTED,
    BadRequestError,
    CardNotFoundError,
    ForbiddenError,
    snapshot,
)
from yifang.catalog.models import Organisation
from yifang.core.audit import record
from yifang.core.db import utcnow
from yifang.core.jurisdiction import Scope

#: Largest page a caller may ask for.
MAX_PAGE_SIZE = 500
#: Personal fields hidden by masking.
PERSONAL_FIELDS = ("patient_name", "guardian_name", "id_number", "phone", "address_detail")


def _prefix_range(column: Any, prefix: str) -> ColumnElement[bool]:
    """``column LIKE 'prefix%'`` for a code of digits, written as a range (``>= '640521'
    AND < '640522'``) so that both databases can use an index whatever the collation."""
    prefix = prefix.strip()
    if not prefix.isdigit():
        return column.startswith(prefix, autoescape=True)
    stripped = prefix.rstrip("9")
    if not stripped:
        return column >= prefix
    upper = stripped[:-1] + str(int(stripped[-1]) + 1)
    return and_(column >= prefix, column < upper)


#: Digits of a county code.
COUNTY_DIGITS = 6
#: Digits of a township code: card addresses are stored to this level (validation cuts
#: 12-digit village codes to their township).
TOWNSHIP_DIGITS = 9


def region_clause(column: Any, prefix: str) -> ColumnElement[bool]:
    """Cards whose address code starts with ``prefix``, written for the list's plan.

    A township (9 digits) is the stored level of an address, so its code is compared for
    equality and the ``(address_code, diagnosis_time)`` index yields the cards already in
    list order. A county (6 digits) is compared through the indexed expression
    ``substr(address_code, 1, 6)`` (``ix_card_county_diag``), in list order too. Other
    prefixes (the city, a province) are compared as ``substr(code, 1, n) = prefix``, which no
    index serves, so the database walks the diagnosis-time index in list order and stops
    after one page rather than sorting most of the table.
    """
    prefix = prefix.strip()
    if not prefix.isdigit():
        return _prefix_range(column, prefix)
    if len(prefix) >= TOWNSHIP_DIGITS:
        return column == prefix
    if len(prefix) == COUNTY_DIGITS:
        return county_of(column) == prefix  # served by ix_card_county_diag
    return func.substr(column, 1, len(prefix)) == prefix


def scope_clause(scope: Scope, card: Any = Card) -> ColumnElement[bool]:
    """The SQL condition that keeps only the cards ``scope`` may read (``card`` may be an
    alias of :class:`Card`)."""
    conditions: list[ColumnElement[bool]] = []
    if scope.region_prefix:
        orgs_in_region = select(Organisation.code).where(
            _prefix_range(Organisation.region_code, scope.region_prefix)
        )
        conditions.append(
            or_(
                region_clause(card.address_code, scope.region_prefix),
                card.org_code.in_(orgs_in_region.scalar_subquery()),
            )
        )
    if scope.organisation_code:
        conditions.append(card.org_code == scope.organisation_code)
    return and_(true(), *conditions)


@dataclass(frozen=True)
class CardFilter:
    """What to list. Empty fields do not filter. Dates are inclusive calendar days."""

    disease_codes: Sequence[str] = ()
    region_prefix: str | None = None  # on the current address code
    org_code: str | None = None
    statuses: Sequence[str] = ()
    classifications: Sequence[str] = ()
    diagnosis_from: date | None = None
    diagnosis_to: date | None = None
    onset_from: date | None = None
    onset_to: date | None = None
    card_number: str | None = None  # prefix search
    include_deleted: bool = False
    extra: tuple[ColumnElement[bool], ...] = field(default=())

    def clauses(self, before: datetime | None = None) -> list[ColumnElement[bool]]:
        """The filter as SQL conditions on ``card``. ``before`` is the diagnosis time of a
        keyset cursor: when it is tighter than ``diagnosis_to``, that bound is left out, so
        the database starts its index range at the cursor (SQLite uses one upper bound)."""
        c: list[ColumnElement[bool]] = []
        if self.disease_codes:
            codes = list(dict.fromkeys(self.disease_codes))
            c.append(
                Card.disease_code == codes[0] if len(codes) == 1 else Card.disease_code.in_(codes)
            )
        if self.region_prefix:
            c.append(region_clause(Card.address_code, self.region_prefix))
        if self.org_code:
            c.append(Card.org_code == self.org_code)
        if self.statuses:
            c.append(Card.status.in_(list(self.statuses)))
        elif not self.include_deleted:
            c.append(Card.status != DELETED)
        if self.classifications:
            c.append(Card.classification.in_(list(self.classifications)))
        if self.diagnosis_from:
            c.append(
                Card.diagnosis_time >= datetime.combine(self.diagnosis_from, datetime.min.time())
            )
        if self.diagnosis_to and (before is None or before >= _day_after(self.diagnosis_to)):
            c.append(Card.diagnosis_time < _day_after(self.diagnosis_to))
        if self.onset_from:
            c.append(Card.onset_date >= self.onset_from)
        if self.onset_to:
            c.append(Card.onset_date <= self.onset_to)
        if self.card_number:
            c.append(Card.card_number.startswith(self.card_number.strip(), autoescape=True))
        c.extend(self.extra)
        return c


def _day_after(day: date) -> datetime:
    return datetime.fromordinal(day.toordinal() + 1)


# --------------------------------------------------------------------------- cursor


def encode_cursor(diagnosis_time: datetime, card_id: int) -> str:
    """The opaque cursor after a row."""
    raw = json.dumps([diagnosis_time.isoformat(), card_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """(diagnosis_time, id) of a cursor; :class:`BadRequestError` if it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        t, i = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(t), int(i)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadRequestError(
            "翻页游标无效", "the page cursor is not valid", code="bad_cursor"
        ) from exc


def _after(cursor: tuple[datetime, int]) -> ColumnElement[bool]:
    """Rows after the cursor in (diagnosis_time DESC, id DESC) order. The leading
    ``diagnosis_time <= t`` gives both databases an index range to start from."""
    t, i = cursor
    return and_(
        Card.diagnosis_time <= t,
        or_(Card.diagnosis_time < t, Card.id < i),
    )


# --------------------------------------------------------------------------- masking


def mask_name(name: str | None) -> str | None:
    """张三 → 张*, 欧阳娜娜 → 欧***."""
    if not name:
        return name
    return name[0] + "*" * max(len(name) - 1, 1)


def mask_id_number(number: str | None) -> str | None:
    """640402199001011234 → 6404**********1234 (first and last four kept)."""
    if not number:
        return number
    if len(number) <= 8:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


def mask_phone(phone: str | None) -> str | None:
    """13812345678 → 138****5678."""
    if not phone:
        return phone
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def masked(values: dict[str, Any]) -> dict[str, Any]:
    """A card dict with its personal fields masked and the address detail hidden."""
    out = dict(values)
    out["patient_name"] = mask_name(out.get("patient_name"))
    out["guardian_name"] = mask_name(out.get("guardian_name"))
    out["id_number"] = mask_id_number(out.get("id_number"))
    out["phone"] = mask_phone(out.get("phone"))
    out["address_detail"] = None
    return out


#: The card's columns a view shows (not the import's content hash nor the name key).
VIEW_COLUMNS = [c for c in Card.__table__.columns if c.key not in ("content_hash", "name_key")]


def card_view(card: Card, *, reveal: bool) -> dict[str, Any]:
    """The card's columns as a dict (Python values), masked unless ``reveal``."""
    values = {c.key: getattr(card, c.key) for c in VIEW_COLUMNS}
    return values if reveal else masked(values)


def may_reveal(session: Session, scope: Scope, reveal: bool, card_ids: Sequence[int]) -> bool:
    """Whether to show personal data; a reveal is refused without ``identified`` and is
    audited when granted."""
    if not reveal:
        return False
    if not scope.identified:
        raise ForbiddenError(
            "您的权限不能查看个人身份信息",
            "your scope may not see personal identifying data",
        )
    if card_ids:
        record(
            session,
            actor=scope.actor,
            action="card.reveal",
            entity_type="card",
            entity_id=card_ids[0] if len(card_ids) == 1 else "list",
            after={"card_ids": list(card_ids)},
        )
    return True


# --------------------------------------------------------------------------- lists


@dataclass
class CardPage:
    """One page of cards (dicts as :func:`card_view` makes them) and the next cursor."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def _base(
    scope: Scope,
    flt: CardFilter,
    after: tuple[datetime, int] | None = None,
    columns: Sequence[Any] | None = None,
) -> Select[Any]:
    """Cards of ``scope`` matching ``flt``, after the keyset position ``after``, in list
    order (diagnosis_time DESC, id DESC); whole cards, or only ``columns``."""
    stmt = select(*columns) if columns else select(Card)
    stmt = stmt.where(scope_clause(scope), *flt.clauses(before=after[0] if after else None))
    if after is not None:
        stmt = stmt.where(_after(after))
    return stmt.order_by(Card.diagnosis_time.desc(), Card.id.desc())


def list_cards(
    session: Session,
    scope: Scope,
    flt: CardFilter | None = None,
    *,
    cursor: str | None = None,
    limit: int = 50,
    reveal: bool = False,
) -> CardPage:
    """One page of cards matching ``flt`` inside ``scope``, newest diagnosis first."""
    flt = flt or CardFilter()
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    after = decode_cursor(cursor) if cursor else None
    # plain rows of the shown columns: a page needs no ORM objects to track
    stmt = _base(scope, flt, after, VIEW_COLUMNS).limit(limit + 1)
    result = session.execute(stmt)
    keys = list(result.keys())
    rows = [dict(zip(keys, row, strict=True)) for row in result]
    more = len(rows) > limit
    rows = rows[:limit]
    show = may_reveal(session, scope, reveal, [r["id"] for r in rows])
    last = rows[-1] if rows else None
    next_cursor = encode_cursor(last["diagnosis_time"], last["id"]) if more and last else None
    return CardPage(rows if show else [masked(r) for r in rows], next_cursor)


def iter_cards(
    session: Session,
    scope: Scope,
    flt: CardFilter | None = None,
    *,
    batch: int = 5000,
) -> Iterator[list[Card]]:
    """Every matching card, ``batch`` at a time, by keyset (for exports of any size).

    The session is expunged after each batch so memory stays bounded.
    """
    flt = flt or CardFilter()
    after: tuple[datetime, int] | None = None
    while True:
        rows = list(session.scalars(_base(scope, flt, after).limit(batch)))
        if not rows:
            return
        yield rows
        after = (rows[-1].diagnosis_time, rows[-1].id)
        session.expunge_all()
        if len(rows) < batch:
            return


def get_card(session: Session, scope: Scope, card_id: int) -> Card:
    """The card if ``scope`` may see it, else :class:`CardNotFoundError` (deleted cards too)."""
    card = session.scalars(select(Card).where(Card.id == card_id, scope_clause(scope))).first()
    if card is None:
        raise CardNotFoundError(f"报告卡 {card_id} 不存在", f"card {card_id} not found")
    return card


def view_card(
    session: Session, scope: Scope, card_id: int, *, reveal: bool = False
) -> dict[str, Any]:
    """One card as a dict, masked unless revealed (the reveal is audited)."""
    card = get_card(session, scope, card_id)
    return card_view(card, reveal=may_reveal(session, scope, reveal, [card.id]))


def overdue(
    session: Session,
    scope: Scope,
    *,
    now: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
    reveal: bool = False,
) -> CardPage:
    """Submitted cards whose review time has passed (``review_due_at < now``)."""
    now = now or utcnow()
    flt = CardFilter(
        statuses=(SUBMITTED,),
        extra=(Card.review_due_at < now,),
    )
    return list_cards(session, scope, flt, cursor=cursor, limit=limit, reveal=reveal)


def revision_views(snapshots: Sequence[dict[str, Any]], *, reveal: bool) -> list[dict[str, Any]]:
    """Stored card snapshots (JSON) masked like cards unless ``reveal``."""
    return [dict(s) if reveal else masked(dict(s)) for s in snapshots]


# --------------------------------------------------------------------------- export

#: Columns of an export, in the order of the printed card, then the workflow's.
EXPORT_COLUMNS: tuple[str, ...] = (
    "id",
    *CARD_FIELDS,
    "status",
    "version",
    "entered_at",
    "submitted_at",
    "review_due_at",
    "reviewed_at",
    "reviewed_by",
    "returned_reason",
    "corrected_at",
    "deleted_at",
    "deleted_reason_code",
    "deleted_reason",
    "duplicate_of_id",
    "created_by",
    "source",
)


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, date):
        return value.isoformat()
    return value


def export_rows(
    session: Session,
    scope: Scope,
    flt: CardFilter | None = None,
    *,
    reveal: bool = False,
    batch: int = 5000,
) -> Iterator[list[Any]]:
    """The header, then one list of cell values per card (masked unless ``reveal``; the
    caller checks and audits the reveal). Reads by keyset, so memory stays bounded."""
    yield list(EXPORT_COLUMNS)
    for rows in iter_cards(session, scope, flt, batch=batch):
        for card in rows:
            values = card_view(card, reveal=reveal)
            yield [_cell(values.get(c)) for c in EXPORT_COLUMNS]


def write_csv(
    session: Session, scope: Scope, flt: CardFilter | None, out: IO[str], *, reveal: bool
) -> int:
    """Write the export as CSV to a text stream; returns the number of cards."""
    writer = csv.writer(out)
    n = -1
    for n, row in enumerate(export_rows(session, scope, flt, reveal=reveal)):  # noqa: B007
        writer.writerow(row)
    return max(n, 0)


#: Rows per worksheet of an XLSX export (the format's limit is 1,048,576 with the header).
XLSX_SHEET_ROWS = 1_000_000


def write_xlsx(
    session: Session, scope: Scope, flt: CardFilter | None, path: Any, *, reveal: bool
) -> int:
    """Write the export as an XLSX workbook (openpyxl write-only mode: rows go straight to
    disk); a new sheet starts every :data:`XLSX_SHEET_ROWS` cards. Returns the count."""
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    rows = export_rows(session, scope, flt, reveal=reveal)
    header = next(rows)
    sheet = book.create_sheet("cards")
    sheet.append(header)
    n = 0
    for row in rows:
        if n and n % XLSX_SHEET_ROWS == 0:
            sheet = book.create_sheet(f"cards{n // XLSX_SHEET_ROWS + 1}")
            sheet.append(header)
        sheet.append(row)
        n += 1
    book.save(path)
    return n


# --------------------------------------------------------------------------- counts


@dataclass(frozen=True)
class CountRow:
    """Cards of one disease, county and onset day (deleted cards are never counted)."""

    disease_code: str
    county_code: str
    day: date
    cards: int


def counts(
    session: Session,
    scope: Scope,
    flt: CardFilter | None = None,
) -> list[CountRow]:
    """Cards by disease, county (6-digit address code) and onset date, in one GROUP BY."""
    flt = flt or CardFilter()
    county = func.substr(Card.address_code, 1, 6)
    clauses = [c for c in flt.clauses()]
    stmt = (
        select(Card.disease_code, county, Card.onset_date, func.count())
        .where(scope_clause(scope), Card.status != DELETED, *clauses)
        .group_by(Card.disease_code, county, Card.onset_date)
        .order_by(Card.onset_date, Card.disease_code, county)
    )
    return [
        CountRow(d, c, day if isinstance(day, date) else date.fromisoformat(str(day)), n)
        for d, c, day, n in session.execute(stmt)
    ]


__all__ = [
    "CardFilter",
    "CardPage",
    "CountRow",
    "card_view",
    "counts",
    "decode_cursor",
    "encode_cursor",
    "get_card",
    "iter_cards",
    "list_cards",
    "mask_id_number",
    "mask_name",
    "mask_phone",
    "masked",
    "overdue",
    "scope_clause",
    "snapshot",
    "view_card",
]
