"""The centre under test, on SQLite and on PostgreSQL alike.

Every test that takes ``centre`` runs twice: once on a fresh SQLite file, once on
a fresh database in the PostgreSQL server at 127.0.0.1:5432 (set
``TILLSYN_TEST_PG`` to another URL; under CI a missing server is a failure).
Nodes are real: their own Ed25519 keys, real signed reports over HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from central.api.app import create_app
from central.config import CentralConfig, from_mapping
from central.db.engine import write_tx
from central.enrolment import create_token
from central.runtime.service import Centre, open_centre
from evidence.model import Evidence, Status
from evidence.signing import b64, new_private_key, public_key_text, sign
from evidence.wire import Heartbeat, Report, canonical
from tests.conftest import in_ci

PG_ADMIN_URL = os.environ.get("TILLSYN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001  any failure means: no server to test against
        return False


@pytest.fixture(scope="session")
def pg_server() -> str:
    if not _pg_available():
        message = f"PostgreSQL not reachable at {PG_ADMIN_URL}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return PG_ADMIN_URL


def _fresh_pg_database(admin_url: str) -> str:
    name = f"tillsyn_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def _drop_pg_database(admin_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    engine = create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'central.db'}"
        return
    admin = request.getfixturevalue("pg_server")
    url = _fresh_pg_database(admin)
    try:
        yield url
    finally:
        _drop_pg_database(admin, url)


def make_config(tmp_path: Path, database_url: str, **overrides: Any) -> CentralConfig:
    data: Dict[str, Any] = {"state_dir": str(tmp_path / "state"), "database_url": database_url}
    data.update(overrides)
    return from_mapping(data, "test", {})


@pytest.fixture
def centre(tmp_path: Path, database_url: str) -> Iterator[Centre]:
    c = open_centre(make_config(tmp_path, database_url))
    yield c
    c.stop()


@pytest.fixture
def client(centre: Centre) -> Iterator[TestClient]:
    with TestClient(create_app(centre, duties=False)) as test_client:
        yield test_client


def new_token(centre: Centre, **kwargs: Any) -> str:
    kwargs.setdefault("ttl", timedelta(hours=1))
    with write_tx(centre.engine) as conn:
        return create_token(conn, datetime.now(timezone.utc), **kwargs).secret


def evidence_record(
    collector: str = "ports",
    observed: Optional[Dict[str, Any]] = None,
    status: Status = Status.COMPLETE,
    at: Optional[datetime] = None,
) -> Evidence:
    return Evidence(
        collector=collector,
        collector_version="1",
        controls=("M07",),
        collected_at=at or datetime.now(timezone.utc),
        duration_ms=1.0,
        status=status,
        observed=observed if observed is not None else {"sockets": []},
    )


@dataclass
class Node:
    """A real node for tests: its own key, enrolment over HTTP, signed reports and heartbeats."""

    client: TestClient
    key: Ed25519PrivateKey = field(default_factory=new_private_key)
    machine_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    hostname: str = "web1.example.net"
    agent_id: str = ""
    seq: int = 0
    hb_seq: int = 0

    @property
    def public_key(self) -> str:
        return public_key_text(self.key)

    def enrol(self, token: str, expect: int = 200) -> Dict[str, Any]:
        body = json.dumps(
            {
                "token": token,
                "hostname": self.hostname,
                "machine_id": self.machine_id,
                "public_key": self.public_key,
                "agent_version": "test",
            }
        ).encode()
        response = self.client.post(
            "/api/v1/enrol", content=body, headers={"X-Tillsyn-Signature": sign(self.key, body)}
        )
        assert response.status_code == expect, response.text
        data: Dict[str, Any] = response.json()
        if expect == 200:
            self.agent_id = data["agent_id"]
        return data

    def report(
        self, *records: Evidence, seq: Optional[int] = None, collected_at: Optional[datetime] = None
    ) -> Dict[str, Any]:
        """A signed report envelope {report_id, body, signature}."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        report = Report(
            self.agent_id,
            uuid.uuid4().hex,
            seq,
            collected_at or datetime.now(timezone.utc),
            "test",
            tuple(records or (evidence_record(),)),
        )
        body = canonical(report.to_dict())
        return {"report_id": report.report_id, "body": b64(body), "signature": sign(self.key, body)}

    def send(
        self,
        *envelopes: Dict[str, Any],
        key: Optional[Ed25519PrivateKey] = None,
        agent_id: Optional[str] = None,
        raw: Optional[bytes] = None,
    ) -> Any:
        body = (
            raw
            if raw is not None
            else json.dumps({"reports": [{"body": e["body"], "signature": e["signature"]} for e in envelopes]}).encode()
        )
        headers = {
            "X-Tillsyn-Agent": agent_id if agent_id is not None else self.agent_id,
            "X-Tillsyn-Signature": sign(key or self.key, body),
        }
        return self.client.post("/api/v1/reports", content=body, headers=headers)

    def heartbeat(self, seq: Optional[int] = None, sent_at: Optional[datetime] = None) -> Any:
        if seq is None:
            self.hb_seq += 1
            seq = self.hb_seq
        beat = Heartbeat(self.agent_id, seq, sent_at or datetime.now(timezone.utc), spool_depth=0)
        body = canonical(beat.to_dict())
        return self.client.post(
            "/api/v1/heartbeat",
            content=body,
            headers={"X-Tillsyn-Agent": self.agent_id, "X-Tillsyn-Signature": sign(self.key, body)},
        )


