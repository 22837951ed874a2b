"""HTTP routes of the catalog capability, mounted under ``/api`` by ``yifang.web``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["catalog"])
