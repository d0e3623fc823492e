"""M06, M07 and M11 end to end, inside a network namespace the test creates: a real centre and the
real agent daemon, a real chronyd pair (that never touches the clock), real nftables and real
listening sockets.

- chronyd's only source stops: ``time-synchronised`` fails and an incident opens; the source
  comes back and it resolves;
- a listener on a port the nftables ruleset accepts from anywhere: ``firewall-listeners-filtered``
  fails, naming the port and the rule; closed, it resolves (a listener the ruleset drops does not count);
- a VNC-like port outside a maintenance window: ``service-remote-access-closed`` fails and an
  incident opens; inside a window that allows the rule no incident opens; when the window is
  cancelled with the port still open an incident opens whose timeline names the window's start
  and end, and closing the port resolves it.

Every trigger and resolve reaches a webhook as people read it: the sentence of what was found,
and of what changed.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from collectors import REGISTRY
from tests.centre_process import CentreProcess
from tests.collectors.firewall.netns import load_nft, own_netns
from tests.collectors.time.helpers import Chronyd, start_client, start_server
from tests.conftest import require_tool
from tests.e2e.alert_helpers import Hook, centre_yaml, query, webhook, write_key
from tests.e2e.harness import AgentProcess, wait_until

RULESET = """
table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    iif "lo" accept
    ct state established,related accept
    tcp dport 22 accept
    tcp dport 9000-9099 accept
  }
}
"""
TIME, FIREWALL, SERVICE = "time-synchronised", "firewall-listeners-filtered", "service-remote-access-closed"
BOUND = 40  # one 10 s interval, a report, a duty round, with room for a slow machine


@pytest.fixture
def netns() -> Iterator[str]:
    require_tool("nft")
    require_tool("chronyd")
    with own_netns() as name:
        load_nft(RULESET)
        yield name


def _agent_yaml(chronyd_socket: str) -> str:
    off = "".join(
        f"  {n}: {{enabled: false}}\n" for n in sorted(REGISTRY) if n not in ("time", "firewall", "service_access")
    )
    return (
        "heartbeat_interval: 5\njitter: 0\ndelivery: {backoff_min: 0.2, backoff_max: 2}\ncollectors:\n"
        f"{off}"
        f"  time: {{interval: 10, chronyd_socket: {chronyd_socket}, timedatectl: '', ntpq: ''}}\n"
        "  firewall: {interval: 10, allowed_open: [{port: 22}]}\n"
        "  service_access: {interval: 10}\n"
    )


def _listen(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
    sock.listen(1)
    return sock


class Node:
    """What the test asks the centre about its one node."""

    def __init__(self, centre: CentreProcess, key: Dict[str, str], agent: AgentProcess) -> None:
        self.centre, self.key, self.agent = centre, key, agent

    def finding(self, rule: str) -> Dict[str, Any]:
        found = self.centre.get(f"/api/v1/findings?node={self.agent.agent_id}&rule={rule}", self.key)
        return found[0] if found else {}

    def reports(self) -> int:
        """How many of the node's reports the centre has stored."""
        sql = "SELECT count(*) AS n FROM reports WHERE agent_id = :a"
        return int(query(self.centre, sql, a=self.agent.agent_id)[0]["n"])

    def incidents(self, rule: str) -> List[Dict[str, Any]]:
        rows = self.centre.get(f"/api/v1/incidents?node={self.agent.agent_id}", self.key)
        return sorted((i for i in rows if i["rule_id"] == rule), key=lambda i: int(i["id"]))

    def timeline(self, incident: Dict[str, Any]) -> List[Dict[str, Any]]:
        shown: Any = self.centre.get(f"/api/v1/incidents/{incident['id']}", self.key)
        return list(shown["timeline"])

    def becomes(self, rule: str, status: str) -> Dict[str, Any]:
        found: Dict[str, Any] = wait_until(
            lambda: self.finding(rule) if self.finding(rule).get("status") == status else None,
            BOUND,
            lambda: f"{rule} {status}, have {self.finding(rule)}\n{self.agent.tail()}",
            step=0.5,
        )
        return found

    def incident_count(self, rule: str, status: str, count: int) -> List[Dict[str, Any]]:
        def check() -> bool:
            return len([i for i in self.incidents(rule) if i["status"] == status]) == count

        wait_until(check, BOUND, lambda: f"{count} {status} {rule} incidents, have {self.incidents(rule)}", step=0.5)
        return self.incidents(rule)


def told(hook: Hook, rule: str, event: str, count: int) -> List[str]:
    """The sentences of the first ``count`` ``event`` notifications of ``rule`` the webhook received."""

    def sentences() -> List[str]:
        return [str(d.incident["message"]) for d in hook.events(rule) if d.event == event]

    wait_until(lambda: len(sentences()) >= count, BOUND, lambda: f"{count} {event} of {rule}, have {hook.kinds()}")
    return sentences()[:count]


