"""The dashboard: server-rendered pages for people (fleet, nodes, controls, incidents, waivers, audit,
accounts and API keys)."""

from __future__ import annotations

from fastapi import APIRouter

from central.web import account, admin, alerting, controls, fleet, login, people

router = APIRouter(include_in_schema=False)
for part in (login, fleet, controls, alerting, admin, people, account):
    router.include_router(part.router)

__all__ = ["router"]
