"""``build_sender``: one sender per channel type, and unusable files reported at build time with their path."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest

from central.alerting.channels import BUILDERS, ChannelError, Sender, build_sender
from central.alerting.settings import WebhookChannel, parse_channel
from tests.central.alerting.channels.helpers import sample_incident


def _settings(tmp_path: Path) -> Dict[str, Dict[str, Any]]:
    secret = tmp_path / "secret"
    secret.write_text("k3y\n")
    return {
        "email": {"type": "email", "to": ["a@example.org"], "username": "u", "password_file": secret},
        "webhook": {"type": "webhook", "url": "https://hooks.example/x", "secret_file": secret},
        "slack": {"type": "slack", "url": "https://hooks.slack.example/services/T/B/X"},
        "teams": {"type": "teams", "url": "https://teams.example/webhook"},
        "pagerduty": {"type": "pagerduty", "routing_key_file": secret},
        "alertmanager": {"type": "alertmanager", "url": "http://127.0.0.1:9093"},
    }


def test_every_type_builds_a_sender(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert set(settings) == set(BUILDERS)
    for kind, data in settings.items():
        sender = build_sender(f"my-{kind}", parse_channel(data))
        assert isinstance(sender, Sender)
        assert sender.name == f"my-{kind}"
        assert "k3y" not in repr(sender)


@pytest.mark.parametrize("kind", ["email", "webhook", "pagerduty"])
def test_missing_secret_file_names_the_path(tmp_path: Path, kind: str) -> None:
    data = _settings(tmp_path)[kind]
    key = next(k for k in data if k.endswith("_file"))
    data[key] = tmp_path / "gone" / "secret"
    with pytest.raises(ChannelError, match=f"{key} {tmp_path}/gone/secret: no such file") as err:
        build_sender("c", parse_channel(data))
    assert err.value.retry is False


def test_unreadable_or_empty_secret(tmp_path: Path) -> None:
    data = _settings(tmp_path)["webhook"]
    with pytest.raises(ChannelError, match=f"secret_file {tmp_path}: cannot read"):
        build_sender("c", parse_channel({**data, "secret_file": tmp_path}))  # a directory
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ChannelError, match="is empty"):
        build_sender("c", parse_channel({**data, "secret_file": tmp_path / "empty"}))


def test_webhook_without_a_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ChannelError, match="secret_file is required"):
        build_sender("c", WebhookChannel(url="https://hooks.example/x"))


def test_missing_ca_file_names_the_path(tmp_path: Path) -> None:
    for data in _settings(tmp_path).values():
        with pytest.raises(ChannelError, match=f"ca_file {tmp_path}/ca.pem: no such file"):
            build_sender("c", parse_channel({**data, "ca_file": tmp_path / "ca.pem"}))


def test_email_username_and_password_file_go_together(tmp_path: Path) -> None:
    data = _settings(tmp_path)["email"]
    with pytest.raises(ChannelError, match="password_file is set but username is not"):
        build_sender("c", parse_channel({**data, "username": None}))
    with pytest.raises(ChannelError, match="password_file is required"):
        build_sender("c", parse_channel({**data, "password_file": None}))


def test_unknown_event_is_refused(tmp_path: Path) -> None:
    sender = build_sender("c", parse_channel(_settings(tmp_path)["slack"]))
    with pytest.raises(ChannelError, match="unknown event 'acknowledge'") as err:
        sender.send("acknowledge", sample_incident())
    assert err.value.retry is False
