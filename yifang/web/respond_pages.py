"""The response pages: verification queue, events with their timeline, task board,
consultations and contacts. Each page is a server-rendered shell; its script fetches the
data from the response API under ``/api``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
