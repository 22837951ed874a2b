"""HTTP routes of the hospital front end, mounted under ``/api`` by ``yifang.web``.

* ``POST /api/fhir`` — a FHIR R4 Bundle from a hospital system, authenticated by an API token
  (``Authorization: Bearer …``) of an account of that hospital allowed to report
  (``card.create``). Answered with an OperationOutcome (``application/fhir+json``): 200 when
  accepted or recognised as a repeat, 400 when unreadable, 422 when invalid, 401/403 when
  the token is missing or not allowed. Every message is kept (``/api/hospital/messages``).
* ``POST /api/hospital/hl7`` — one HL7 v2 message over HTTP, answered with its ACK.
* ``POST /api/hospital/csv`` — a CSV extract (``card.import``).
* Drafts: ``GET /api/hospital/cases``, ``POST …/cases/{id}/confirm`` and ``…/reject``.
* Missed reports: ``GET /api/hospital/missed``, ``…/missed/summary``, ``POST …/missed/scan``.
* Rules (the CDC edits them, ``admin.algorithms``): ``GET /api/hospital/rules``,
  ``PUT /api/hospital/rules/{kind}/{code}``, ``POST /api/hospital/rules/load``.
* Syndrome counts ``GET /api/hospital/syndromes``; streams ``GET/POST /api/hospital/streams``.

Errors other than FHIR's are JSON ``{"error", "message_zh", "message_en", "fields"}``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Awaitable, Callable, Coroutine
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, HTTPException, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy import select
from sqlalchemy.orm import Session

from yifang.cases.service import CardError, CardNotFoundError
from yifang.core.accounts import User, has_permission
from yifang.core.auth import current_scope, current_user, optional_user, scope_for
from yifang.core.db import SESSION
from yifang.core.jurisdiction import Scope
from yifang.hospital import drafts, intake_csv, intake_fhir, intake_hl7, rules, service
from yifang.hospital.models import IntakeMessage, MissedReport, StreamObservation, SyndromeCount
from yifang.hospital.schemas import (
    RULE_KINDS,
    CaseOut,
    ConfirmIn,
    IntakeOut,
    MissedOut,
    MissedSummary,
    RejectIn,
    RuleIn,
    RuleOut,
    StreamIn,
    StreamOut,
    SyndromeCountOut,
)

FHIR_JSON = "application/fhir+json"


def _body(
    status: int, code: str, zh: str, en: str, fields: list[Any] | None = None
) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": code, "message_zh": zh, "message_en": en, "fields": fields or []},
    )


class HospitalRoute(APIRoute):
    """Routes that turn the capability's errors into the JSON error body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except CardError as exc:
                return JSONResponse(status_code=exc.status, content=exc.as_dict())
            except rules.RuleNotFoundError as exc:
                return _body(404, "not_found", f"规则不存在:{exc}", str(exc))
            except (rules.RuleError, ValueError) as exc:
                return _body(422, "invalid_rule", f"规则无效:{exc}", str(exc))

        return handle


router = APIRouter(tags=["hospital"], route_class=HospitalRoute)
SessionDep = Annotated[Session, SESSION]


def require_any(*permissions: str) -> Callable[..., Awaitable[User]]:
    """A dependency admitting callers whose role grants any of ``permissions``."""

    async def dependency(user: User = Depends(current_user)) -> User:
        if not any(has_permission(user, p) for p in permissions):
            raise HTTPException(403, detail=f"needs one of {', '.join(permissions)}")
        return user

    dependency.__name__ = "require_" + "_or_".join(p.replace(".", "_") for p in permissions)
    return dependency


# --------------------------------------------------------------------------- FHIR


def _fhir(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=body, media_type=FHIR_JSON, headers=headers)


def _security(status: int, code: str, zh: str, en: str) -> JSONResponse:
    outcome = intake_fhir.operation_outcome(
        [intake_fhir.RecordError(location="Authorization", code=code, message_zh=zh, message_en=en)]
    )
    for issue in outcome["issue"]:
        issue["code"] = "login" if status == 401 else "forbidden"
    return _fhir(status, outcome, {"WWW-Authenticate": "Bearer"} if status == 401 else None)


