"""The signed JSON webhook, received by a real HTTP server that verifies it as a receiver would."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from central.alerting.channels import ChannelError, build_sender
from central.alerting.settings import WebhookChannel
from tests.central.alerting.channels.helpers import Received, Reply, http_receiver, resolved, sample_incident

KEY = "s3cret-shared-with-the-receiver"


def verify(request: Received, key: str) -> bool:
    """What a receiver does (docs/alerting-channels.md): HMAC the raw body, compare in constant time."""
    expected = "sha256=" + hmac.new(key.encode(), request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request.headers.get("x-tillsyn-signature", ""))


def _channel(tmp_path: Path, url: str) -> WebhookChannel:
    secret = tmp_path / "webhook.key"
    secret.write_text(KEY + "\n")
    return WebhookChannel(url=url, secret_file=secret)


def test_trigger_and_resolve_arrive_signed(tmp_path: Path) -> None:
    incident = sample_incident()
    with http_receiver() as rx:
        sender = build_sender("ops-hook", _channel(tmp_path, rx.url))
        sender.send("trigger", incident)
        sender.send("resolve", resolved(incident))
    trigger, resolve = rx.requests
    for request in (trigger, resolve):
        assert verify(request, KEY)
        assert not verify(request, "another key")
        assert not verify(Received("POST", request.path, request.headers, request.body + b" "), KEY)
    assert trigger.headers["x-tillsyn-event"] == "trigger"
    assert resolve.headers["x-tillsyn-event"] == "resolve"
    body = json.loads(trigger.body)
    assert body["version"] == 1 and body["event"] == "trigger"
    assert body["sent_at"].endswith("Z")
    assert body["incident"] == {
        **incident,
        "opened_at": "2024-05-01T12:00:05.000Z",
        "resolved_at": None,
    }
    later = json.loads(resolve.body)["incident"]
    assert later["status"] == "resolved" and later["resolved_at"] == "2024-05-01T12:30:00.000Z"
    assert later["dedup_key"] == body["incident"]["dedup_key"]


def test_key_file_missing_fails_at_build(tmp_path: Path) -> None:
    channel = WebhookChannel(url="http://127.0.0.1:9/hook", secret_file=tmp_path / "absent.key")
    with pytest.raises(ChannelError, match=r"secret_file .*absent\.key: no such file") as err:
        build_sender("ops-hook", channel)
    assert err.value.retry is False


def test_key_stays_out_of_repr_and_errors(tmp_path: Path) -> None:
    with http_receiver() as rx:
        rx.replies.append(Reply(401, b"bad signature"))
        sender = build_sender("ops-hook", _channel(tmp_path, rx.url))
        with pytest.raises(ChannelError) as err:
            sender.send("repeat", sample_incident())
    assert KEY not in repr(sender) and KEY not in str(err.value)
    assert "bad signature" in str(err.value) and err.value.retry is False
