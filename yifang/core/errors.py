"""Refused requests, in Chinese and English, the same way in every capability.

A capability's service raises an :class:`AppError` subclass (its own base, e.g.
``CardError``, with ``status`` and a stable ``code``); routes built with
:class:`ErrorRoute` answer it with the JSON body :class:`ErrorBody`::

    {"error": "stale_version", "message_zh": "…", "message_en": "…",
     "fields": [{"field": "version", "code": "version.stale_version", …}]}

and answer unusable request parameters (FastAPI's validation errors) with the same shape
and status 422, so a client reads every refusal one way and bad input never becomes a 500.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ERROR_RESPONSES",
    "AppError",
    "ErrorBody",
    "ErrorRoute",
    "FieldError",
    "error_response",
    "request_error_body",
]


class FieldError(BaseModel):
    """One rule a request breaks: which field, a stable code, and what to do, in zh and en."""

    model_config = ConfigDict(frozen=True)

    field: str = Field(description="Field (column name) the problem is reported on.")
    code: str = Field(description="Stable error code, e.g. 'id_number.checksum'.")
    message_zh: str
    message_en: str


class ErrorBody(BaseModel):
    """The body of every refused request."""

    error: str = Field(description="Stable code, e.g. validation_failed, stale_version.")
    message_zh: str
    message_en: str
    fields: list[FieldError] = Field(default_factory=list)


class AppError(Exception):
    """A refused request: ``code`` is stable, ``status`` the HTTP status.

    ``fields`` lists the fields at fault; ``field`` is the short form for one field whose
    message is the error's own."""

    status: int = 400
    code: str = "error"

    def __init__(
        self,
        message_zh: str,
        message_en: str,
        *,
        fields: Sequence[FieldError] = (),
        field: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message_en)
        self.message_zh = message_zh
        self.message_en = message_en
        self.fields = list(fields)
        self.field = field
        if code is not None:
            self.code = code

    def field_errors(self) -> list[FieldError]:
        """Every field at fault, the one named by ``field`` first."""
        named = []
        if self.field:
            named.append(
                FieldError(
                    field=self.field,
                    code=f"{self.field}.{self.code}",
                    message_zh=self.message_zh,
                    message_en=self.message_en,
                )
            )
        return named + self.fields

    def as_dict(self) -> dict[str, Any]:
        """The JSON error body (see :class:`ErrorBody`)."""
        return {
            "error": self.code,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
            "fields": [f.model_dump() for f in self.field_errors()],
        }


def error_response(exc: AppError) -> JSONResponse:
    """The answer to a refused request."""
    return JSONResponse(status_code=exc.status, content=exc.as_dict())


#: Request parts FastAPI prefixes to a parameter's location, left out of the field name.
_LOCATIONS = ("body", "query", "path", "header")


def request_error_body(exc: RequestValidationError) -> dict[str, Any]:
    """The error body for request parameters FastAPI could not accept, one entry per
    parameter (``limit``, ``body.items.0.code`` → ``items.0.code``)."""
    fields = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err.get("loc", ()) if p not in _LOCATIONS) or "request"
        fields.append(
            {
                "field": name,
                "code": f"{name}.{err.get('type', 'invalid')}",
                "message_zh": f"{name}:参数无效({err.get('msg', '')})",
                "message_en": f"{name}: {err.get('msg', 'invalid')}",
            }
        )
    return {
        "error": "bad_request",
        "message_zh": "请求参数有误",
        "message_en": "the request is not valid",
        "fields": fields,
    }


class ErrorRoute(APIRoute):
    """A route that answers :class:`AppError` and unusable parameters with
    :class:`ErrorBody` (use as ``APIRouter(route_class=ErrorRoute)``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except AppError as exc:
                return error_response(exc)
            except RequestValidationError as exc:
                return JSONResponse(status_code=422, content=request_error_body(exc))

        return handle


#: The refusals to document in OpenAPI for routes of an :class:`ErrorRoute` router.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (403, "Not allowed for the caller's role or jurisdiction"),
        (404, "No such record, or outside the caller's jurisdiction"),
        (409, "Stale version or a transition not allowed from the record's state"),
        (422, "Invalid content or request parameters, listed by field"),
    )
}
