"""HTTP routes of the cases capability, mounted under ``/api`` by ``yifang.web``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["cases"])
