"""Duplicate cards (重卡): find them, flag them, and let a reviewer decide.

Two cards are suspected duplicates when they are about the same person and the same disease
(or the same disease group, e.g. two hepatitis subtypes: equal ``coalesce(parent_code,
code)``) with diagnosis times no further apart than the disease's ``duplicate_window_days``
(the longer window of the two diseases):

* ``id_number`` rule: the same document number, as normalised by validation (upper case, no
  spaces or dashes); the "unknown" numbers (``00000000000000000X`` …) never match;
* ``fuzzy`` rule: the same normalised name (:func:`yifang.cases.models.name_key`: NFKC
  full/half width, no spaces or separator dots), the same birth date and the same county of
  current address — unless both cards carry real, different document numbers. The score is
  0.8, plus 0.1 for the same township, plus up to 0.1 for the similarity of the address
  details (:class:`difflib.SequenceMatcher` ratio), so a reviewer sees the strongest first.

Nothing is merged automatically: each pair becomes a :class:`DuplicateFlag` (``card_id`` the
later card, ``other_card_id`` the earlier) that a reviewer resolves by ``merge`` (the later
card is soft-deleted as 重复报告 and linked to the kept one) or ``keep``. Draft and deleted
cards are not compared.

:func:`scan` works on sets: candidate pairs of a chunk of new cards are found by one indexed
self-join per rule (``ix_card_id_number``, ``ix_card_person``), so it stays usable after an
import of 1,000,000 cards (:func:`scan_batch`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from difflib import SequenceMatcher
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    and_,
    case,
    func,
    insert,
    not_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from yifang.cases import service
from yifang.cases.codes import UNKNOWN_ID_NUMBERS
from yifang.cases.models import Card, DuplicateFlag
from yifang.cases.queries import masked, scope_clause
from yifang.catalog.models import Disease
from yifang.core.audit import record
from yifang.core.db import utcnow
from yifang.core.jurisdiction import Scope

RULE_ID = "id_number"
RULE_FUZZY = "fuzzy"
MERGE = "merge"
KEEP = "keep"
#: Cards per candidate query (bounded IN lists and bounded result sets).
CHUNK = 500


class day_number(FunctionElement[float]):  # noqa: N801 - a SQL function, named like one
    """A timestamp as a day count (fractional), for day differences in both databases."""

    type = Float()
    inherit_cache = True


@compiles(day_number, "sqlite")
def _day_number_sqlite(element: day_number, compiler: SQLCompiler, **kw: Any) -> str:
    return f"julianday({compiler.process(element.clauses, **kw)})"


@compiles(day_number)
def _day_number_default(element: day_number, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) / 86400.0)"


def _real_id(column: Any) -> ColumnElement[bool]:
    return and_(column.is_not(None), column.not_in(sorted(UNKNOWN_ID_NUMBERS)))


@dataclass(frozen=True)
class Candidate:
    """A suspected duplicate pair before it is stored."""

    later_id: int
    earlier_id: int
    rule: str
    score: float


def _pairs(session: Session, new: Callable[[Any], ColumnElement[bool]]) -> list[Candidate]:
    """Candidate pairs for the new cards: ``new(c)`` selects them on the alias ``c``."""
    c = aliased(Card, name="c")
    o = aliased(Card, name="o")
    dc = aliased(Disease, name="dc")
    do = aliased(Disease, name="do")
    window = case(
        (dc.duplicate_window_days >= do.duplicate_window_days, dc.duplicate_window_days),
        else_=do.duplicate_window_days,
    )
    common = [
        o.id != c.id,
        c.status.not_in((service.DRAFT, service.DELETED)),
        o.status.not_in((service.DRAFT, service.DELETED)),
        func.coalesce(dc.parent_code, dc.code) == func.coalesce(do.parent_code, do.code),
        func.abs(day_number(c.diagnosis_time) - day_number(o.diagnosis_time)) <= window,
    ]
    found: dict[tuple[int, int], Candidate] = {}
    by_id = (
        select(c.id, o.id)
        .join(o, o.id_number == c.id_number)
        .join(dc, dc.code == c.disease_code)
        .join(do, do.code == o.disease_code)
        .where(new(c), _real_id(c.id_number), *common)
    )
    for a, b in session.execute(by_id):
        key = (max(a, b), min(a, b))
        found[key] = Candidate(key[0], key[1], RULE_ID, 1.0)
    fuzzy = (
        select(c.id, o.id, c.address_code, o.address_code, c.address_detail, o.address_detail)
        .join(
            o,
            and_(
                o.name_key == c.name_key,
                o.birth_date == c.birth_date,
                func.substr(o.address_code, 1, 6) == func.substr(c.address_code, 1, 6),
            ),
        )
        .join(dc, dc.code == c.disease_code)
        .join(do, do.code == o.disease_code)
        .where(
            new(c),
            c.name_key.is_not(None),
            c.birth_date.is_not(None),
            not_(and_(_real_id(c.id_number), _real_id(o.id_number), c.id_number != o.id_number)),
            *common,
        )
    )
    for a, b, addr_a, addr_b, detail_a, detail_b in session.execute(fuzzy):
        key = (max(a, b), min(a, b))
        if key in found:
            continue
        score = 0.8
        if addr_a[:9] == addr_b[:9] and len(addr_a) >= 9:
            score += 0.1
        if detail_a and detail_b:
            score += 0.1 * SequenceMatcher(None, detail_a, detail_b).ratio()
        found[key] = Candidate(key[0], key[1], RULE_FUZZY, round(score, 3))
    return list(found.values())


def _store(session: Session, candidates: Sequence[Candidate], now: datetime) -> int:
    """Insert the pairs not flagged before (open or decided); returns how many."""
    if not candidates:
        return 0
    later = sorted({p.later_id for p in candidates})
    existing: set[tuple[int, int]] = set()
    for i in range(0, len(later), CHUNK):
        existing.update(
            (a, b)
            for a, b in session.execute(
                select(DuplicateFlag.card_id, DuplicateFlag.other_card_id).where(
                    DuplicateFlag.card_id.in_(later[i : i + CHUNK])
                )
            )
        )
    rows = [
        {
            "card_id": p.later_id,
            "other_card_id": p.earlier_id,
            "rule": p.rule,
            "score": p.score,
            "flagged_at": now,
        }
        for p in candidates
        if (p.later_id, p.earlier_id) not in existing
    ]
    if rows:
        session.execute(insert(DuplicateFlag), rows)
    return len(rows)


def scan(session: Session, card_ids: Iterable[int], *, now: datetime | None = None) -> int:
    """Flag the suspected duplicates of the given cards; returns the number of new flags."""
    now = now or utcnow()
    ids = sorted(set(card_ids))
    session.flush()
    created = 0
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i : i + CHUNK]

        def new(c: Any, chunk: list[int] = chunk) -> ColumnElement[bool]:
            return c.id.in_(chunk)

        created += _store(session, _pairs(session, new), now)
    return created


def scan_batch(
    session: Session, batch_id: int, *, now: datetime | None = None, chunk: int = 20_000
) -> int:
    """Flag the suspected duplicates of every card of one import batch, by id ranges."""
    now = now or utcnow()
    session.flush()
    low, high = session.execute(
        select(func.min(Card.id), func.max(Card.id)).where(Card.import_batch_id == batch_id)
    ).one()
    if low is None:
        return 0
    created = 0
    for start in range(low, high + 1, chunk):

        def new(c: Any, start: int = start) -> ColumnElement[bool]:
            # coalesce(): right after an import the planner's statistics still say the batch
            # is empty and would pick ix_card_batch, reading the whole batch per chunk; the
            # expression leaves it the primary-key range.
            return and_(
                func.coalesce(c.import_batch_id, -1) == batch_id,
                c.id >= start,
                c.id < start + chunk,
            )

        created += _store(session, _pairs(session, new), now)
    return created


# --------------------------------------------------------------------------- review


def list_flags(
    session: Session,
    scope: Scope,
    *,
    open_only: bool = True,
    after_id: int | None = None,
    limit: int = 50,
    reveal: bool = False,
) -> list[dict[str, Any]]:
    """Flags whose later card ``scope`` may see, strongest first within id order, each
    with both cards (masked unless ``reveal``). Open flags on deleted cards are left out."""
    later = aliased(Card, name="later")
    earlier = aliased(Card, name="earlier")
    stmt = (
        select(DuplicateFlag, later, earlier)
        .join(later, later.id == DuplicateFlag.card_id)
        .join(earlier, earlier.id == DuplicateFlag.other_card_id)
        .where(scope_clause(scope, later))
        .order_by(DuplicateFlag.id)
        .limit(max(1, min(limit, 500)))
    )
    if open_only:
        stmt = stmt.where(
            DuplicateFlag.decision.is_(None),
            later.status != service.DELETED,
            earlier.status != service.DELETED,
        )
    if after_id is not None:
        stmt = stmt.where(DuplicateFlag.id > after_id)
    rows: list[tuple[DuplicateFlag, Card, Card]] = [(f, a, b) for f, a, b in session.execute(stmt)]
    if reveal:
        if not scope.identified:
            raise service.ForbiddenError(
                "您的权限不能查看个人身份信息", "your scope may not see personal identifying data"
            )
        record(
            session,
            actor=scope.actor,
            action="duplicate.reveal",
            entity_type="duplicate_flag",
            entity_id="list",
            after={"flag_ids": [f.id for f, _, _ in rows]},
        )
    return [
        {
            "id": flag.id,
            "rule": flag.rule,
            "score": flag.score,
            "flagged_at": flag.flagged_at,
            "decision": flag.decision,
            "decided_by": flag.decided_by,
            "decided_at": flag.decided_at,
            "card": _brief(a, reveal),
            "other_card": _brief(b, reveal),
        }
        for flag, a, b in rows
    ]


_BRIEF = (
    "id",
    "card_number",
    "status",
    "version",
    "patient_name",
    "id_number",
    "sex",
    "birth_date",
    "address_code",
    "address_detail",
    "disease_code",
    "classification",
    "diagnosis_time",
    "org_code",
)


def _brief(card: Card, reveal: bool) -> dict[str, Any]:
    values = {k: getattr(card, k) for k in _BRIEF}
    return values if reveal else {k: v for k, v in masked(values).items() if k in _BRIEF}


def resolve(
    session: Session,
    flag_id: int,
    decision: str,
    *,
    scope: Scope,
    note: str | None = None,
    now: datetime | None = None,
) -> DuplicateFlag:
    """A reviewer's decision on a flag: ``merge`` soft-deletes the later card as 重复报告
    (linked to the earlier one through ``duplicate_of_id``); ``keep`` leaves both."""
    now = now or utcnow()
    if decision not in (MERGE, KEEP):
        raise service.BadRequestError(
            f"处理方式「{decision}」无效(应为 merge 或 keep)",
            f"decision '{decision}' is not valid (merge or keep)",
        )
    later = aliased(Card, name="later")
    flag = session.scalars(
        select(DuplicateFlag)
        .join(later, later.id == DuplicateFlag.card_id)
        .where(DuplicateFlag.id == flag_id, scope_clause(scope, later))
    ).first()
    if flag is None:
        raise service.CardNotFoundError(
            f"重卡标记 {flag_id} 不存在", f"duplicate flag {flag_id} not found", code="not_found"
        )
    if flag.decision is not None:
        raise service.IllegalTransitionError(
            f"重卡标记 {flag_id} 已处理({flag.decision})",
            f"duplicate flag {flag_id} was already resolved ({flag.decision})",
        )
    if decision == MERGE:
        service.delete_card(
            session,
            flag.card_id,
            version=None,
            scope=scope,
            reason_code="dup",
            reason=note or f"与报告卡 {flag.other_card_id} 重复",
            duplicate_of=flag.other_card_id,
            now=now,
        )
    flag.decision = decision
    flag.decided_by = scope.actor
    flag.decided_at = now
    record(
        session,
        actor=scope.actor,
        action=f"duplicate.{decision}",
        entity_type="duplicate_flag",
        entity_id=flag.id,
        before={"decision": None},
        after={"decision": decision, "card_id": flag.card_id, "other_card_id": flag.other_card_id},
        reason=note,
    )
    session.flush()
    return flag


__all__ = ["KEEP", "MERGE", "Candidate", "list_flags", "resolve", "scan", "scan_batch"]
