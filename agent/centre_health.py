"""The centre's own health, as ``tillsyn-agent status`` shows it: what the centre's ``/healthz`` says
(the same state its dashboard shows), in one line, or why it could not be asked."""

from __future__ import annotations

from typing import Any, Optional

import requests

TIMEOUT_S = 5.0


def describe(status_code: int, body: Any) -> str:
    """One line from ``/healthz``'s answer (pure)."""
    if not isinstance(body, dict):
        return f"unknown: /healthz answered {status_code} without a JSON object"
    status = str(body.get("status", "unknown"))
    if status == "ok":
        return "ok"
    if status == "degraded":
        reasons = [str(r) for r in body.get("reasons") or []]
        return "degraded: " + ("; ".join(reasons) if reasons else "no reason given")
    if status == "unavailable":
        return f"unavailable: {body.get('error', 'no reason given')}"
    return f"unknown: /healthz answered {status_code} with status {status!r}"


def ask(server: str, ca_file: Optional[str], timeout: float = TIMEOUT_S) -> str:
    """``GET server/healthz`` with the enrolment's CA pinning; never raises."""
    try:
        answer = requests.get(server.rstrip("/") + "/healthz", timeout=timeout, verify=ca_file if ca_file else True)
    except requests.RequestException as err:
        return f"unknown: the centre could not be asked ({type(err).__name__}: {err})"
    try:
        body = answer.json()
    except ValueError:
        body = None
    return describe(answer.status_code, body)
