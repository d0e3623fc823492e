"""The dashboard: server-rendered pages for people (fleet, nodes, controls, incidents, waivers, audit)."""

from __future__ import annotations

from fastapi import APIRouter

from central.web import admin, alerting, controls, fleet, login

router = APIRouter(include_in_schema=False)
for part in (login, fleet, controls, alerting, admin):
    router.include_router(part.router)

__all__ = ["router"]
