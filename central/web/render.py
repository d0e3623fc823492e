"""Jinja2 rendering for the dashboard: autoescape always on, strict security headers on every answer."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Optional

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from central.auth.principal import Principal

HERE = Path(__file__).resolve().parent
SECURITY_HEADERS = {
    # No inline script or style, nothing from elsewhere: markup smuggled in by a node cannot run.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def pretty(value: Any) -> str:
    """Observed values as indented JSON (escaped by the template like any other text)."""
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def when(value: Optional[datetime]) -> str:
    if value is None:
        return "never"
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(value: Optional[datetime]) -> str:
    if value is None:
        return "never"
    seconds = int((datetime.now(timezone.utc) - value).total_seconds())
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pretty=pretty, when=when, ago=ago)
    return env


def secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def page(
    request: Request, template: str, person: Optional[Principal], status: int = 200, **context: Any
) -> HTMLResponse:
    values: Dict[str, Any] = {"person": person, "path": request.url.path, **context}
    html = environment().get_template(template).render(values)
    response = HTMLResponse(html, status_code=status)
    secure(response)
    return response


def redirect(location: str) -> Response:
    """After a form: see the result with GET (303), never resubmit on reload."""
    return secure(RedirectResponse(location, status_code=303))
