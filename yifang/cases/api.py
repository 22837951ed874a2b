"""HTTP routes of the cases capability, mounted under ``/api`` by ``yifang.web``.

Cards (create, list, read with history, edit, submit, review, return, correct, delete,
overdue, export), duplicate flags and imports. Every route reads its caller through one
dependency, :func:`yifang.core.auth.current_scope` (the logged-in user's jurisdiction), and
asks for one permission through :data:`PERMISSIONS` (the user's role must grant it).

Errors are JSON ``{"error", "message_zh", "message_en", "fields"}`` with 422 (invalid
content or parameters), 403, 404 (missing or outside the caller's jurisdiction) or 409
(stale version, illegal transition); bad input never produces a 500.
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from yifang.cases import duplicates, queries, service
from yifang.cases.models import ImportBatch
from yifang.cases.schemas import CardIn, CardOut
from yifang.cases.validation import Reference, validate_card
from yifang.core.accounts import User
from yifang.core.audit import AuditEntry, record
from yifang.core.auth import current_scope, require
from yifang.core.db import SESSION, get_engine, session_factory, utcnow
from yifang.core.errors import ERROR_RESPONSES, ErrorRoute, FieldError
from yifang.core.jurisdiction import Scope

# --------------------------------------------------------------------------- errors


router = APIRouter(tags=["cases"], route_class=ErrorRoute, responses=ERROR_RESPONSES)


# --------------------------------------------------------------------------- caller


#: Permission name → the dependency that checks it against the caller's role.
PERMISSIONS: dict[str, Callable[..., Awaitable[User]]] = {
    name: require(name)
    for name in (
        "card.create",
        "card.edit",
        "card.view",
        "card.view_identified",
        "card.review",
        "card.delete",
        "card.export",
        "card.import",
    )
}

ScopeDep = Annotated[Scope, Depends(current_scope)]
SessionDep = Annotated[Session, SESSION]


def _needs(name: str) -> Any:
    return Depends(PERMISSIONS[name])


# --------------------------------------------------------------------------- shapes


class CardView(CardOut):
    """A stored card as the caller may see it: personal fields masked unless revealed."""

    deleted_reason_code: str | None = None
    duplicate_of_id: int | None = None


class CardPageOut(BaseModel):
    """One page of cards; pass ``next_cursor`` back as ``cursor`` for the next page."""

    items: list[CardView]
    next_cursor: str | None = None


class HistoryItem(BaseModel):
    """One recorded action on a card: who, when, why, and the fields before and after."""

    action: str = Field(description="create, edit, submit, review, return, correct, delete")
    actor: str
    at: datetime
    reason: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


class RevisionOut(BaseModel):
    """The whole card as it stood before an action (订正 history keeps 订正前病种 etc.)."""

    model_config = ConfigDict(from_attributes=True)

    version: int
    action: str
    actor: str
    at: datetime
    reason: str | None = None
    snapshot: dict[str, Any]


class CardDetail(BaseModel):
    """A card with its history and its earlier states."""

    card: CardView
    history: list[HistoryItem]
    revisions: list[RevisionOut]


class HistoryOut(BaseModel):
    """A card's history, oldest first."""

    items: list[HistoryItem]


class VersionIn(BaseModel):
    """The version of the card the caller saw (optimistic locking)."""

    version: int = Field(ge=1)


class EditIn(VersionIn):
    """Changed fields of a draft or returned card (raw values, as on the card)."""

    changes: dict[str, Any] = Field(default_factory=dict)


class ReturnIn(VersionIn):
    """退卡: why the card goes back to the reporter."""

    reason: str = Field(max_length=2000)


class CorrectIn(VersionIn):
    """订正: the new diagnosis, classification or disease (and related dates)."""

    changes: dict[str, Any]
    reason: str | None = Field(None, max_length=2000)


class DeleteIn(BaseModel):
    """Soft deletion with a reason code and a text."""

    version: int = Field(ge=1)
    reason_code: str = Field(
        max_length=8, description="dup, error, ruledout, test or other (删除类型)."
    )
    reason: str = Field(max_length=2000)


