"""Two webhook channels ("up" and "down") routed together, and a node deviating to page them:
for tests of one channel failing beside another that works."""

from __future__ import annotations

from pathlib import Path

from central.alerting.settings import Alerting
from tests.central.conftest import Node, evidence_record
from tests.central.judging.helpers import TELNET


def two_webhooks(tmp_path: Path, up_url: str, down_url: str) -> Alerting:
    secret = tmp_path / "hook.key"
    secret.write_text("s3cret-hmac-key")
    hook = {"type": "webhook", "secret_file": str(secret), "timeout_s": 2}
    return Alerting.model_validate(
        {
            "channels": {"up": {**hook, "url": up_url}, "down": {**hook, "url": down_url}},
            "routes": [{"channels": ["down", "up"]}],
        }
    )


def deviate(node: Node) -> None:
    """A telnet listener on every address: the plaintext rule (M07, high) fails."""
    assert node.send(node.report(evidence_record("ports", {"sockets": [TELNET]}))).status_code == 200
