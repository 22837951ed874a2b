"""The administration pages beyond accounts: disease settings, organisations and the
early-warning algorithms' settings. Each page is a server-rendered shell; its script calls
the capabilities' routes under ``/api``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
