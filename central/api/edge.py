"""What every request other than a report or heartbeat passes before routing, authentication or parsing.

- A query parameter or a path holding a NUL character is refused ``422 malformed``, a body
  holding one (JSON or form) ``400 malformed`` as reports are (SQLite reads a search for ``%00``
  as a match for everything; PostgreSQL cannot take NUL in text at all, and answered 500).
- ``/metrics`` (fleet-wide counts across tenants) answers loopback and the bearer token of
  ``metrics.bearer_token_file`` only (docs/operations.md).
- The body is read here, up to ``limits.max_api_body_bytes``: a body that says or turns out to be
  larger is refused ``413 too_large`` as soon as the limit is passed, and the connection closed,
  so memory never grows with what a client sends.  A JSON body nested deeper than
  :data:`evidence.wire.MAX_DEPTH` is refused ``400 malformed`` (docs/protocol.md); the route then
  gets the body already read.

Reports and heartbeats have their own limits on the agents' path (central/ingest/endpoints.py).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, MutableMapping, Optional
from urllib.parse import parse_qsl

from central.config import CentralConfig, ConfigError
from central.ingest.receive import holds_nul
from central.ingest.request_body import read_body
from central.request_refused import RequestRefused, refuse
from evidence.wire import MAX_DEPTH, nested_too_deep

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def metrics_token(config: CentralConfig) -> Optional[str]:
    """The token of ``metrics.bearer_token_file`` (None: none configured); a file that cannot be read stops start-up."""
    path = config.metrics.bearer_token_file
    if path is None:
        return None
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"metrics.bearer_token_file: cannot read {path}: {err}") from err
    if len(token) < 16:
        raise ConfigError(f"metrics.bearer_token_file: the token in {path} is shorter than 16 characters")
    return token


def is_loopback(host: Optional[str]) -> bool:
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


class Edge:
    """The checks above, in front of ``app``."""

    def __init__(self, config: CentralConfig) -> None:
        self.body_limit = config.limits.max_api_body_bytes
        self.token = metrics_token(config)
        self.loopback = config.metrics.loopback

    async def __call__(self, scope: Scope, receive: Receive, send: Send, app: App) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        try:
            _no_nul_in_query(scope)
            _no_nul_in_path(scope)
            if scope["path"] == "/metrics":
                self._may_read_metrics(scope, headers)
            body = await read_body(headers.get("content-length"), _chunks(receive), self.body_limit)
            _not_nested_too_deep(headers, body)
            _no_nul_in_body(headers, body)
        except _Gone:
            return
        except RequestRefused as err:
            await _answer(send, err)
            return
        await app(scope, _replay(body, receive), send)

    def may_read_ops(self, client: Optional[str], authorization: str) -> bool:
        """Loopback (unless ``metrics.loopback`` is false) or the metrics bearer token: who may read
        fleet-wide figures (``/metrics``) and ``/healthz``'s reasons, which name the operator's channels."""
        if self.loopback and is_loopback(client):
            return True
        return self.token is not None and hmac.compare_digest(authorization.encode(), f"Bearer {self.token}".encode())

    def _may_read_metrics(self, scope: Scope, headers: Dict[str, str]) -> None:
        client = scope.get("client")
        if self.may_read_ops(client[0] if client else None, headers.get("authorization", "")):
            return
        how = "the bearer token of metrics.bearer_token_file" if self.token else "a request from this machine"
        raise refuse(401, "unauthenticated", f"/metrics needs {how} (central.yaml, docs/operations.md)")


def _no_nul_in_query(scope: Scope) -> None:
    query = scope.get("query_string", b"")
    if b"%00" not in query and b"\x00" not in query:
        return
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            shown = name.replace("\x00", "\\u0000")[:64]
            raise refuse(422, "malformed", f"query parameter {shown}: contains a NUL character")


def _no_nul_in_path(scope: Scope) -> None:
    path = scope.get("path", "")
    if "\x00" in path:
        raise refuse(422, "malformed", f"the path {path.replace(chr(0), '%00')[:160]} contains a NUL character")


def _no_nul_in_body(headers: Dict[str, str], body: bytes) -> None:
    """NUL escaped in a JSON string, or in a form field (the centre takes no file uploads)."""
    kind = _content_type(headers)
    if not body:
        return
    if kind == "application/x-www-form-urlencoded":
        found = (b"%00" in body or b"\x00" in body) and any(
            "\x00" in name or "\x00" in value
            for name, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True)
        )
    elif kind == "multipart/form-data":
        found = b"\x00" in body
    else:
        found = (not kind or kind.endswith("json")) and holds_nul(body)
    if found:
        where = _nul_at(body) if kind != "multipart/form-data" else None
        said = f"{where} contains" if where else "a string contains"
        raise refuse(400, "malformed", f"request body: {said} a NUL character (\\u0000)")


def _nul_at(body: bytes) -> Optional[str]:
    """Where in a JSON or form body the first NUL is, as a person names it (``agent_version``,
    ``evidence[2].observed``); None when that cannot be told (a body that is not valid JSON, say)."""
    try:
        value: Any = json.loads(body)
    except (ValueError, RecursionError):
        try:
            value = dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True))
        except ValueError:
            return None
    try:
        return _nul_in(value, "")
    except RecursionError:  # nested deeper than the depth check lets through: said without a place
        return None


def _nul_in(value: Any, path: str) -> Optional[str]:
    if isinstance(value, str):
        return (path or "the body") if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            return f"{path + '.' if path else ''}a key"
        here = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else str(key)
        found = _nul_in(item, here)
        if found:
            return found[:120]
    return None


def _content_type(headers: Dict[str, str]) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


def _not_nested_too_deep(headers: Dict[str, str], body: bytes) -> None:
    """A JSON body (or one without a type, which FastAPI reads as JSON) nested beyond MAX_DEPTH is refused."""
    kind = _content_type(headers)
    if not body or (kind and not kind.endswith("json")) or (b"[" not in body and b"{" not in body):
        return
    try:
        data = json.loads(body)
    except RecursionError:
        data = None
    except ValueError:
        return  # not JSON at all: the route says so in its own words
    else:
        if not nested_too_deep(data):
            return
    raise refuse(400, "malformed", f"request body: arrays and objects nested more than {MAX_DEPTH} levels deep")


class _Gone(Exception):
    """The client went away before its body arrived."""


async def _chunks(receive: Receive) -> Any:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Gone
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then the server's own messages (a disconnect)."""
    pending: List[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def again() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return again


async def _answer(send: Send, err: RequestRefused) -> None:
    data = json.dumps(err.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if err.status == 413:
        headers.append((b"connection", b"close"))  # the rest of the body is not read: end the connection
    if err.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="tillsyn metrics"'))
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