def decode(envelope: Dict[str, Any]) -> Dict[str, Any]:
    data: Dict[str, Any] = json.loads(base64.b64decode(envelope["body"]))
    return data


@pytest.fixture
def node(client: TestClient, centre: Centre) -> Node:
    n = Node(client)
    n.enrol(new_token(centre))
    return n


def api_key(centre: Centre) -> Dict[str, str]:
    from central.auth import apikeys

    with write_tx(centre.engine) as conn:
        _, secret = apikeys.create(conn, "tests", datetime.now(timezone.utc))
    return {"Authorization": f"Bearer {secret}"}


__all__ = ["Node", "api_key", "decode", "evidence_record", "make_config", "new_token"]


def snapshot(centre: Centre) -> Dict[str, Any]:
    """Every row of every table, in key order: "nothing changed" is ``snapshot(c) == before``."""
    from central.db.schema import metadata

    with centre.engine.connect() as conn:
        return {
            table.name: [tuple(row) for row in conn.execute(table.select().order_by(*table.primary_key.columns))]
            for table in metadata.sorted_tables
        }


def cli_env(tmp_path: Path, database_url: Optional[str], config_text: Optional[str] = None) -> Dict[str, str]:
    """Environment for ``tillsyn-central`` as a process: its own central.yaml, no inherited TILLSYN_*."""
    config = tmp_path / "central.yaml"
    if config_text is not None or not config.exists():
        config.write_text(config_text if config_text is not None else f"state_dir: {tmp_path / 'state'}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILLSYN_")}
    env["TILLSYN_CENTRAL_CONFIG"] = str(config)
    if database_url is not None:
        env["TILLSYN_DATABASE_URL"] = database_url
    return env


def run_cli(env: Dict[str, str], *argv: Any) -> Any:
    """Several ``tillsyn-central`` runs at once (each argv a list): their CompletedProcess, in order."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "central.cli", *args],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in argv
    ]
    done = []
    for proc, args in zip(procs, argv):
        out, err = proc.communicate(timeout=60)
        done.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    return done


def count_hand_overs(loop: asyncio.AbstractEventLoop) -> List[int]:
    """From now on, one entry per call a thread makes to wake ``loop`` (``call_soon_threadsafe``)."""
    calls: List[int] = []
    real = loop.call_soon_threadsafe

    def counted(callback: Any, *args: Any) -> Any:
        calls.append(1)
        return real(callback, *args)

    loop.call_soon_threadsafe = counted  # type: ignore[method-assign,assignment]
    return calls


class EvaluatorNotYet:
    """An evaluator thread that has not got to the queue yet (it usually takes 0.1 s; longer in a backlog)."""

    def wake(self) -> None:
        pass


def stored_not_judged(centre: Centre, node: Node, *envelopes: Dict[str, Any]) -> List[str]:
    """Reports sent the production way (the HTTP path, group commit, ledger, queue) while the
    evaluator has not got to the queue yet: acknowledged, not judged.  The ids stored."""
    before = centre.evaluator
    centre.evaluator = EvaluatorNotYet()  # type: ignore[assignment]  # only wake() is called
    try:
        answer = node.send(*envelopes)
    finally:
        centre.evaluator = before
    assert answer.status_code == 200, answer.text
    return list(answer.json()["stored"])
