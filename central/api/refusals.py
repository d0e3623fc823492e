"""The refusals each part of the API can answer, for its OpenAPI document.

Every refusal has the same body, ``{"error": reason, "message": ...}`` (plus ``index``,
``retry_after_s`` or ``hint`` where they apply; central/request_refused.py), so clients and tools such
as schemathesis can tell a documented refusal from a fault."""

from __future__ import annotations

from typing import Any, Dict, Union

from pydantic import BaseModel, ConfigDict

_WHEN = {
    400: (
        "Malformed: the body is not what the operation takes"
        " (not JSON, nested too deep, a NUL character in a string, refused as it is)"
    ),
    401: "Not authenticated: no or a wrong key, session or signature",
    403: "Forbidden: authenticated, but not allowed this (role, tenant, CSRF token)",
    404: "Not found, or not visible to the caller",
    409: "Conflict with what is stored",
    413: "The body is over the limit (limits.max_api_body_bytes)",
    422: "A parameter, field or the path is out of range or of the wrong type, or holds a NUL character",
    429: "Too many failed logins from this address; retry_after_s says when to try again",
}


class Refusal(BaseModel):
    """Why a request was refused; nothing was changed."""

    model_config = ConfigDict(extra="allow")
    error: str
    message: str


def refusals(*statuses: int) -> Dict[Union[int, str], Dict[str, Any]]:
    """The ``responses`` entry of a route or router for these statuses."""
    return {status: {"model": Refusal, "description": _WHEN[status]} for status in statuses}


EVERY_REQUEST = refusals(400, 413, 422)
"""What the edge (central/api/edge.py) may answer to any request."""