@router.post(
    "/fhir",
    summary="Receive a FHIR R4 Bundle of a hospital's encounters",
    response_class=JSONResponse,
)
async def post_fhir(
    request: Request,
    session: SessionDep,
    user: User | None = Depends(optional_user),
) -> JSONResponse:
    """Answer: an OperationOutcome; the header ``X-Yifang-Intake-Id`` names the kept message."""
    if user is None or getattr(request.state, "auth_method", None) != "token":
        return _security(401, "login", "需要API令牌(Bearer)", "an API token (Bearer) is required")
    if not has_permission(user, "card.create") or not user.organisation_code:
        return _security(
            403,
            "forbidden",
            "该令牌的账号不能代表医院报告",
            "the token's account may not report for a hospital",
        )
    raw = (await request.body()).decode("utf-8", errors="replace")
    org = user.organisation_code
    received = service.receive(
        session,
        source="fhir",
        raw=raw,
        parse=lambda: intake_fhir.parse_bundle(raw, org),
        actor=user.username,
        org_code=org,
    )
    message = received.message
    headers = {"X-Yifang-Intake-Id": str(message.id)}
    errors = [intake_fhir.RecordError.model_validate(e) for e in message.errors]
    if message.status == service.DUPLICATE:
        body = intake_fhir.operation_outcome(
            [], f"duplicate of message {message.duplicate_of_id}; nothing changed", "duplicate"
        )
        return _fhir(200, body, headers)
    if message.status == service.ACCEPTED:
        figures = received.report.as_dict() if received.report else {}
        info = (
            f"accepted as message {message.id}: {message.encounters} encounter(s), "
            f"{figures.get('drafts', 0)} draft card(s), {figures.get('syndromes', 0)} syndrome(s)"
        )
        warnings = [e for e in errors if e.severity == "warning"]
        return _fhir(200, intake_fhir.operation_outcome(warnings, info), headers)
    structural = {"invalid_json", "not_a_bundle"}
    status = 400 if any(e.code in structural for e in errors) else 422
    if message.status == service.FAILED:
        status = 500
    return _fhir(status, intake_fhir.operation_outcome(errors), headers)


# --------------------------------------------------------------------------- HL7 and CSV


@router.post(
    "/hospital/hl7",
    summary="Receive one HL7 v2 message over HTTP; answered with its ACK",
    response_class=Response,
)
async def post_hl7(
    request: Request, user: User = Depends(require_any("card.create", "card.import"))
) -> Response:
    """The message as the body (text); the answer is the ACK (``application/hl7-v2``)."""
    text = intake_hl7._decode(await request.body())
    ack, received = intake_hl7.handle_message(text, source="hl7-http", actor=user.username)
    return Response(
        content=ack,
        media_type="application/hl7-v2",
        headers={"X-Yifang-Intake-Id": str(received.message.id)},
    )


@router.post("/hospital/csv", summary="Import a CSV extract of encounters or results")
def post_csv(
    session: SessionDep,
    file: UploadFile = File(...),
    user: User = Depends(require_any("card.import")),
) -> dict[str, Any]:
    """The figures of the import and the first errors (line and column)."""
    suffix = Path(file.filename or "upload.csv").suffix or ".csv"
    with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as tmp:
        shutil.copyfileobj(file.file, tmp)
        path = Path(tmp.name)
    try:
        report = intake_csv.ingest_csv(
            session, path, actor=user.username, org_code=scope_for(user).organisation_code
        )
    finally:
        path.unlink(missing_ok=True)
    return {
        "message_id": report.message_id,
        "kind": report.kind,
        "rows": report.rows,
        "stored": report.stored,
        "rejected": report.rejected,
        "duplicate_of": report.duplicate_of,
        "figures": report.figures,
        "errors": [e.model_dump() for e in report.errors[:200]],
    }


