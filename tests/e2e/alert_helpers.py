"""Helpers for alerting end to end: a webhook receiver on a chosen port, signed nodes over real
HTTP, the ``alerting:`` section of central.yaml, and reads of the centre's database.

The receiver checks every request's ``X-Tillsyn-Signature`` (docs/alerting-channels.md) and keeps
what it accepted; it can be started on a port where nothing listened before, which is how "the
receiver comes back" is played.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import requests
import yaml
from sqlalchemy import create_engine, text

from central.db.report_bodies import Bodies
from tests.central.conftest import Node, evidence_record, new_token  # noqa: F401  (re-exported)
from tests.centre_process import CentreProcess, free_port

HOOK_KEY = "e2e-webhook-hmac-key"
PLAINTEXT_RULE = "ports-no-plaintext-remote"
TELNET = {
    "protocol": "tcp",
    "address": "0.0.0.0",
    "port": 23,
    "exposure": "all",
    "tags": ["plaintext_remote"],
    "services": ["telnet"],
    "process": {"name": "inetd"},
}


@dataclass
class Delivery:
    at: float  # time.monotonic() when it arrived
    event: str
    incident: Dict[str, Any]
    body: Dict[str, Any]


@dataclass
class Hook:
    """A webhook receiver on 127.0.0.1:``port``; ``start()``/``stop()`` as often as wanted."""

    port: int = field(default_factory=free_port)
    path: str = "/hook"
    deliveries: List[Delivery] = field(default_factory=list)
    bad_signatures: int = 0
    delay_s: float = 0.0  # a slow receiver keeps several dispatchers busy at once
    _server: Optional[ThreadingHTTPServer] = None
    _thread: Optional[threading.Thread] = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def start(self) -> Hook:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                expected = "sha256=" + hmac.new(HOOK_KEY.encode(), raw, hashlib.sha256).hexdigest()
                good = hmac.compare_digest(expected, self.headers.get("X-Tillsyn-Signature", ""))
                with hook._lock:
                    if good:
                        data = json.loads(raw)
                        hook.deliveries.append(Delivery(time.monotonic(), data["event"], data["incident"], data))
                    else:
                        hook.bad_signatures += 1
                time.sleep(hook.delay_s)
                self.send_response(200 if good else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(5)
            self._server = None

    def events(self, rule: Optional[str] = None, agent_id: Optional[str] = None) -> List[Delivery]:
        with self._lock:
            return [
                d
                for d in self.deliveries
                if (rule is None or d.incident["rule_id"] == rule)
                and (agent_id is None or d.incident["agent_id"] == agent_id)
            ]

    def kinds(self, rule: Optional[str] = None, agent_id: Optional[str] = None) -> List[str]:
        return [d.event for d in self.events(rule, agent_id)]


def write_key(directory: Path) -> Path:
    path = directory / "webhook.key"
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(HOOK_KEY + "\n")
    path.chmod(0o600)
    return path


def centre_yaml(
    channels: Dict[str, Dict[str, Any]],
    routes: Sequence[Dict[str, Any]],
    *,
    duty_interval_s: float = 1,
    dispatch_interval_s: float = 0.5,
    heartbeat_interval_s: int = 5,
    silent_after_s: int = 3600,
    **alerting: Any,
) -> str:
    """central.yaml lines (beside state_dir and listen) with a short duty and dispatch rhythm.

    ``silent_after_s`` is long by default: nodes played by the ``Node`` helper send no
    heartbeats, and only the silence test wants them to go silent.
    """
    section = {
        "heartbeat_interval_s": heartbeat_interval_s,
        "silent_after_s": silent_after_s,
        "duty_interval_s": duty_interval_s,
        "alerting": {
            "dispatch_interval_s": dispatch_interval_s,
            "retry_max_s": 5,
            "channels": channels,
            "routes": list(routes),
            **alerting,
        },
    }
    return yaml.safe_dump(section, sort_keys=False)


def webhook(url: str, key: Path) -> Dict[str, Any]:
    return {"type": "webhook", "url": url, "secret_file": str(key), "timeout_s": 2}


class Remote:
    """What ``Node`` needs of a test client, over real HTTP to a centre process."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()

    def post(self, path: str, content: bytes, headers: Dict[str, str]) -> requests.Response:
        return self.session.post(self.base_url + path, data=content, headers=headers, timeout=10)


def remote_node(centre: CentreProcess, hostname: str = "web1.example.net", token: Optional[str] = None) -> Node:
    """A signed node enrolled over HTTP (``token``: one made before, e.g. for many nodes)."""
    node = Node(Remote(centre.url), hostname=hostname)  # type: ignore[arg-type]
    node.enrol(token or centre.token())
    return node


def send_ports(node: Node, deviating: bool) -> None:
    """A signed report whose ports evidence fails (telnet on all addresses) or passes the plaintext rule."""
    sockets = [TELNET] if deviating else []
    response = node.send(node.report(evidence_record("ports", {"sockets": sockets})))
    assert response.status_code == 200, response.text
    judged(node.client)


def judged(client: Any, timeout: float = 30.0) -> None:
    """Wait until the centre has evaluated every report it acknowledged (``/healthz``); ``client`` is
    a :class:`Remote` or a TestClient."""
    deadline = time.monotonic() + timeout
    while True:
        if isinstance(client, Remote):
            health = client.session.get(client.base_url + "/healthz", timeout=10)
        else:
            health = client.get("/healthz")
        waiting = health.json()["evaluation_backlog"]
        if not waiting:
            return
        assert time.monotonic() < deadline, f"{waiting} acknowledged reports still unevaluated after {timeout:g} s"
        time.sleep(0.02)


def db_url(centre: CentreProcess) -> str:
    return centre.env.get("TILLSYN_DATABASE_URL") or f"sqlite:///{centre.state / 'central.db'}"


def query(centre: CentreProcess, sql: str, **params: Any) -> List[Dict[str, Any]]:
    """Rows of a read-only query against the centre's own database (SQLite file or PostgreSQL).
    A ``body`` column of ``reports`` (with its ``agent_id`` selected too) is given as the signed
    bytes it stands for, joined from its stored skeleton and pieces (central/db/report_bodies.py)."""
    url = db_url(centre)
    if url.startswith("postgresql://"):
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(text(sql), params).mappings()]
            bodies = Bodies(conn)
            for row in rows:
                if "body" in row and "agent_id" in row:
                    row["body"] = bodies.raw(row["agent_id"], row["body"])
            return rows
    finally:
        engine.dispose()


def dashboard_page(centre: CentreProcess, name: str, password: str, path: str) -> str:
    """A dashboard page as the person ``name`` reads it after logging in (the centre needs
    ``sessions: {secure_cookie: false}`` to keep the session over plain HTTP)."""
    with requests.Session() as browser:
        form = browser.get(centre.url + "/login", timeout=10).text
        token = re.search(r'name="login_token" value="([^"]+)"', form)
        assert token, form
        fields = {"username": name, "password": password, "login_token": html.unescape(token.group(1))}
        browser.post(centre.url + "/login", data=fields, timeout=10).raise_for_status()
        page = browser.get(centre.url + path, timeout=10)
    assert page.status_code == 200, f"{path}: {page.status_code} {page.text[:500]}"
    return page.text


def api(centre: CentreProcess, key: Dict[str, str], method: str, path: str, body: Any = None) -> Any:
    response = requests.request(method, centre.url + path, headers=key, json=body, timeout=10)
    assert response.status_code == 200, f"{method} {path}: {response.status_code} {response.text}"
    return response.json()
