"""A refused request: its HTTP status, a stable reason code and a sentence."""

from __future__ import annotations

from typing import Any, Dict, Optional


class RequestRefused(Exception):
    """The request is refused and nothing was stored."""

    def __init__(self, status: int, reason: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.detail: Dict[str, Any] = detail

    def body(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"error": self.reason, "message": self.message}
        out.update(self.detail)
        return out


def refuse(status: int, reason: str, message: str, hint: Optional[str] = None, **detail: Any) -> RequestRefused:
    if hint:
        detail["hint"] = hint
    return RequestRefused(status, reason, message, **detail)
