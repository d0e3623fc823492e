"""The agent's own errors, in a module without heavy imports (``collect`` must start fast)."""

from __future__ import annotations

from typing import Any, Dict, Optional


class IdentityError(Exception):
    """The identity cannot be used; the message says what to do."""


class TransportError(Exception):
    """The centre could not be reached or refused; ``retry`` says whether trying later may help."""

    def __init__(
        self, message: str, *, retry: bool, status: Optional[int] = None, body: Optional[Dict[str, Any]] = None
    ) -> None:
        super().__init__(message)
        self.retry = retry
        self.status = status
        self.body = body or {}