def test_clock_firewall_and_service_window_end_to_end(netns: str, tmp_path: Path) -> None:
    server, port = start_server(tmp_path / "ntp-server")
    client = start_client(tmp_path / "ntp-client", port)
    hook = Hook().start()
    routes = [{"match": {"rules": [TIME, FIREWALL, SERVICE]}, "channels": ["hook"]}]
    channels = {"hook": webhook(hook.url, write_key(tmp_path / "hook"))}
    extra = centre_yaml(channels, routes, open_after_s=0, resolve_after_s=0)
    centre = CentreProcess(tmp_path / "centre", extra_yaml=extra).start()
    agent = AgentProcess(tmp_path / "node", _agent_yaml(client.socket))
    sockets: List[socket.socket] = []
    try:
        agent.enrol(centre)
        agent.start()
        node = Node(centre, centre.api_key(), agent)
        for rule in (TIME, FIREWALL, SERVICE, "firewall-active", "firewall-default-deny"):
            node.becomes(rule, "passing")

        # M06: the clock's only source stops, then comes back on the same port
        server.stop()
        failing = node.becomes(TIME, "failing")
        assert "not synchronised" in failing["message"], failing
        node.incident_count(TIME, "open", 1)
        server = Chronyd(
            tmp_path / "ntp-server-2", f"local stratum 3\nport {port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\n"
        )
        node.becomes(TIME, "passing")
        node.incident_count(TIME, "resolved", 1)
        (trigger,) = told(hook, TIME, "trigger", 1)
        assert trigger.startswith("the clock is not synchronised (chrony): chronyd "), trigger
        assert told(hook, TIME, "resolve", 1) == ["the clock is synchronised again"]

        # M07: a listener the ruleset accepts from anywhere, beside one it drops
        sockets += [_listen(9050), _listen(9150)]
        failing = node.becomes(FIREWALL, "failing")
        assert [s["port"] for s in failing["observed"]] == [9050], failing
        assert "listens on 0.0.0.0:9050/tcp, reachable from anywhere" in failing["message"], failing
        assert "accepted by inet filter input rule" in failing["message"], failing
        node.incident_count(FIREWALL, "open", 1)
        sockets.pop(0).close()
        node.becomes(FIREWALL, "passing")
        node.incident_count(FIREWALL, "resolved", 1)
        assert told(hook, FIREWALL, "trigger", 1) == [failing["message"]]
        assert told(hook, FIREWALL, "resolve", 1) == ["0.0.0.0:9050/tcp is filtered or closed now"]

        # M11: a VNC-like port outside a maintenance window
        sockets.append(_listen(5901))
        failing = node.becomes(SERVICE, "failing")
        assert "listens on 0.0.0.0:5901/tcp: vnc service open outside a service visit" in failing["message"], failing
        node.incident_count(SERVICE, "open", 1)
        sockets.pop().close()
        node.becomes(SERVICE, "passing")
        node.incident_count(SERVICE, "resolved", 1)
        assert told(hook, SERVICE, "trigger", 1) == [failing["message"]]
        assert told(hook, SERVICE, "resolve", 1) == ["the remote-service entrance 0.0.0.0:5901/tcp (vnc) is closed now"]

        # ... and inside one that allows the rule: accepted, no incident
        window = centre.cli(
            "window", "create", "--agent", agent.agent_id, "--for", "2h", "--reason", "vendor VNC session, ticket 4711",
            "--allows", SERVICE,
        ).stdout.strip()  # fmt: skip
        sockets.append(_listen(5901))
        node.becomes(SERVICE, "failing")
        stored = node.reports()
        # three more reports stored: the first two judged, with duty rounds after them, inside the window
        wait_until(lambda: node.reports() >= stored + 3, 3 * BOUND, "three more reports", step=0.5)
        assert [i["status"] for i in node.incidents(SERVICE)] == ["resolved"]  # no new one inside the window
        assert hook.kinds(SERVICE) == ["trigger", "resolve"]  # nobody paged inside it

        # the window is cancelled while the port is still open: an incident naming the window
        centre.cli("window", "cancel", window)
        incidents = node.incident_count(SERVICE, "open", 1)
        events = node.timeline(incidents[-1])
        ended = [e["detail"] for e in events if e["kind"] == "window_ended"]
        assert len(ended) == 1 and ended[0].startswith(f"maintenance window {window} from "), events
        assert "UTC (vendor VNC session, ticket 4711) allowed this and was cancelled at " in ended[0], events
        detected = [e["detail"] for e in events if e["kind"] == "detected"]
        assert "vnc service open outside a service visit" in detected[0], events
        sockets.pop().close()
        node.becomes(SERVICE, "passing")
        node.incident_count(SERVICE, "resolved", 2)
        assert "vnc service open outside a service visit" in told(hook, SERVICE, "trigger", 2)[1]
        assert told(hook, SERVICE, "resolve", 2)[1] == told(hook, SERVICE, "resolve", 1)[0]
        assert agent.stop() == 0
    finally:
        hook.stop()
        for s in sockets:
            s.close()
        agent.kill()
        centre.stop()
        client.stop()
        server.stop()