class CheckOut(BaseModel):
    """The result of checking a card without storing it."""

    ok: bool
    errors: list[FieldError]


class CountOut(BaseModel):
    """Cards of one disease, county and onset day."""

    disease_code: str
    county_code: str
    day: date
    cards: int


class CardBrief(BaseModel):
    """The fields of a card a duplicate reviewer compares."""

    id: int
    card_number: str | None = None
    status: str
    version: int
    patient_name: str | None = None
    id_number: str | None = None
    sex: str | None = None
    birth_date: date | None = None
    address_code: str | None = None
    address_detail: str | None = None
    disease_code: str
    classification: str | None = None
    diagnosis_time: datetime
    org_code: str


class DuplicateOut(BaseModel):
    """A suspected duplicate pair: ``card`` is the later one."""

    id: int
    rule: str
    score: float
    flagged_at: datetime
    decision: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    card: CardBrief
    other_card: CardBrief


class ResolveIn(BaseModel):
    """A reviewer's decision on a duplicate flag."""

    decision: str = Field(description="merge (delete the later card as 重复报告) or keep")
    note: str | None = Field(None, max_length=2000)


class ImportOut(BaseModel):
    """An import batch: its file and its counts."""

    id: int
    filename: str
    file_format: str
    encoding: str | None = None
    status: str
    started_at: datetime
    finished_at: datetime | None = None
    rows_total: int
    rows_stored: int
    rows_duplicate: int
    rows_quarantined: int
    error: str | None = None
    duplicate_flags: int | None = Field(None, description="重卡 flags raised by this import.")
    already_imported: bool = False


# --------------------------------------------------------------------------- helpers


def _filter(
    disease_code: list[str] | None,
    region: str | None,
    org_code: str | None,
    status: list[str] | None,
    classification: list[str] | None,
    diagnosis_from: date | None,
    diagnosis_to: date | None,
    onset_from: date | None,
    onset_to: date | None,
    card_number: str | None,
) -> queries.CardFilter:
    statuses = [s for s in status or () if s]
    unknown = [s for s in statuses if s not in service.STATUSES]
    if unknown:
        raise service.BadRequestError(
            f"状态「{unknown[0]}」无效",
            f"unknown status '{unknown[0]}'",
            fields=[
                FieldError(
                    field="status",
                    code="status.invalid_code",
                    message_zh=f"状态:应为 {'、'.join(service.STATUSES)} 之一",
                    message_en=f"status: must be one of {', '.join(service.STATUSES)}",
                )
            ],
        )
    return queries.CardFilter(
        disease_codes=[d for d in disease_code or () if d],
        region_prefix=region or None,
        org_code=org_code or None,
        statuses=statuses,
        classifications=[c for c in classification or () if c],
        diagnosis_from=diagnosis_from,
        diagnosis_to=diagnosis_to,
        onset_from=onset_from,
        onset_to=onset_to,
        card_number=card_number or None,
    )


async def card_filters(
    disease_code: Annotated[list[str] | None, Query(description="Disease code(s).")] = None,
    region: Annotated[
        str | None, Query(pattern=r"^\d{2,12}$", description="Address code prefix.")
    ] = None,
    org_code: Annotated[str | None, Query(max_length=32)] = None,
    status: Annotated[list[str] | None, Query(description="Status(es).")] = None,
    classification: Annotated[list[str] | None, Query()] = None,
    diagnosis_from: date | None = None,
    diagnosis_to: date | None = None,
    onset_from: date | None = None,
    onset_to: date | None = None,
    card_number: Annotated[
        str | None, Query(max_length=32, description="Card number prefix.")
    ] = None,
) -> queries.CardFilter:
    """The list filters as query parameters (shared by list, export and counts); checked
    without I/O, so it runs on the event loop rather than taking a worker thread."""
    return _filter(
        disease_code,
        region,
        org_code,
        status,
        classification,
        diagnosis_from,
        diagnosis_to,
        onset_from,
        onset_to,
        card_number,
    )


FiltersDep = Annotated[queries.CardFilter, Depends(card_filters)]


def _view(card: Any, *, reveal: bool) -> CardView:
    return CardView.model_validate(queries.card_view(card, reveal=reveal))


