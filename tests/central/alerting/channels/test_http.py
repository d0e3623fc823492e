"""The HTTP transport every webhook-like channel shares, against a real HTTP(S) server on loopback.

Also home of the receivers the other ``test_channel_*`` modules use: a recording
``ThreadingHTTPServer`` (optionally TLS), a test PKI made with ``cryptography``,
free ports and a sample incident.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import pytest

from central.alerting.channels import ChannelError
from central.alerting.channels.http import post_json
from tests.central.alerting.channels.helpers import (
    Reply,
    free_port,
    http_receiver,
    make_pki,
)

# --- a test PKI -------------------------------------------------------------------------------------------


# --- a recording HTTP receiver --------------------------------------------------------------------------


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
