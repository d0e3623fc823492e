"""The HTTP transport every webhook-like channel shares, against a real HTTP(S) server on loopback.

Also home of the receivers the other ``test_channel_*`` modules use: a recording
``ThreadingHTTPServer`` (optionally TLS), a test PKI made with ``cryptography``,
free ports and a sample incident.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Deque, Dict, Iterator, List, Optional, Tuple

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from central.alerting.channels import ChannelError
from central.alerting.channels.http import post_json

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


# --- a test PKI -------------------------------------------------------------------------------------------


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


# --- a recording HTTP receiver --------------------------------------------------------------------------


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


# --- the transport ---------------------------------------------------------------------------------------


def _post(url: str, ca_file: Optional[Path] = None, timeout_s: float = 5.0, **kwargs: Any) -> None:
    post_json("test channel", url, b'{"a": 1}', timeout_s=timeout_s, ca_file=ca_file, **kwargs)


@pytest.mark.parametrize("status", [200, 202, 204])
def test_2xx_is_sent(status: int) -> None:
    with http_receiver() as rx:
        rx.replies.append(Reply(status, b"" if status == 204 else b"accepted"))
        _post(rx.url, headers={"X-Extra": "1"})
    [request] = rx.requests
    assert request.body == b'{"a": 1}'
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-extra"] == "1"


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_busy_or_broken_receiver_is_retried(status: int) -> None:
    with http_receiver() as rx:
        rx.replies.append(Reply(status, b"try later"))
        with pytest.raises(ChannelError) as err:
            _post(rx.url)
    assert err.value.retry is True
    assert str(status) in str(err.value) and "try later" in str(err.value)


@pytest.mark.parametrize("status", [400, 403, 404, 410])
def test_refusal_is_not_retried_and_carries_the_receivers_message(status: int) -> None:
    with http_receiver() as rx:
        rx.replies.append(Reply(status, b'{"message": "Event object is invalid"}'))
        with pytest.raises(ChannelError) as err:
            _post(rx.url)
    assert err.value.retry is False
    assert f"answered {status}" in str(err.value)
    assert "Event object is invalid" in str(err.value)


def test_redirect_is_not_followed() -> None:
    with http_receiver() as rx:
        rx.replies.append(Reply(302, b"", headers={"Location": "/elsewhere"}))
        with pytest.raises(ChannelError, match="redirect") as err:
            _post(rx.url)
    assert err.value.retry is False
    assert [r.path for r in rx.requests] == ["/hook"]


def test_connection_refused_is_retried() -> None:
    with pytest.raises(ChannelError, match="cannot connect") as err:
        _post(f"http://127.0.0.1:{free_port()}/hook")
    assert err.value.retry is True


def test_timeout_is_retried() -> None:
    with http_receiver() as rx:
        rx.replies.append(Reply(200, b"late", delay_s=2.0))
        started = time.monotonic()
        with pytest.raises(ChannelError, match="no answer within the timeout") as err:
            _post(rx.url, timeout_s=0.3)
    assert err.value.retry is True
    assert time.monotonic() - started < 1.9


def test_secrets_in_the_url_and_the_reply_are_not_repeated() -> None:
    with http_receiver(path="/services/T000/B000/XXXXsecretXXXX") as rx:
        rx.replies.append(Reply(403, b"invalid_token XXXXsecretXXXX for key R0UT1NGKEY"))
        with pytest.raises(ChannelError) as err:
            _post(rx.url, secrets=("R0UT1NGKEY",))
    message = str(err.value)
    assert "invalid_token" in message
    assert "XXXXsecretXXXX" not in message and "R0UT1NGKEY" not in message
    with pytest.raises(ChannelError) as down:
        _post(f"http://127.0.0.1:{free_port()}/services/T000/B000/XXXXsecretXXXX")
    assert "XXXXsecretXXXX" not in str(down.value)


def test_tls_with_the_pinned_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pki = make_pki(tmp_path)
    # requests lets REQUESTS_CA_BUNDLE override a Session's verify; a per-request CA must win.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.rogue_cert_file))
    with http_receiver(tls=pki.server_context()) as rx:
        _post(rx.url, ca_file=pki.ca_file)
    assert rx.requests[0].body == b'{"a": 1}'


def test_tls_with_an_untrusted_certificate_is_refused(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    impostor = pki.server_context(rogue=True)
    with http_receiver(tls=impostor) as rx, pytest.raises(ChannelError, match="not trusted") as err:
        _post(rx.url, ca_file=pki.ca_file)
    assert err.value.retry is False
    assert str(pki.ca_file) in str(err.value)
    assert rx.requests == []


def test_tls_without_ca_file_does_not_trust_a_private_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    pki = make_pki(tmp_path)
    with http_receiver(tls=pki.server_context()) as rx, pytest.raises(ChannelError, match="system's CAs"):
        _post(rx.url)
    assert rx.requests == []
