"""The web application: JSON API under ``/api`` (OpenAPI at ``/api/docs``) and the pages."""

from __future__ import annotations

from fastapi import FastAPI

from yifang import __version__
from yifang.cases.api import router as cases_router
from yifang.catalog.api import router as catalog_router
from yifang.detect.api import router as detect_router


def create_app() -> FastAPI:
    """Build the application with every capability's routes."""
    app = FastAPI(
        title="Yifang 医防",
        version=__version__,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.include_router(catalog_router, prefix="/api")
    app.include_router(cases_router, prefix="/api")
    app.include_router(detect_router, prefix="/api")

    @app.get("/api/health", tags=["system"])
    def health() -> dict[str, str]:
        """Liveness probe."""
        return {"status": "ok", "version": __version__}

    return app