def _history(session: Session, card_id: int, reveal: bool) -> list[HistoryItem]:
    entries = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.entity_type == "card", AuditEntry.entity_id == str(card_id))
        .where(AuditEntry.action != "card.reveal")
        .order_by(AuditEntry.id)
    )
    items = []
    for e in entries:
        before, after = e.before, e.after
        if not reveal:
            before = _mask_diff(before)
            after = _mask_diff(after)
        items.append(
            HistoryItem(
                action=e.action.removeprefix("card."),
                actor=e.actor,
                at=e.at,
                reason=e.reason,
                before=before,
                after=after,
            )
        )
    return items


def _mask_diff(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    hidden = set(queries.PERSONAL_FIELDS) & set(values)
    masked = queries.masked({**dict.fromkeys(queries.PERSONAL_FIELDS), **values})
    return {k: masked[k] if k in hidden else v for k, v in values.items()} | {
        k: masked[k] for k in hidden
    }


def _revisions(session: Session, card_id: int, reveal: bool) -> list[RevisionOut]:
    out = []
    for r in service.history(session, card_id):
        snap = dict(r.snapshot)
        snap.pop("content_hash", None)
        snap.pop("name_key", None)
        out.append(
            RevisionOut(
                version=r.version,
                action=r.action,
                actor=r.actor,
                at=r.at,
                reason=r.reason,
                snapshot=snap if reveal else queries.masked(snap),
            )
        )
    return out


def _reveal(session: Session, scope: Scope, reveal: bool, card_ids: list[int]) -> bool:
    return queries.may_reveal(session, scope, reveal, card_ids)


# --------------------------------------------------------------------------- cards

#: The card body is read as raw values (labels, strings) and checked by the card rules, not
#: by pydantic, so that every problem comes back by field; the schema documents its shape.
_CARD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": CardIn.model_json_schema()}},
    }
}


@router.post(
    "/cards",
    response_model=CardView,
    status_code=201,
    summary="Create a card (submitted, or a draft with submit=false)",
    dependencies=[_needs("card.create")],
    openapi_extra=_CARD_BODY,
)
def create_card(
    data: dict[str, Any],
    scope: ScopeDep,
    session: SessionDep,
    submit: bool = True,
) -> CardView:
    """Store a new report card. The body holds the card's fields under the ``card`` column
    names (codes or national labels); every rule it breaks is listed in ``fields``. Other
    responses mask personal data; this one echoes what the caller entered."""
    card = service.create_card(session, data, scope=scope, submit=submit, source="api")
    return _view(card, reveal=scope.identified)  # the caller's own input, echoed


@router.post(
    "/cards/validate",
    response_model=CheckOut,
    summary="Check a card without storing it",
    dependencies=[_needs("card.create")],
    openapi_extra=_CARD_BODY,
)
def check_card(data: dict[str, Any], session: SessionDep) -> CheckOut:
    """Run every card rule on the body and return the errors (nothing is stored)."""
    outcome = validate_card(data, Reference.from_session(session), utcnow())
    return CheckOut(ok=outcome.ok, errors=outcome.errors)


