"""HTTP routes of the catalog capability, mounted under ``/api`` by ``yifang.web``.

Reading is open; changing a disease records the caller (header ``X-Yifang-User``, default
``admin`` until accounts arrive) in the audit trail. Errors are JSON ``{"detail": "..."}``
with 404 for an unknown key, 409 for a clash and 422 for a broken rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from sqlalchemy.orm import Session

from yifang.catalog import service
from yifang.catalog.codes import UnknownCodeListError, code_list, code_list_names
from yifang.catalog.schemas import (
    CodeLabel,
    DiseaseClass,
    DiseaseCreate,
    DiseaseOut,
    DiseaseUpdate,
    OrganisationOut,
    PopulationOut,
    RegionOut,
)
from yifang.core.accounts import User
from yifang.core.auth import require
from yifang.core.db import get_session

router = APIRouter(tags=["catalog"])

SessionDep = Annotated[Session, Depends(get_session)]


def catalog_editor(user: User = Depends(require("admin.catalog"))) -> str:
    """The acting user of a catalog change: only administrators of the catalog may make one;
    their user name goes in the audit trail."""
    return user.username


ActorDep = Annotated[str, Depends(catalog_editor)]


@contextmanager
def _http_errors() -> Iterator[None]:
    """Turn the catalog's errors into HTTP errors with the same message."""
    try:
        yield
    except service.NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except service.ConflictError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except service.InvalidError as exc:
        raise HTTPException(422, str(exc)) from None


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
    with _http_errors():
        return service.disease_out(session, service.get_disease(session, code))


@router.post("/diseases", response_model=DiseaseOut, status_code=status.HTTP_201_CREATED)
def create_disease(data: DiseaseCreate, session: SessionDep, actor: ActorDep) -> DiseaseOut:
    """Add a disease (kept across reloads of the data files)."""
    with _http_errors():
        disease = service.create_disease(session, data, actor)
        return service.disease_out(session, disease)


@router.patch("/diseases/{code}", response_model=DiseaseOut)
def update_disease(
    code: str, patch: DiseaseUpdate, session: SessionDep, actor: ActorDep
) -> DiseaseOut:
    """Change some settings of a disease (kept across reloads of the data files)."""
    with _http_errors():
        disease = service.update_disease(session, code, patch, actor)
        return service.disease_out(session, disease)


# --- regions --------------------------------------------------------------------------------


@router.get("/regions", response_model=list[RegionOut])
def list_regions(
    session: SessionDep,
    parent: Annotated[
        str | None, Query(description="GB/T 2260 code; omitted: the provinces")
    ] = None,
) -> list[RegionOut]:
    """The direct children of a region (the provinces when no parent is given)."""
    with _http_errors():
        rows = service.region_children(session, parent)
    return [RegionOut.model_validate(r) for r in rows]


@router.get("/regions/{code}", response_model=RegionOut)
def get_region(code: str, session: SessionDep) -> RegionOut:
    """One region; padded codes (``640500``, ``640521100000``) are accepted."""
    with _http_errors():
        return RegionOut.model_validate(service.get_region(session, code))


# --- organisations --------------------------------------------------------------------------


@router.get("/organisations", response_model=list[OrganisationOut])
def list_organisations(
    session: SessionDep,
    region: Annotated[str | None, Query(description="region code; includes sub-regions")] = None,
    kind: str | None = None,
) -> list[OrganisationOut]:
    """Reporting organisations, optionally within a region and of one kind."""
    with _http_errors():
        rows = service.list_organisations(session, region=region, kind=kind)
    return [OrganisationOut.model_validate(o) for o in rows]


@router.get("/organisations/{code}", response_model=OrganisationOut)
def get_organisation(code: str, session: SessionDep) -> OrganisationOut:
    """One organisation."""
    with _http_errors():
        return OrganisationOut.model_validate(service.get_organisation(session, code))


# --- populations ----------------------------------------------------------------------------


@router.get("/populations", response_model=PopulationOut)
def get_population(
    session: SessionDep,
    region: Annotated[str, Query(description="region code")],
    year: Annotated[int, Query(ge=1900, le=2100)],
) -> PopulationOut:
    """Resident population of a region in a year, with sex × age bands where known."""
    with _http_errors():
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
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc.args[0])) from None
    return [
        CodeLabel(code=code, zh=label.zh, en=label.en, attributes=dict(label.attributes))
        for code, label in entries.items()
    ]
