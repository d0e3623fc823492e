"""Enrolment, the agents' first request (reports and heartbeats: central/ingest/endpoints.py).  Signed, idempotent."""

from __future__ import annotations

from typing import Any, Dict

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from central import enrolment
from central.api.refusals import refusals
from central.clock import utcnow
from central.db.engine import write_tx
from central.ingest.endpoints import SIGNATURE_HEADER
from central.ingest.request_body import read_limited
from central.judging import findings
from central.request_refused import RequestRefused, refuse
from central.runtime.service import Centre
from evidence.signing import SignatureError, verify
from evidence.wire import WireError, loads

router = APIRouter(prefix="/api/v1", tags=["agents"], responses=refusals(401, 403))


def _centre(request: Request) -> Centre:
    centre: Centre = request.app.state.centre
    return centre


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
            data = loads(body, "request body")
        except WireError as err:
            raise refuse(400, "malformed", str(err)) from err
        req = enrolment.parse_request(data)
        try:
            verify(req.public_key, body, request.headers.get(SIGNATURE_HEADER, ""))
        except SignatureError as err:
            raise refuse(401, "bad_signature", f"enrolment must be signed with the presented key: {err}") from err

        def work() -> Dict[str, Any]:
            now = utcnow()
            with write_tx(centre.engine) as conn:
                result = enrolment.enrol(conn, req, now, centre.config.default_tenant)
                agent = enrolment.get_agent(conn, result["agent_id"])
                findings.ensure_all(conn, centre.policy.policy, agent, now)
            return result

        result = await run_in_threadpool(work)
    except RequestRefused as err:
        _count_refusal(centre, "enrol", err)
        raise
    result["heartbeat_interval_s"] = centre.config.heartbeat_interval_s
    return result
