"""HTTP routes of the catalog capability, mounted under ``/api`` by ``yifang.web``.

Reading is open; adding or changing a disease or an organisation needs the
``admin.catalog`` permission and records the caller in the audit trail. A refused request
is answered with :class:`yifang.core.errors.ErrorBody` (``error``, ``message_zh``,
``message_en`` and ``fields``, each field with its own Chinese and English message) plus
``detail``, the English message, kept for older clients: 404 for an unknown key, 409 for a
clash, 422 for a broken rule or an unusable request.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from yifang.catalog import service
from yifang.catalog.codes import UnknownCodeListError, code_list, code_list_names
from yifang.catalog.schemas import (
    CatalogChange,
    CodeLabel,
    DiseaseClass,
    DiseaseCreate,
    DiseaseOut,
    DiseaseUpdate,
    OrganisationCreate,
    OrganisationOut,
    OrganisationUpdate,
    PopulationOut,
    RegionOut,
    field_errors,
)
from yifang.core.accounts import User
from yifang.core.auth import require
from yifang.core.db import SESSION
from yifang.core.errors import ERROR_RESPONSES, AppError


def _refusal(status_code: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(status_code=status_code, content={**body, "detail": body["message_en"]})


class CatalogRoute(APIRoute):
    """A route answering the catalog's errors and unusable request values with the bilingual
    error body, fields included (with ``detail`` besides)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except AppError as exc:
                return _refusal(exc.status, exc.as_dict())
            except RequestValidationError as exc:
                fields = field_errors(exc.errors())
                return _refusal(
                    422,
                    {
                        "error": "bad_request",
                        "message_zh": "请求有误，请检查以下字段",
                        "message_en": "; ".join(f.message_en for f in fields)
                        or "the request is not valid",
                        "fields": [f.model_dump() for f in fields],
                    },
                )

        return handle


router = APIRouter(tags=["catalog"], route_class=CatalogRoute, responses=ERROR_RESPONSES)

SessionDep = Annotated[Session, SESSION]


async def catalog_editor(user: User = Depends(require("admin.catalog"))) -> str:
    """The acting user of a catalog change: only administrators of the catalog may make one;
    their user name goes in the audit trail."""
    return user.username


ActorDep = Annotated[str, Depends(catalog_editor)]


def _changes(session: Session, entity_type: str, code: str) -> list[CatalogChange]:
    return [CatalogChange.model_validate(e) for e in service.history(session, entity_type, code)]


# --- diseases -------------------------------------------------------------------------------


@router.get("/diseases", response_model=list[DiseaseOut])
def list_diseases(
    session: SessionDep,
    disease_class: Annotated[
        DiseaseClass | None, Query(alias="class", description="A, B, C or other")
    ] = None,
    active: bool | None = None,
    parent: Annotated[str | None, Query(description="only the children of this disease")] = None,
    leaf: Annotated[bool, Query(description="only diseases a card may name")] = False,
) -> list[DiseaseOut]:
    """The disease catalogue, ordered by class then code."""
    rows = service.list_diseases(
        session, disease_class=disease_class, active=active, parent_code=parent, leaf_only=leaf
    )
    return service.diseases_out(session, rows)


@router.get("/diseases/{code}", response_model=DiseaseOut)
def get_disease(code: str, session: SessionDep) -> DiseaseOut:
    """One disease and its rules."""
    return service.disease_out(session, service.get_disease(session, code))


@router.post("/diseases", response_model=DiseaseOut, status_code=status.HTTP_201_CREATED)
def create_disease(data: DiseaseCreate, session: SessionDep, actor: ActorDep) -> DiseaseOut:
    """Add a disease (kept across reloads of the data files)."""
    disease = service.create_disease(session, data, actor)
    return service.disease_out(session, disease)


@router.patch("/diseases/{code}", response_model=DiseaseOut)
def update_disease(
    code: str, patch: DiseaseUpdate, session: SessionDep, actor: ActorDep
) -> DiseaseOut:
    """Change some settings of a disease (kept across reloads of the data files)."""
    disease = service.update_disease(session, code, patch, actor)
    return service.disease_out(session, disease)


@router.post("/diseases/{code}/reset", response_model=DiseaseOut)
def reset_disease(code: str, session: SessionDep, actor: ActorDep) -> DiseaseOut:
    """Give a disease back to the data file's settings (undo the administrators' edits;
    later reloads update it again). 404 for a disease the file does not define."""
    disease = service.reset_disease(session, code, actor)
    return service.disease_out(session, disease)