@router.get("/hospital/messages", response_model=list[IntakeOut])
def list_messages(
    session: SessionDep,
    scope: Scope = Depends(current_scope),
    status: str | None = Query(None, max_length=16),
    limit: int = Query(100, ge=1, le=1000),
    _user: User = Depends(require_any("card.view")),
) -> list[IntakeMessage]:
    """Received messages, newest first (a hospital sees its own)."""
    stmt = select(IntakeMessage).order_by(IntakeMessage.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(IntakeMessage.status == status)
    if scope.organisation_code:
        stmt = stmt.where(IntakeMessage.org_code == scope.organisation_code)
    return list(session.scalars(stmt))


@router.get("/hospital/messages/{message_id}")
def get_message(
    message_id: int,
    session: SessionDep,
    scope: Scope = Depends(current_scope),
    _user: User = Depends(require_any("card.view_identified")),
) -> dict[str, Any]:
    """One message with its raw text (personal data: needs ``card.view_identified``)."""
    message = session.get(IntakeMessage, message_id)
    if message is None or (scope.organisation_code and message.org_code != scope.organisation_code):
        raise CardNotFoundError(f"消息 {message_id} 不存在", f"message {message_id} not found")
    out = IntakeOut.model_validate(message).model_dump(mode="json")
    out["raw"] = message.raw
    return out


# --------------------------------------------------------------------------- drafts


@router.get("/hospital/cases", response_model=list[CaseOut])
def list_cases(
    session: SessionDep,
    scope: Scope = Depends(current_scope),
    status: str | None = Query(None, max_length=20),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    _user: User = Depends(require_any("card.view")),
) -> list[Any]:
    """Identified cases; ``status=draft`` is the doctor's list of cards to confirm."""
    return drafts.list_cases(session, scope, status, limit, offset)


@router.get("/hospital/cases/{case_id}", response_model=CaseOut)
def get_case(
    case_id: int,
    session: SessionDep,
    scope: Scope = Depends(current_scope),
    _user: User = Depends(require_any("card.view")),
) -> Any:
    """One identified case."""
    return drafts.get_case(session, case_id, scope)


@router.post("/hospital/cases/{case_id}/confirm", response_model=CaseOut)
def confirm_case(
    case_id: int,
    body: ConfirmIn,
    session: SessionDep,
    scope: Scope = Depends(current_scope),
    _user: User = Depends(require_any("card.create")),
) -> Any:
    """The doctor confirms the draft (with corrections): the card is submitted."""
    return drafts.confirm(session, case_id, scope=scope, changes=body.changes, version=body.version)


@router.post("/hospital/cases/{case_id}/reject", response_model=CaseOut)
def reject_case(
    case_id: int,
    body: RejectIn,
    session: SessionDep,
    scope: Scope = Depends(current_scope),
    _user: User = Depends(require_any("card.create")),
) -> Any:
    """The doctor rejects the draft with a reason."""
    return drafts.reject(
        session, case_id, scope=scope, reason=body.reason, reason_code=body.reason_code
    )


# --------------------------------------------------------------------------- missed reports


@router.get("/hospital/missed", response_model=list[MissedOut])
def list_missed(
    session: SessionDep,
    scope: Scope = Depends(current_scope),
    open_only: bool = Query(True, alias="open"),
    limit: int = Query(200, ge=1, le=2000),
    _user: User = Depends(require_any("card.view")),
) -> list[Any]:
    """Missed reports (漏报) for the hospital's prevention department, oldest due first."""
    stmt = select(MissedReport).order_by(MissedReport.due_at).limit(limit)
    if open_only:
        stmt = stmt.where(MissedReport.resolved_at.is_(None))
    if scope.organisation_code:
        stmt = stmt.where(MissedReport.org_code == scope.organisation_code)
    return list(session.scalars(stmt))


@router.get("/hospital/missed/summary", response_model=list[MissedSummary])
def missed_summary(
    session: SessionDep,
    scope: Scope = Depends(current_scope),
    start: date | None = None,
    end: date | None = None,
    _user: User = Depends(require_any("card.view", "aggregate.view")),
) -> list[dict[str, Any]]:
    """Per hospital: identified, reported in time, missed, still open, missed rate."""
    return drafts.missed_summary(session, start, end, scope.organisation_code)


@router.post("/hospital/missed/scan")
def scan_missed(
    session: SessionDep,
    _user: User = Depends(require_any("card.review", "admin.algorithms")),
) -> dict[str, int]:
    """Flag the drafts past their time limit (normally run by ``yifang hospital missed``)."""
    result = drafts.scan_missed(session, rules.ruleset(session))
    return result.__dict__


# --------------------------------------------------------------------------- rules


@router.get("/hospital/rules", response_model=list[RuleOut])
def list_rules(
    session: SessionDep,
    kind: str | None = Query(None, max_length=16),
    _user: User = Depends(current_user),
) -> list[Any]:
    """The case-identification and syndrome rules."""
    if kind is not None and kind not in RULE_KINDS:
        raise rules.RuleError(f"kind: must be one of {', '.join(RULE_KINDS)}")
    rules.ruleset(session)  # loads the data files on first use
    return rules.list_rules(session, kind)


@router.put("/hospital/rules/{kind}/{code}", response_model=RuleOut)
def put_rule(
    kind: str,
    code: str,
    body: RuleIn,
    session: SessionDep,
    user: User = Depends(require_any("admin.algorithms")),
) -> Any:
    """Create or change a rule (kept over reloads of the data files)."""
    return rules.put_rule(session, kind, code, body, user.username)


@router.post("/hospital/rules/load")
def load_rules(
    session: SessionDep, _user: User = Depends(require_any("admin.algorithms"))
) -> dict[str, int]:
    """Reload the data files (edited rules are kept)."""
    return rules.load_rules(session).__dict__


# --------------------------------------------------------------------------- syndromes, streams


@router.get("/hospital/syndromes", response_model=list[SyndromeCountOut])
def syndrome_counts(
    session: SessionDep,
    start: date,
    end: date,
    syndrome: str | None = Query(None, max_length=32),
    org_code: str | None = Query(None, max_length=32),
    township: str | None = Query(None, max_length=12, pattern=r"^\d{2,12}$"),
    scope: Scope = Depends(current_scope),
    _user: User = Depends(require_any("aggregate.view", "dashboard.view")),
) -> list[Any]:
    """Syndrome counts per hospital, township and day (a hospital sees its own)."""
    stmt = (
        select(SyndromeCount)
        .where(SyndromeCount.day >= start, SyndromeCount.day <= end)
        .order_by(SyndromeCount.day, SyndromeCount.syndrome, SyndromeCount.org_code)
        .limit(50_000)
    )
    if syndrome:
        stmt = stmt.where(SyndromeCount.syndrome == syndrome)
    if scope.organisation_code:
        org_code = scope.organisation_code
    if org_code:
        stmt = stmt.where(SyndromeCount.org_code == org_code)
    prefix = township or scope.region_prefix
    if prefix:
        stmt = stmt.where(SyndromeCount.township.startswith(prefix))
    return list(session.scalars(stmt))


@router.post("/hospital/streams")
def post_streams(
    rows: list[StreamIn],
    session: SessionDep,
    _user: User = Depends(require_any("card.import", "admin.algorithms")),
) -> dict[str, int]:
    """Store observations of the other surveillance streams (upsert)."""
    stored = service.put_observations(session, rows, service.stream_definitions())
    return {"stored": stored}


@router.get("/hospital/streams", response_model=list[StreamOut])
def get_streams(
    session: SessionDep,
    stream: str,
    start: date,
    end: date,
    region: str | None = Query(None, max_length=12, pattern=r"^\d{2,12}$"),
    _user: User = Depends(require_any("aggregate.view", "dashboard.view")),
) -> list[Any]:
    """A stream's observations in a period."""
    stmt = (
        select(StreamObservation)
        .where(
            StreamObservation.stream == stream,
            StreamObservation.day >= start,
            StreamObservation.day <= end,
        )
        .order_by(StreamObservation.day, StreamObservation.region_code, StreamObservation.place)
    )
    if region:
        stmt = stmt.where(StreamObservation.region_code.startswith(region))
    return list(session.scalars(stmt))
