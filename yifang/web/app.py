"""The web application: JSON API under ``/api`` (OpenAPI at ``/api/docs``) and the pages.

Authentication is installed here once for every capability: the CSRF middleware guards all
state-changing requests, and the cases API's caller/scope dependency is replaced by the
logged-in user's (:func:`install_auth`), so jurisdiction is decided by
:func:`yifang.core.auth.scope_for` everywhere.

Values the database cannot hold (an id past the integer column's range, a text longer than
its column) are answered 422 for every route at once (:func:`value_out_of_range`), so no
route needs its own bounds to avoid a 500.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError
from starlette.middleware.gzip import GZipMiddleware

from yifang import __version__
from yifang.cases.api import router as cases_router
from yifang.catalog.api import router as catalog_router
from yifang.core.accounts import User
from yifang.core.auth import CSRFMiddleware
from yifang.core.db import session_scope
from yifang.detect.api import router as detect_router
from yifang.hospital.api import router as hospital_router
from yifang.respond.api import router as respond_router
from yifang.web.admin_pages import router as admin_pages_router
from yifang.web.auth_api import router as auth_router
from yifang.web.dashboard_api import router as web_api_router
from yifang.web.i18n import pick_language, translate
from yifang.web.pages import login_redirect
from yifang.web.pages import router as pages_router
from yifang.web.render import STATIC_DIR, LoginRequiredError, PageForbiddenError, render
from yifang.web.respond_pages import router as respond_pages_router

log = logging.getLogger(__name__)


def value_out_of_range(request: Request, exc: Exception) -> JSONResponse:
    """422 for a request value the database refused as out of range or too long.

    SQLite's driver raises ``OverflowError`` for integers past 64 bits; PostgreSQL refuses
    integers past the column's 32 or 64 bits and over-long texts (``DataError``). Such a
    value can match no row and is the client's mistake, not the server's.
    """
    log.info("value out of range in %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        status_code=422,
        content={
            "detail": "a value in the request is out of range (number too large or text too long)",
            "code": "out_of_range",
        },
    )


def create_app() -> FastAPI:
    """Build the application with every capability's routes."""
    app = FastAPI(
        title="Yifang 医防",
        version=__version__,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.include_router(auth_router, prefix="/api")
    app.include_router(catalog_router, prefix="/api")
    app.include_router(cases_router, prefix="/api")
    app.include_router(detect_router, prefix="/api")
    app.include_router(hospital_router, prefix="/api")
    app.include_router(respond_router, prefix="/api")
    app.include_router(web_api_router, prefix="/api")
    app.include_router(pages_router)
    app.include_router(respond_pages_router)
    app.include_router(admin_pages_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(CSRFMiddleware)
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=6)

    @app.get("/api/health", tags=["system"])
    def health() -> dict[str, str]:
        """Liveness probe."""
        return {"status": "ok", "version": __version__}

    app.add_exception_handler(OverflowError, value_out_of_range)
    app.add_exception_handler(DataError, value_out_of_range)

    @app.exception_handler(LoginRequiredError)
    def _login_required(request: Request, _exc: LoginRequiredError) -> Response:
        return login_redirect(request)

    @app.exception_handler(PageForbiddenError)
    def _forbidden(request: Request, exc: PageForbiddenError) -> Response:
        with session_scope() as session:
            user = session.get(User, exc.user_id)
            lang = pick_language(request, user.language if user else None)
            return render(
                request,
                "error.html",
                {
                    "title": translate("error.forbidden_title", lang),
                    "message": translate("error.forbidden", lang, permission=exc.permission),
                },
                user=user,
                status_code=403,
            )

    return app
