"""Endpoints the agents call: enrolment, reports, heartbeats.  All signed, all idempotent."""

from __future__ import annotations

import json
import time
from typing import Any, Dict, Optional

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from central import enrol as enrolment
from central import findings
from central.api.body import read_limited
from central.db.engine import read_tx, write_tx
from central.errors import RequestRefused, refuse
from central.ids import utcnow
from central.ingest import authenticate, check_signature, ingest_heartbeat, ingest_reports, require_signed
from central.service import Centre
from evidence.signing import SignatureError, verify

router = APIRouter(prefix="/api/v1", tags=["agents"])
AGENT_HEADER = "x-tillsyn-agent"
SIGNATURE_HEADER = "x-tillsyn-signature"


def _centre(request: Request) -> Centre:
    centre: Centre = request.app.state.centre
    return centre


def _precheck(centre: Centre, agent_id: Optional[str], signature: Optional[str], body: bytes) -> Optional[str]:
    """On SQLite (one writer at a time), refuse unknown or forged requests before taking the write
    lock, so a flood of them cannot hold up genuine reports.  PostgreSQL locks only the agent's row.
    Returns the public key the signature was checked with (not checked again under the lock).

    An agent's key never changes (a new key is a new enrolment), so known keys are kept in memory;
    revocation is checked under the lock, on the row itself."""
    if centre.engine.dialect.name != "sqlite":
        return None
    agent_id, signature = require_signed(agent_id, signature)
    key = centre.agent_keys.get(agent_id)
    if key is None:
        with read_tx(centre.engine) as conn:
            key = str(authenticate(conn, agent_id, signature, body)["public_key"])
        centre.agent_keys[agent_id] = key
        return key
    check_signature(key, body, signature)
    return key


def _count_refusal(centre: Centre, endpoint: str, err: RequestRefused) -> None:
    centre.metrics.rejected.labels(endpoint, err.reason).inc()


@router.post(
    "/enrol", summary="Enrol a node with a token; the request is signed with the node's new key", response_model=None
)
async def enrol(request: Request) -> Dict[str, Any]:
    centre = _centre(request)
    try:
        body = await read_limited(request, 64 * 1024)
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise refuse(400, "malformed", f"request body is not valid JSON: {err}") from err
        req = enrolment.parse_request(data)
        try:
            verify(req.public_key, body, request.headers.get(SIGNATURE_HEADER, ""))
        except SignatureError as err:
            raise refuse(401, "bad_signature", f"enrolment must be signed with the presented key: {err}") from err

        def work() -> Dict[str, Any]:
            now = utcnow()
            with write_tx(centre.engine) as conn:
                result = enrolment.enrol(conn, req, now)
                agent = enrolment.get_agent(conn, result["agent_id"])
                findings.ensure_all(conn, centre.policy.policy, agent, now)
            return result

        result = await run_in_threadpool(work)
    except RequestRefused as err:
        _count_refusal(centre, "enrol", err)
        raise
    result["heartbeat_interval_s"] = centre.config.heartbeat_interval_s
    return result


@router.post(
    "/reports",
    summary="Deliver a batch of signed reports (at-least-once; stored exactly once)",
    response_model=None,
)
async def reports(request: Request) -> Dict[str, Any]:
    centre = _centre(request)
    started = time.perf_counter()
    try:
        body = await read_limited(request, centre.config.limits.max_body_bytes)
        agent_id = request.headers.get(AGENT_HEADER)
        signature = request.headers.get(SIGNATURE_HEADER)

        def work() -> Dict[str, Any]:
            checked = _precheck(centre, agent_id, signature, body)
            with write_tx(centre.engine) as conn:
                agent = authenticate(conn, agent_id, signature, body, checked)
                return ingest_reports(conn, agent, body, centre.config.limits, utcnow()).body()

        result = await centre.offload(work)
    except RequestRefused as err:
        _count_refusal(centre, "reports", err)
        raise
    if result["stored"] and not centre.evaluate_soon():
        await centre.offload(centre.evaluate)
    centre.metrics.reports.inc(len(result["stored"]))
    centre.metrics.duplicates.inc(len(result["duplicates"]))
    centre.metrics.ingest_seconds.observe(time.perf_counter() - started)
    return result


@router.post("/heartbeat", summary="A signed heartbeat with the agent's health", response_model=None)
async def heartbeat(request: Request) -> Dict[str, Any]:
    centre = _centre(request)
    try:
        body = await read_limited(request, 64 * 1024)
        agent_id = request.headers.get(AGENT_HEADER)
        signature = request.headers.get(SIGNATURE_HEADER)

        def work() -> Dict[str, Any]:
            checked = _precheck(centre, agent_id, signature, body)
            with write_tx(centre.engine) as conn:
                agent = authenticate(conn, agent_id, signature, body, checked)
                return ingest_heartbeat(conn, agent, body, centre.config.limits, utcnow())

        result = await centre.offload(work)
    except RequestRefused as err:
        _count_refusal(centre, "heartbeat", err)
        raise
    centre.metrics.heartbeats.inc()
    return result