@router.get(
    "/cards",
    response_model=CardPageOut,
    summary="List cards with filters (keyset pages, newest diagnosis first)",
    dependencies=[_needs("card.view")],
)
def list_cards(
    filters: FiltersDep,
    scope: ScopeDep,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_PAGE_SIZE)] = 50,
    reveal: bool = False,
) -> CardPageOut:
    """Cards inside the caller's jurisdiction, masked unless ``reveal`` (audited)."""
    page = queries.list_cards(session, scope, filters, cursor=cursor, limit=limit, reveal=reveal)
    return CardPageOut(
        items=[CardView.model_validate(v) for v in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/cards/overdue",
    response_model=CardPageOut,
    summary="Submitted cards past their review due time",
    dependencies=[_needs("card.view")],
)
def overdue_cards(
    scope: ScopeDep,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_PAGE_SIZE)] = 50,
    reveal: bool = False,
) -> CardPageOut:
    """Cards whose review time limit has passed, newest diagnosis first."""
    page = queries.overdue(session, scope, cursor=cursor, limit=limit, reveal=reveal)
    return CardPageOut(
        items=[CardView.model_validate(v) for v in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/cards/counts",
    response_model=list[CountOut],
    summary="Card counts by disease, county and onset day",
    dependencies=[_needs("card.view")],
)
def card_counts(filters: FiltersDep, scope: ScopeDep, session: SessionDep) -> list[CountOut]:
    """Counts (deleted cards excluded) in one GROUP BY, for dashboards."""
    return [CountOut(**vars(r)) for r in queries.counts(session, scope, filters)]


EXPORT_MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@router.get(
    "/cards/export",
    summary="Export the filtered cards as CSV or XLSX (streamed)",
    response_class=StreamingResponse,
    responses={200: {"content": {m: {} for m in EXPORT_MEDIA.values()}}},
    dependencies=[_needs("card.export")],
)
def export_cards(
    filters: FiltersDep,
    scope: ScopeDep,
    session: SessionDep,
    format: Annotated[str, Query(pattern="^(csv|xlsx)$")] = "csv",
    reveal: bool = False,
) -> StreamingResponse:
    """Every matching card inside the caller's jurisdiction, read by keyset in batches so
    memory stays bounded at any size. The export is audited."""
    show = _reveal(session, scope, reveal, [])
    record(
        session,
        actor=scope.actor,
        action="card.export",
        entity_type="card",
        entity_id="export",
        after={"format": format, "reveal": show, "filter": repr(filters)},
    )
    flt = filters
    stamp = utcnow().strftime("%Y%m%d%H%M")
    if format == "csv":
        body: Iterator[bytes] = _export_csv(scope, flt, show)
    else:
        body = _export_xlsx(scope, flt, show)
    return StreamingResponse(
        body,
        media_type=EXPORT_MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="cards-{stamp}.{format}"'},
    )


def _export_csv(scope: Scope, flt: queries.CardFilter, reveal: bool) -> Iterator[bytes]:
    with session_factory()() as session:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        yield "\ufeff".encode()
        for header_or_row in queries.export_rows(session, scope, flt, reveal=reveal):
            writer.writerow(header_or_row)
            if buffer.tell() > 64_000:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode()


def _export_xlsx(scope: Scope, flt: queries.CardFilter, reveal: bool) -> Iterator[bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cards.xlsx"
        with session_factory()() as session:
            queries.write_xlsx(session, scope, flt, path, reveal=reveal)
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                yield chunk


@router.get(
    "/cards/{card_id}",
    response_model=CardDetail,
    summary="One card with its history",
    dependencies=[_needs("card.view")],
)
def get_card(
    card_id: int, scope: ScopeDep, session: SessionDep, reveal: bool = False
) -> CardDetail:
    """The card (masked unless ``reveal``, which is audited), every recorded action on it,
    and its earlier states."""
    card = queries.get_card(session, scope, card_id)
    show = _reveal(session, scope, reveal, [card.id])
    return CardDetail(
        card=_view(card, reveal=show),
        history=_history(session, card.id, show),
        revisions=_revisions(session, card.id, show),
    )


@router.get(
    "/cards/{card_id}/history",
    response_model=HistoryOut,
    summary="A card's recorded actions",
    dependencies=[_needs("card.view")],
)
def card_history(card_id: int, scope: ScopeDep, session: SessionDep) -> HistoryOut:
    """Who did what to the card and when, oldest first (personal fields masked)."""
    card = queries.get_card(session, scope, card_id)
    return HistoryOut(items=_history(session, card.id, reveal=False))


def _edit(card_id: int, body: EditIn, scope: Scope, session: Session) -> CardView:
    card = service.edit_card(session, card_id, body.changes, version=body.version, scope=scope)
    return _view(card, reveal=False)


@router.put(
    "/cards/{card_id}",
    response_model=CardView,
    summary="Edit a draft or returned card",
    dependencies=[_needs("card.edit")],
)
def edit_card(card_id: int, body: EditIn, scope: ScopeDep, session: SessionDep) -> CardView:
    """Change fields of a draft or returned card (``changes``; unchanged fields may be left
    out). The whole card is validated again."""
    return _edit(card_id, body, scope, session)


@router.patch(
    "/cards/{card_id}",
    response_model=CardView,
    summary="Edit a draft or returned card (same as PUT)",
    dependencies=[_needs("card.edit")],
)
def patch_card(card_id: int, body: EditIn, scope: ScopeDep, session: SessionDep) -> CardView:
    """As PUT: change fields of a draft or returned card."""
    return _edit(card_id, body, scope, session)


@router.post(
    "/cards/{card_id}/submit",
    response_model=CardView,
    summary="Submit a draft or a fixed returned card for review",
    dependencies=[_needs("card.edit")],
)
def submit_card(card_id: int, body: VersionIn, scope: ScopeDep, session: SessionDep) -> CardView:
    """The card goes to the county CDC; its review due time starts."""
    card = service.submit_card(session, card_id, version=body.version, scope=scope)
    return _view(card, reveal=False)


@router.post(
    "/cards/{card_id}/review",
    response_model=CardView,
    summary="Review (审核) a submitted card",
    dependencies=[_needs("card.review")],
)
def review_card(card_id: int, body: VersionIn, scope: ScopeDep, session: SessionDep) -> CardView:
    """The card becomes final (已终审)."""
    card = service.review_card(session, card_id, version=body.version, scope=scope)
    return _view(card, reveal=False)


@router.post(
    "/cards/{card_id}/return",
    response_model=CardView,
    summary="Return (退卡) a submitted card to its reporter",
    dependencies=[_needs("card.review")],
)
def return_card(card_id: int, body: ReturnIn, scope: ScopeDep, session: SessionDep) -> CardView:
    """The reporter fixes the card and submits it again."""
    card = service.return_card(
        session, card_id, version=body.version, scope=scope, reason=body.reason
    )
    return _view(card, reveal=False)


@router.post(
    "/cards/{card_id}/correct",
    response_model=CardView,
    summary="Correct (订正) a reviewed card",
    dependencies=[_needs("card.edit")],
)
def correct_card(card_id: int, body: CorrectIn, scope: ScopeDep, session: SessionDep) -> CardView:
    """New diagnosis, classification or disease; the card goes back to review and its
    earlier state stays in the history."""
    card = service.correct_card(
        session, card_id, body.changes, version=body.version, scope=scope, reason=body.reason
    )
    return _view(card, reveal=False)


@router.post(
    "/cards/{card_id}/delete",
    response_model=CardView,
    summary="Delete a card (soft, with a reason)",
    dependencies=[_needs("card.delete")],
)
def delete_card(card_id: int, body: DeleteIn, scope: ScopeDep, session: SessionDep) -> CardView:
    """The card stays stored as 已删除 and leaves lists and counts."""
    card = service.delete_card(
        session,
        card_id,
        version=body.version,
        scope=scope,
        reason_code=body.reason_code,
        reason=body.reason,
    )
    return _view(card, reveal=False)


# --------------------------------------------------------------------------- duplicates


@router.get(
    "/duplicates",
    response_model=list[DuplicateOut],
    summary="Suspected duplicate cards (重卡) awaiting a decision",
    dependencies=[_needs("card.review")],
)
def list_duplicates(
    scope: ScopeDep,
    session: SessionDep,
    open_only: bool = True,
    after_id: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    reveal: bool = False,
) -> list[DuplicateOut]:
    """Flags whose later card the caller may see, by id; page with ``after_id``."""
    rows = duplicates.list_flags(
        session, scope, open_only=open_only, after_id=after_id, limit=limit, reveal=reveal
    )
    return [DuplicateOut.model_validate(r) for r in rows]


@router.post(
    "/duplicates/{flag_id}/resolve",
    response_model=DuplicateOut,
    summary="Merge or keep a suspected duplicate",
    dependencies=[_needs("card.review")],
)
def resolve_duplicate(
    flag_id: int, body: ResolveIn, scope: ScopeDep, session: SessionDep
) -> DuplicateOut:
    """``merge`` soft-deletes the later card as 重复报告 (linked to the kept one);
    ``keep`` leaves both."""
    flag = duplicates.resolve(session, flag_id, body.decision, scope=scope, note=body.note)
    rows = duplicates.list_flags(session, scope, open_only=False, after_id=flag.id - 1, limit=1)
    return DuplicateOut.model_validate(rows[0])


# --------------------------------------------------------------------------- imports


def _batch_out(batch: ImportBatch, **extra: Any) -> ImportOut:
    return ImportOut(
        id=batch.id,
        filename=batch.filename,
        file_format=batch.file_format,
        encoding=batch.encoding,
        status=batch.status,
        started_at=batch.started_at,
        finished_at=batch.finished_at,
        rows_total=batch.rows_total,
        rows_stored=batch.rows_stored,
        rows_duplicate=batch.rows_duplicate,
        rows_quarantined=batch.rows_quarantined,
        error=batch.error,
        **extra,
    )


def _get_batch(session: Session, batch_id: int) -> ImportBatch:
    batch = session.get(ImportBatch, batch_id)
    if batch is None:
        raise service.CardNotFoundError(
            f"导入批次 {batch_id} 不存在", f"import batch {batch_id} not found"
        )
    return batch


@router.post(
    "/imports",
    response_model=ImportOut,
    status_code=201,
    summary="Import a card file (CSV, XLSX or JSON Lines)",
    dependencies=[_needs("card.import")],
)
def import_cards(
    file: Annotated[UploadFile, File(description="CSV (UTF-8/GB18030), XLSX or JSONL.")],
    scope: ScopeDep,
    session: SessionDep,
) -> ImportOut:
    """Valid rows are stored, invalid ones quarantined with every error (see
    ``/imports/{id}/errors.csv``); then the new cards are checked for duplicates. A file
    that cannot be read at all gets one error and changes nothing."""
    from yifang.cases import importing
    from yifang.cases.import_formats import ImportFileError

    name = Path(file.filename or "upload").name
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        with path.open("wb") as out:
            shutil.copyfileobj(file.file, out, 1 << 20)
        try:
            result = importing.import_file(get_engine(), path, actor=scope.actor, filename=name)
        except ImportFileError as exc:
            raise service.BadRequestError(
                exc.message_zh, exc.message_en, code=getattr(exc, "code", "file.unreadable")
            ) from exc
    batch = _get_batch(session, result.batch_id)
    session.refresh(batch)
    flags = None
    if not result.already_imported:
        flags = duplicates.scan_batch(session, batch.id)
    return _batch_out(batch, duplicate_flags=flags, already_imported=result.already_imported)


@router.get(
    "/imports/{batch_id}",
    response_model=ImportOut,
    summary="An import batch and its counts",
    dependencies=[_needs("card.import")],
)
def get_import(batch_id: int, session: SessionDep) -> ImportOut:
    """Where an import stands."""
    return _batch_out(_get_batch(session, batch_id))


def _error_report(batch_id: int, fmt: str, session: Session) -> StreamingResponse:
    from yifang.cases import importing

    _get_batch(session, batch_id)

    def body() -> Iterator[bytes]:  # its own session: the request's closes before streaming
        with session_factory()() as own:
            yield from importing.error_report(own, batch_id, fmt)

    media = "text/csv; charset=utf-8" if fmt == "csv" else EXPORT_MEDIA["xlsx"]
    return StreamingResponse(
        body(),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="import-{batch_id}-errors.{fmt}"'},
    )


@router.get(
    "/imports/{batch_id}/errors.csv",
    summary="The quarantined rows of an import, with their errors (CSV)",
    response_class=StreamingResponse,
    dependencies=[_needs("card.import")],
)
def import_errors_csv(batch_id: int, session: SessionDep) -> StreamingResponse:
    """Row number, errors in Chinese and English, then the row as it was in the file."""
    return _error_report(batch_id, "csv", session)


@router.get(
    "/imports/{batch_id}/errors.xlsx",
    summary="The quarantined rows of an import, with their errors (XLSX)",
    response_class=StreamingResponse,
    dependencies=[_needs("card.import")],
)
def import_errors_xlsx(batch_id: int, session: SessionDep) -> StreamingResponse:
    """As errors.csv, as a workbook."""
    return _error_report(batch_id, "xlsx", session)


__all__ = ["PERMISSIONS", "router"]
