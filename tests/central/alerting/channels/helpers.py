"""What the channel tests share: a sample incident, free ports, a private CA, and an HTTP receiver on loopback."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
import subprocess
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Deque, Dict, Iterator, List, Optional, Tuple

import pytest
import requests
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from central.alerting.settings import EmailChannel
from tests.conftest import require_tool

UTC = dt.timezone.utc


def sample_incident(**changes: Any) -> Dict[str, Any]:
    incident: Dict[str, Any] = {
        "id": 42,
        "dedup_key": "tillsyn/a1b2c3/ups-on-line",
        "agent_id": "a1b2c3",
        "hostname": "web1",
        "tenant": "acme",
        "group": "web",
        "labels": {"dc": "sto1", "role.tier": "front"},
        "rule_id": "ups-on-line",
        "kind": "finding",
        "status": "open",
        "severity": "high",
        "title": "Every UPS runs on line power",
        "controls": ["M01"],
        "observed": {"ups": "ups1", "status": "OB DISCHRG", "charge_pct": 87},
        "message": "UPS ups1@localhost:3493 is on battery (OB DISCHRG), 29 min runtime left",
        "opened_at": dt.datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC),
        "resolved_at": None,
        "acknowledged_at": None,
        "acknowledged_by": None,
        "url": "https://centre.example/nodes/a1b2c3",
    }
    incident.update(changes)
    return incident


def resolved(incident: Dict[str, Any]) -> Dict[str, Any]:
    return {**incident, "status": "resolved", "resolved_at": dt.datetime(2024, 5, 1, 12, 30, tzinfo=UTC)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Pki:
    ca_file: Path
    cert_file: Path
    key_file: Path
    rogue_cert_file: Path  # self-signed, same names: what an impostor would present
    rogue_key_file: Path

    def server_context(self, rogue: bool = False) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if rogue:
            context.load_cert_chain(self.rogue_cert_file, self.rogue_key_file)
        else:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: Optional[Tuple[x509.Certificate, Any]], ca: bool
) -> x509.Certificate:
    now = dt.datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = (issuer[0].subject, issuer[1]) if issuer else (name, key)
    issuer_public = issuer[1].public_key() if issuer else key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path) -> Pki:
    """A CA, a server certificate it signed for 127.0.0.1/localhost, and a self-signed impostor."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, key, rogue_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _certificate("Tillsyn test CA", ca_key, None, ca=True)
    cert = _certificate("127.0.0.1", key, (ca, ca_key), ca=False)
    rogue = _certificate("127.0.0.1", rogue_key, None, ca=False)
    pki = Pki(*(directory / n for n in ("ca.pem", "cert.pem", "key.pem", "rogue.pem", "rogue-key.pem")))
    pki.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.rogue_cert_file.write_bytes(rogue.public_bytes(serialization.Encoding.PEM))
    _write_key(key, pki.key_file)
    _write_key(rogue_key, pki.rogue_key_file)
    return pki


@dataclass
class Received:
    method: str
    path: str
    headers: Dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    delay_s: float = 0.0
    headers: Dict[str, str] = field(default_factory=dict)


@dataclass
class Receiver:
    url: str
    requests: List[Received] = field(default_factory=list)
    replies: Deque[Reply] = field(default_factory=deque)  # consumed in order; then 200 "ok"


@contextmanager
def http_receiver(tls: Optional[ssl.SSLContext] = None, path: str = "/hook") -> Iterator[Receiver]:
    """A real HTTP(S) server on 127.0.0.1 that records each request and answers the queued replies."""
    scheme = "https" if tls else "http"
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            receiver.requests.append(Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            reply = receiver.replies.popleft() if receiver.replies else Reply()
            time.sleep(reply.delay_s)
            self.send_response(reply.status)
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client that gave up (the timeout test) is expected here

    server = Server(("127.0.0.1", 0), Handler)
    if tls:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    receiver.url = f"{scheme}://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


USER = "alerts"

PASSWORD = "correct horse battery staple"


@dataclass
class Mailbox:
    port: int
    messages: List[email.message.EmailMessage] = field(default_factory=list)
    envelopes: List[Envelope] = field(default_factory=list)
    tls: List[bool] = field(default_factory=list)


class Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        self.box.messages.append(parsed)
        self.box.envelopes.append(envelope)
        self.box.tls.append(session.ssl is not None)
        return "250 OK"


def _authenticate(server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.login == USER.encode() and data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_server(pki: Optional[Pki]) -> Iterator[Mailbox]:
    """aiosmtpd on 127.0.0.1: with ``pki`` STARTTLS is offered and required, and AUTH after it."""
    box = Mailbox(port=free_port())
    options: dict[str, Any] = {}
    if pki is not None:
        options = {
            "tls_context": pki.server_context(),
            "require_starttls": True,
            "authenticator": _authenticate,
            "auth_required": True,
            "auth_require_tls": True,
        }
    controller = Controller(Handler(box), hostname="127.0.0.1", port=box.port, **options)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


CONFIG = """\
route:
  receiver: blackhole
  group_wait: 1h
receivers:
  - name: blackhole
"""


@contextmanager
def alertmanager(tmp_path: Path) -> Iterator[str]:
    binary = require_tool("prometheus-alertmanager")
    config = tmp_path / "alertmanager.yml"
    config.write_text(CONFIG)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"alertmanager did not start: {(tmp_path / 'alertmanager.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def email_channel(
    tmp_path: Path, port: int, pki: Optional[Pki], password: str = PASSWORD, **changes: Any
) -> EmailChannel:
    """An email channel to the SMTP server on ``port`` of loopback (STARTTLS when ``pki`` is given)."""
    secret = tmp_path / "smtp.password"
    secret.write_text(password + "\n")
    settings: dict[str, Any] = {
        "type": "email",
        "smtp_port": port,
        "username": USER,
        "password_file": secret,
        "sender": "Tillsyn <tillsyn@centre.example>",
        "to": ["oncall@hosting.example", "soc@hosting.example"],
        "ca_file": pki.ca_file if pki else None,
        "timeout_s": 5,
    }
    settings.update(changes)
    return EmailChannel.model_validate(settings)
