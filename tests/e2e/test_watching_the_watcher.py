"""Watching the watcher: a real ``tillsyn-central serve`` whose mail relay is down shows the channel
failing in ``/metrics`` and ``/healthz``, and recovers once a real aiosmtpd listens on that port.
``promtool check metrics`` (Debian's prometheus) reads the real ``/metrics`` output both times.
"""

from __future__ import annotations

import html
import re
import subprocess
from pathlib import Path
from typing import Dict, Iterator, Tuple

import pytest
import requests
from aiosmtpd.controller import Controller
from prometheus_client.parser import text_string_to_metric_families

from tests.central.alerting.channels.helpers import Handler, Mailbox
from tests.centre_process import CENTRAL_PYTHON, ROOT, CentreProcess, free_port
from tests.conftest import require_tool
from tests.e2e.alert_helpers import PLAINTEXT_RULE, centre_yaml, dashboard_page, remote_node, send_ports
from tests.e2e.harness import AgentProcess, agent_yaml, wait_until

Sample = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]


def scrape(centre: CentreProcess) -> Tuple[str, Sample]:
    """The real /metrics text (from loopback) and its samples by (name, labels)."""
    response = requests.get(centre.url + "/metrics", timeout=10)
    response.raise_for_status()
    samples: Sample = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return response.text, samples


def value(samples: Sample, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), float("nan"))


def health(centre: CentreProcess) -> Dict[str, object]:
    response = requests.get(centre.url + "/healthz", timeout=10)
    assert response.status_code == 200, response.text
    body: Dict[str, object] = response.json()
    return body


def promtool_check(text: str) -> None:
    promtool = require_tool("promtool")
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text, check=False, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr


PASSWORD = "a long enough password for the dashboard"


def make_user(centre: CentreProcess, name: str, *tenants: str, role: str = "viewer") -> None:
    """``tillsyn-central user create NAME --role ROLE --tenant T --password-stdin``, as an admin would."""
    args = [a for t in tenants for a in ("--tenant", t)]
    done = subprocess.run(
        [CENTRAL_PYTHON, "-m", "central.cli", "user", "create", name, "--role", role, "--password-stdin", *args],
        input=PASSWORD + "\n",
        env=centre.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def dashboard_banner(centre: CentreProcess, name: str) -> str:
    """The fleet page's health notice as a person logged in as ``name`` reads it ("" when none)."""
    fleet = dashboard_page(centre, name, PASSWORD, "/")
    assert "<h1>Fleet</h1>" in fleet, fleet[:500]
    notice = re.search(r'<div class="degraded" id="health".*?</div>', fleet, re.DOTALL)
    return "" if notice is None else " ".join(html.unescape(re.sub(r"<[^>]+>", " ", notice.group(0))).split())


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[Tuple[CentreProcess, int]]:
    relay = free_port()  # nothing listens here until the test starts aiosmtpd
    mail = {"type": "email", "smtp_port": relay, "starttls": False, "to": ["oncall@hosting.example"], "timeout_s": 2}
    extra = centre_yaml({"mail": mail}, [{"match": {"rules": [PLAINTEXT_RULE]}, "channels": ["mail"]}])
    extra += "health:\n  channel_failing_s: 3\n  outbox_age_s: 3600\nsessions:\n  secure_cookie: false\n"
    process = CentreProcess(tmp_path / "centre", extra_yaml=extra)
    process.start()
    try:
        yield process, relay
    finally:
        process.stop()


def test_a_dead_mail_relay_shows_in_metrics_and_healthz_and_recovery_follows(
    centre: Tuple[CentreProcess, int],
) -> None:
    process, relay = centre
    # every tenant for an admin only: a viewer holding "*" would fail M10 (separation) on each node
    make_user(process, "ops", "*", role="admin")
    make_user(process, "client", "client1")
    node_agent = AgentProcess(process.state.parent / "node", agent_yaml())
    node_agent.enrol(process)
    text, samples = scrape(process)
    promtool_check(text)
    assert value(samples, "tillsyn_notifications_failed_total", channel="mail", kind="trigger") == 0
    assert value(samples, "tillsyn_outbox_waiting", channel="mail") == 0
    assert health(process)["status"] == "ok"

    node = remote_node(process)
    send_ports(node, deviating=True)

    def failing() -> bool:
        _text, now = scrape(process)
        return (
            value(now, "tillsyn_notifications_failed_total", channel="mail", kind="trigger") >= 1
            and value(now, "tillsyn_channel_failing_seconds", channel="mail") > 3
            and value(now, "tillsyn_health_problem", check="channel_failing") == 1
        )

    wait_until(failing, 30, lambda: f"the mail channel failing in /metrics:\n{scrape(process)[0][-3000:]}")
    text, samples = scrape(process)
    promtool_check(text)
    assert value(samples, "tillsyn_outbox_waiting", channel="mail") == 1
    assert value(samples, "tillsyn_outbox_oldest_age_seconds", channel="mail") > 3
    assert value(samples, "tillsyn_notifications_sent_total", channel="mail", kind="trigger") == 0
    assert ("tillsyn_channel_seconds_since_delivery", (("channel", "mail"),)) not in samples  # never delivered
    assert value(samples, "tillsyn_incidents_open", severity="high") == 1  # the plaintext rule is high
    assert value(samples, "tillsyn_incidents_open", severity="critical") == 0
    assert value(samples, "tillsyn_findings", control="M07", status="failing") == 1  # its control
    body = health(process)
    assert body["status"] == "degraded" and body["checks"] == ["channel_failing"], body
    reasons = body["reasons"]
    assert isinstance(reasons, list) and len(reasons) == 1, body
    reason = str(reasons[0])
    assert reason.startswith("channel mail has failed for ") and "1 notification(s) wait" in reason, reason
    # the same state on the dashboard (reasons for an admin of every tenant) and in the agent's status
    seen = dashboard_banner(process, "ops")
    assert seen.startswith("Tillsyn's own alerting is degraded") and "channel mail has failed for " in seen, seen
    limited = dashboard_banner(process, "client")
    assert limited.startswith("Tillsyn's own alerting is degraded") and "channel mail" not in limited, limited
    status = node_agent.cli("status")
    assert status.returncode == 0, status.stderr
    [line] = [x for x in status.stdout.splitlines() if x.startswith("centre health:")]
    assert line.split(":", 1)[1].strip().startswith("degraded: channel mail has failed for "), status.stdout

    box = Mailbox(port=relay)
    controller = Controller(Handler(box), hostname="127.0.0.1", port=relay)
    controller.start()
    try:
        wait_until(lambda: len(box.messages) == 1, 30, "the trigger delivered once the relay listens")

        def recovered() -> bool:
            _text, now = scrape(process)
            return (
                value(now, "tillsyn_notifications_sent_total", channel="mail", kind="trigger") == 1
                and value(now, "tillsyn_channel_failing_seconds", channel="mail") == 0
                and value(now, "tillsyn_health_problem", check="channel_failing") == 0
            )

        wait_until(recovered, 20, lambda: f"the mail channel recovered in /metrics:\n{scrape(process)[0][-3000:]}")
        text, samples = scrape(process)
        promtool_check(text)
        assert value(samples, "tillsyn_outbox_waiting", channel="mail") == 0
        assert 0 <= value(samples, "tillsyn_channel_seconds_since_delivery", channel="mail") < 60
        assert health(process) == {**health(process), "status": "ok", "reasons": [], "checks": []}
        assert dashboard_banner(process, "ops") == ""
        assert "centre health:  ok\n" in node_agent.cli("status").stdout
    finally:
        controller.stop()