@router.get(
    "/diseases/{code}/history",
    response_model=list[CatalogChange],
    dependencies=[Depends(catalog_editor)],
)
def disease_history(code: str, session: SessionDep) -> list[CatalogChange]:
    """Who changed the disease's settings, when, from what to what, and why (newest first)."""
    service.get_disease(session, code)
    return _changes(session, "disease", code)


# --- regions --------------------------------------------------------------------------------


@router.get("/regions", response_model=list[RegionOut])
def list_regions(
    session: SessionDep,
    parent: Annotated[
        str | None, Query(description="GB/T 2260 code; omitted: the provinces")
    ] = None,
) -> list[RegionOut]:
    """The direct children of a region (the provinces when no parent is given)."""
    rows = service.region_children(session, parent)
    return [RegionOut.model_validate(r) for r in rows]


@router.get("/regions/{code}", response_model=RegionOut)
def get_region(code: str, session: SessionDep) -> RegionOut:
    """One region; padded codes (``640500``, ``640521100000``) are accepted."""
    return RegionOut.model_validate(service.get_region(session, code))


# --- organisations --------------------------------------------------------------------------


@router.get("/organisations", response_model=list[OrganisationOut])
def list_organisations(
    session: SessionDep,
    region: Annotated[str | None, Query(description="region code; includes sub-regions")] = None,
    kind: str | None = None,
    active: bool | None = None,
    q: Annotated[
        str | None, Query(max_length=64, description="part of the name or the code")
    ] = None,
) -> list[OrganisationOut]:
    """Reporting organisations, optionally within a region, of one kind, active or not,
    matching a text."""
    rows = service.list_organisations(session, region=region, kind=kind, active=active, text=q)
    return [OrganisationOut.model_validate(o) for o in rows]


@router.post("/organisations", response_model=OrganisationOut, status_code=status.HTTP_201_CREATED)
def create_organisation(
    data: OrganisationCreate, session: SessionDep, actor: ActorDep
) -> OrganisationOut:
    """Add an organisation (kept across reloads of ``organisations.csv``)."""
    return OrganisationOut.model_validate(service.create_organisation(session, data, actor))


@router.get("/organisations/{code}", response_model=OrganisationOut)
def get_organisation(code: str, session: SessionDep) -> OrganisationOut:
    """One organisation."""
    return OrganisationOut.model_validate(service.get_organisation(session, code))


@router.patch("/organisations/{code}", response_model=OrganisationOut)
def update_organisation(
    code: str, patch: OrganisationUpdate, session: SessionDep, actor: ActorDep
) -> OrganisationOut:
    """Change some settings of an organisation (kept across reloads, even with refresh)."""
    organisation = service.update_organisation(session, code, patch, actor)
    return OrganisationOut.model_validate(organisation)


@router.post("/organisations/{code}/reset", response_model=OrganisationOut)
def reset_organisation(code: str, session: SessionDep, actor: ActorDep) -> OrganisationOut:
    """Give an organisation back to ``organisations.csv``. 404 if the file does not list it."""
    return OrganisationOut.model_validate(service.reset_organisation(session, code, actor))


@router.get(
    "/organisations/{code}/history",
    response_model=list[CatalogChange],
    dependencies=[Depends(catalog_editor)],
)
def organisation_history(code: str, session: SessionDep) -> list[CatalogChange]:
    """Who changed the organisation, when, from what to what, and why (newest first)."""
    service.get_organisation(session, code)
    return _changes(session, "organisation", code)


# --- populations ----------------------------------------------------------------------------


@router.get("/populations", response_model=PopulationOut)
def get_population(
    session: SessionDep,
    region: Annotated[str, Query(description="region code")],
    year: Annotated[int, Query(ge=1900, le=2100)],
) -> PopulationOut:
    """Resident population of a region in a year, with sex × age bands where known."""
    return service.population(session, region, year)


# --- code lists -----------------------------------------------------------------------------


@router.get("/codes", response_model=list[str])
def list_code_lists() -> list[str]:
    """The names of the card's code lists."""
    return code_list_names()


@router.get("/codes/{name}", response_model=list[CodeLabel])
def get_code_list(name: str) -> list[CodeLabel]:
    """One code list with Chinese and English labels, in the card's order."""
    try:
        entries = code_list(name)
    except UnknownCodeListError as exc:
        raise service.NotFoundError(f"没有代码表 {name}", str(exc.args[0])) from None
    return [
        CodeLabel(code=code, zh=label.zh, en=label.en, attributes=dict(label.attributes))
        for code, label in entries.items()
    ]
