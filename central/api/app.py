"""The FastAPI application of one centre process."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from central import web
from central.api import agents, alerting, export, read_routes, session
from central.api.edge import Edge
from central.api.refusals import EVERY_REQUEST, refusals
from central.db.engine import read_tx
from central.ingest.endpoints import CentreApp
from central.judging.evaluation import backlog as evaluation_backlog
from central.request_refused import RequestRefused
from central.runtime.health import IN_GENERAL
from central.runtime.service import Centre
from central.web.common import Forbidden, forbidden_page


def create_app(centre: Centre, *, duties: bool = True) -> CentreApp:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if duties:
            centre.start_duties()
        yield
        centre.stop()

    app = CentreApp(
        title="Tillsyn centre",
        version="0.1.0",
        lifespan=lifespan,
        description="Receives signed evidence from Tillsyn agents and evaluates the policy.",
        responses=EVERY_REQUEST,
    )
    app.state.centre = centre
    app.serve_agents(centre)
    edge = Edge(centre.config)
    app.edge = edge

    @app.exception_handler(RequestRefused)
    async def refused(_request: Request, err: RequestRefused) -> JSONResponse:
        return JSONResponse(err.body(), status_code=err.status)

    app.add_exception_handler(Forbidden, forbidden_page)  # the dashboard's 403 page

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request"
        return JSONResponse({"error": "malformed", "message": message}, status_code=422)

    @app.get("/livez", tags=["ops"], summary="Liveness of this process only (no database access)")
    async def livez() -> Dict[str, str]:
        return {"status": "ok"}

    @app.get("/healthz", tags=["ops"], summary="Database reachability and the alerting pipeline's health")
    async def healthz(request: Request) -> JSONResponse:
        client = request.client.host if request.client else None
        named = edge.may_read_ops(client, request.headers.get("authorization", ""))

        def probe() -> Dict[str, Any]:
            with read_tx(centre.engine) as conn:
                conn.execute(text("SELECT 1"))
                waiting = evaluation_backlog(conn)
            _pipeline, problems = centre.pipeline_health()
            return {
                # degraded still answers 200: the centre receives evidence; it is the paging that suffers
                "status": "degraded" if problems else "ok",
                # the reasons name the operator's channels and errors: for this machine and the metrics token
                "reasons": [p.reason if named else IN_GENERAL[p.check] for p in problems],
                "checks": sorted({p.check for p in problems}),
                "database": centre.engine.dialect.name,
                "policy_error": centre.policy.last_error,
                "evaluation_backlog": waiting,
            }

        try:
            body = await run_in_threadpool(probe)
        except Exception as err:  # noqa: BLE001  any database failure means unhealthy, said plainly
            return JSONResponse({"status": "unavailable", "error": f"database: {type(err).__name__}"}, 503)
        return JSONResponse(body)

    @app.get(
        "/metrics",
        tags=["ops"],
        summary="Prometheus metrics (from loopback, or with metrics.bearer_token_file's token)",
        response_class=PlainTextResponse,
        responses=refusals(401),
    )
    async def metrics() -> PlainTextResponse:
        data = await run_in_threadpool(generate_latest, centre.metrics.registry)
        return PlainTextResponse(data, media_type=CONTENT_TYPE_LATEST)

    app.include_router(agents.router)
    app.include_router(read_routes.router)
    app.include_router(alerting.router)
    app.include_router(session.router)
    app.include_router(export.router)
    app.include_router(web.router)
    return app
