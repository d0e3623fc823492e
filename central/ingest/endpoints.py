"""The agents' two frequent requests, reports and heartbeats, served beside the web framework.

Every node sends a heartbeat a minute and a report every few minutes, so these two
requests are nearly all of a centre's traffic.  Through FastAPI's middleware, routing
and response handling an empty answer costs more than half of what verifying and
storing a heartbeat does; here the application answers them itself, in plain ASGI
(:class:`CentreApp`), and everything else goes to FastAPI as before.  Same checks,
same answers: ``{"error": reason, "message": ...}`` with the status of the refusal.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    List,
    Mapping,
    MutableMapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
)

import orjson
from fastapi import FastAPI
from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from central.clock import utcnow
from central.db.engine import read_tx
from central.ingest.receive import (
    BatchResult,
    CheckedBeat,
    authenticate,
    parse_signed,
    prepare_heartbeat,
    report_signature_refused,
    request_signature_refused,
    require_signed,
    store_heartbeats,
    store_reports,
    unpack_reports,
)
from central.ingest.request_body import read_body
from central.ingest.signature_thread import Failure, Signed, first_failure
from central.request_refused import RequestRefused, refuse
from central.runtime.service import Centre

log = logging.getLogger("tillsyn.central.api")
AGENT_HEADER = "x-tillsyn-agent"
SIGNATURE_HEADER = "x-tillsyn-signature"
HEARTBEAT_LIMIT = 64 * 1024
INLINE_BYTES = 64 * 1024
"""Bodies up to this size (a heartbeat, a report or a few) are decoded and parsed on the event loop,
which costs less than a hand-off to a thread; larger batches go to a thread so that one agent
emptying its spool does not hold every other request up."""
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Headers = Mapping[str, str]
T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


async def verified(centre: Centre, headers: Headers, body: bytes) -> Tuple[str, str, str]:
    """(agent id, signature, the agent's public key), once the request signature over ``body`` is
    checked with that key: before the write lock, so a flood of unknown or forged requests cannot
    hold up genuine ones.

    An agent's key never changes (a new key is a new enrolment), so known keys are kept in memory
    and the signature checked with them in the signature thread (central/ingest/signature_thread.py); revocation
    is checked under the write lock, on the row."""
    agent_id, signature = require_signed(headers.get(AGENT_HEADER), headers.get(SIGNATURE_HEADER))
    key = centre.agent_keys.get(agent_id)
    if key is not None:
        failed = await _checked(centre, body, key, [(body, signature)])
        if failed is not None:
            raise request_signature_refused(failed[1])
        return agent_id, signature, key

    def lookup() -> str:
        with read_tx(centre.engine) as conn:
            return str(authenticate(conn, agent_id, signature, body, lock=False)["public_key"])

    key = await centre.offload(lookup)
    centre.agent_keys[agent_id] = key
    return agent_id, signature, key


async def _checked(centre: Centre, body: bytes, key: str, signed: Sequence[Signed]) -> Optional[Failure]:
    """Check signatures in the signature thread; a batch over INLINE_BYTES in a worker thread instead,
    so that one agent emptying its spool does not hold up every heartbeat's check."""
    if len(body) <= INLINE_BYTES:
        return await centre.signatures().first_failure(key, signed)
    return await centre.offload(partial(first_failure, key, signed))


async def _sized(centre: Centre, body: bytes, work: Callable[[], T]) -> T:
    """``work()`` on the event loop for a body up to INLINE_BYTES, else in a worker thread."""
    if len(body) <= INLINE_BYTES:
        return work()
    return await centre.offload(work)


async def receive_reports(centre: Centre, headers: Headers, body: bytes) -> Dict[str, Any]:
    """Verify (the request, then each report's own signature) and parse before the write lock;
    store, chain and queue in the group writer's next transaction (in a savepoint when a later
    report of the batch may be refused after an earlier one was written)."""
    agent_id, signature, key = await verified(centre, headers, body)
    limits = centre.config.limits
    signed = await _sized(centre, body, partial(unpack_reports, body, limits))
    failed = await _checked(centre, body, key, [(item.raw, item.signature) for item in signed])
    if failed is not None:
        position, err = failed
        raise report_signature_refused(signed[position].index, err)
    prepared = await _sized(centre, body, partial(parse_signed, signed, agent_id))

    def work(conn: Connection) -> BatchResult:
        agent = authenticate(conn, agent_id, signature, body, key)
        stored = store_reports(conn, agent, prepared, limits, utcnow())
        centre.parsed.put(stored.parsed)  # before the commit: the evaluator takes them instead of parsing
        return stored

    # store_reports refuses a report before writing it: with one report nothing precedes a refusal
    batch = await centre.write(work, savepoint=len(prepared) > 1, agent=agent_id)
    result = batch.body()
    if result["stored"] and not centre.on_reports_stored():
        await centre.offload(centre.evaluate)
    centre.metrics.reports.inc(len(result["stored"]))
    centre.metrics.duplicates.inc(len(result["duplicates"]))
    return result


async def receive_heartbeat(centre: Centre, headers: Headers, body: bytes) -> Dict[str, Any]:
    """Verify and check before the write lock; recorded with the other heartbeats of the next transaction."""
    agent_id, _signature, key = await verified(centre, headers, body)
    beat = prepare_heartbeat(body, agent_id, centre.config.limits, utcnow())
    result: Dict[str, Any] = await centre.write_together(_store_heartbeats, CheckedBeat(beat, key), agent=agent_id)
    centre.metrics.heartbeats.inc()
    return result


def _store_heartbeats(conn: Connection, beats: List[Any]) -> List[Any]:
    return store_heartbeats(conn, beats, utcnow())


Handler = Callable[[Centre, Headers, bytes], Awaitable[Dict[str, Any]]]
Front = Callable[[Scope, Receive, Send, Callable[[Scope, Receive, Send], Awaitable[None]]], Awaitable[None]]


class CentreApp(FastAPI):
    """FastAPI, with ``POST /api/v1/reports`` and ``POST /api/v1/heartbeat`` answered first, directly."""

    agent_paths: Dict[str, Tuple[str, Handler, Callable[[], int]]] = {}
    agent_centre: Optional[Centre] = None
    edge: Optional[Front] = None
    """What every other request passes first (central/api/edge.py: body limits, /metrics access)."""

    def serve_agents(self, centre: Centre) -> None:
        self.agent_paths = {
            "/api/v1/reports": ("reports", receive_reports, lambda: centre.config.limits.max_body_bytes),
            "/api/v1/heartbeat": ("heartbeat", receive_heartbeat, lambda: HEARTBEAT_LIMIT),
        }
        self.agent_centre = centre

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            route = self.agent_paths.get(scope["path"])
            if route is not None:
                await self._agents(route, scope, receive, send)
                return
        if self.edge is None:
            await super().__call__(scope, receive, send)
        else:
            await self.edge(scope, receive, send, super().__call__)

    async def _agents(
        self, route: Tuple[str, Handler, Callable[[], int]], scope: Scope, receive: Receive, send: Send
    ) -> None:
        endpoint, handler, limit = route
        centre = self.agent_centre
        assert centre is not None
        started = time.perf_counter()
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        try:
            body = await read_body(headers.get("content-length"), _chunks(receive), limit())
            status, answer = 200, await handler(centre, headers, body)
        except ClientGone:
            return
        except RequestRefused as err:
            centre.metrics.rejected.labels(endpoint, err.reason).inc()
            status, answer = err.status, err.body()
        except OperationalError as err:  # the database away (restarting, unreachable): the agent sends again
            log.warning(
                "%s %s: the database cannot be reached (%s); answered 503", scope["method"], scope["path"], err.orig
            )
            message = "the centre cannot reach its database: send it again later (what was stored is acknowledged then)"
            status, answer = 503, refuse(503, "unavailable", message).body()
        except Exception:
            log.exception("%s %s failed", scope["method"], scope["path"])
            status, answer = 500, refuse(500, "internal", "the centre failed to handle the request").body()
        if endpoint == "reports" and status == 200:
            centre.metrics.ingest_seconds.observe(time.perf_counter() - started)
        data = orjson.dumps(answer)
        sent = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        if status == 413:
            sent.append((b"connection", b"close"))  # the rest of the body is not read: end the connection
        await send({"type": "http.response.start", "status": status, "headers": sent})
        await send({"type": "http.response.body", "body": data})


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return
