"""Two ``tillsyn-central serve`` processes on one PostgreSQL behind Debian's HAProxy
(bench/replicas.py), with signed nodes over real HTTP through the balancer.

Every duty runs in both processes: the evaluator and the duty round each take an advisory lock,
the dispatcher leases outbox rows with ``SKIP LOCKED``, and an open incident is unique per node
and rule in the schema.  The test proves what that promises (docs/operations.md, Replicas on
PostgreSQL): a deviation opens one incident and one notification per channel, a node's reports
are judged in the order it sent them though they arrive at both processes, a silent node opens
one incident, and after one replica is SIGKILLed amid heartbeats and reports the other carries on
with every duty, nothing lost or stored twice, ``tillsyn-central verify`` intact.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest
import requests
from sqlalchemy import create_engine, text

from bench.replicas import HAPROXY, Replicas, running
from tests.central.conftest import (
    Node,
    evidence_record,
)
from tests.conftest import in_ci
from tests.e2e.alert_helpers import (
    PLAINTEXT_RULE,
    TELNET,
    Hook,
    Remote,
    centre_yaml,
    webhook,
    write_key,
)
from tests.e2e.harness import wait_until

ROOT = Path(__file__).resolve().parents[2]
SILENT_AFTER_S = 10  # the smallest the configuration allows


@pytest.fixture
def haproxy() -> None:
    if shutil.which(HAPROXY) is None:
        message = f"{HAPROXY} not installed (Debian package haproxy, packaging/test-deps.txt)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)


def _rows(db_url: str, sql: str, **params: Any) -> List[Dict[str, Any]]:
    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(text(sql), params).mappings()]
    finally:
        engine.dispose()


def _cli(group: Replicas, *args: str) -> subprocess.CompletedProcess[str]:
    config = str(group.members[0].config)
    return subprocess.run(
        [sys.executable, "-m", "central.cli", "--config", config, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _deliver(node: Node, envelope: Dict[str, Any]) -> int:
    """Send one report as an agent does: again and again until the centre acknowledges it (a request
    that met the killed replica is answered 502/503 by the balancer or cut off).  Attempts made."""
    attempts = 0
    while True:
        attempts += 1
        try:
            response = node.send(envelope)
            if response.status_code == 200:
                return attempts
        except requests.RequestException:
            pass
        assert attempts < 100, f"report {envelope['report_id']} never acknowledged"
        time.sleep(0.1)


def _ports(node: Node, deviating: bool) -> Dict[str, Any]:
    return node.report(evidence_record("ports", {"sockets": [TELNET] if deviating else []}))


def _kinds(hook: Hook) -> Counter[Tuple[str, str]]:
    return Counter((d.incident["agent_id"], d.event) for d in hook.events())


def _triggered(hook: Hook, agents: List[Node]) -> bool:
    return all(_kinds(hook)[(n.agent_id, "trigger")] >= 1 for n in agents)


def _wait_hook(hook: Hook, check: Callable[[Hook], bool], seconds: float, what: str) -> None:
    wait_until(lambda: check(hook), seconds, lambda: f"{what}, have {_kinds(hook)}")


def _kill_holding_no_notification(group: Replicas, index: int, db_url: str) -> None:
    """SIGKILL replica ``index`` at a moment it holds no leased, unsent notification: such a one
    would wait out its 120 s lease (docs/operations.md) and the test would only measure that.
    The replica is stopped (SIGSTOP) while the outbox is read, so it cannot lease one meanwhile;
    requests it is answering then hang until the kill cuts them off."""
    replica = group.members[index]
    assert replica.proc is not None
    pid = replica.proc.pid
    for _ in range(100):
        os.kill(pid, signal.SIGSTOP)
        held = "SELECT id FROM outbox WHERE sent_at IS NULL AND claimed_by LIKE :owner"
        if not _rows(db_url, held, owner=f"%:{pid}:%"):
            group.kill(index)
            return
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.05)
    raise AssertionError(f"replica {index} held a notification at each of 100 looks")


class Beats(threading.Thread):
    """Heartbeats of every node but the muted ones, each second, through the balancer."""

    def __init__(self, nodes: List[Node]) -> None:
        super().__init__(daemon=True)
        self.nodes = nodes
        self.muted: set[str] = set()
        self.stopping = threading.Event()
        self.acknowledged = 0
        self.refused = 0

    def run(self) -> None:
        while not self.stopping.is_set():
            for node in self.nodes:
                if node.agent_id in self.muted:
                    continue
                try:
                    ok = node.heartbeat().status_code == 200
                except requests.RequestException:
                    ok = False
                self.acknowledged += ok
                self.refused += not ok
            self.stopping.wait(1.0)


def test_two_replicas_behind_haproxy_do_every_duty_once_and_survive_a_killed_one(
    tmp_path: Path, pg_database: str, haproxy: None
) -> None:
    key = write_key(tmp_path)
    hooks = [Hook().start(), Hook().start()]
    settings = centre_yaml(
        channels={"a": webhook(hooks[0].url, key), "b": webhook(hooks[1].url, key)},
        routes=[{"match": {"rules": [PLAINTEXT_RULE, "silent"]}, "channels": ["a", "b"]}],
        silent_after_s=SILENT_AFTER_S,
        resolve_after_s=0,
        dispatch_interval_s=0.2,
    )
    beats = None
    began = time.monotonic()
    try:
        with running(pg_database, 2, tmp_path / "replicas", extra_yaml=settings) as group:
            print(f"up after {time.monotonic() - began:.1f} s")
            made = _cli(group, "token", "create")
            assert made.returncode == 0, made.stderr
            token = made.stdout.splitlines()[0].strip()
            nodes = []
            for i in range(6):
                node = Node(Remote(group.url), hostname=f"web{i}.example.net")  # type: ignore[arg-type]
                node.enrol(token)
                nodes.append(node)
            beats = Beats(nodes)
            assert nodes[5].heartbeat().status_code == 200  # its last: node 5 goes silent from here
            beats.muted.add(nodes[5].agent_id)
            silent_from = time.monotonic()
            beats.start()
            sent: Counter[str] = Counter()  # reports acknowledged per node

            # 1. With both replicas: nodes 0-2 deviate; node 0 then clears at once, its two reports
            # taken by different replicas (round robin): judged in its order, it ends passing.
            for node in nodes[:3]:
                _deliver(node, _ports(node, deviating=True))
                sent[node.agent_id] += 1
            _deliver(nodes[0], _ports(nodes[0], deviating=False))
            sent[nodes[0].agent_id] += 1

            for hook in hooks:
                _wait_hook(hook, lambda h: _triggered(h, nodes[1:3]), 30, "triggers of nodes 1-2")

            # 2. Kill one replica with heartbeats flowing and reports arriving.
            resent = 0  # reports sent again after the balancer answered an error or the connection broke
            killer = threading.Timer(0.3, _kill_holding_no_notification, args=(group, 0, pg_database))
            killer.start()
            for node in nodes[3:5]:  # deviations around the kill, retried until acknowledged
                for _ in range(3):
                    resent += _deliver(node, _ports(node, deviating=True)) - 1
                    sent[node.agent_id] += 1
                    time.sleep(0.1)
            killer.join()
            assert [r.name for r in group.alive()] == ["replica1"]

            # 3. The survivor does every duty: the new deviations, the silence, their notifications.
            for hook in hooks:
                _wait_hook(hook, lambda h: _triggered(h, nodes[1:5]), 30, "triggers of nodes 1-4")
                _wait_hook(
                    hook, lambda h: _kinds(h)[(nodes[5].agent_id, "trigger")] == 1, SILENT_AFTER_S + 30, "silence"
                )
            print(f"silence noticed {time.monotonic() - silent_from:.1f} s after the last heartbeat")
            time.sleep(2)  # more duty and dispatch rounds: nothing is opened or sent again
            beats.stopping.set()
            beats.join()

            # exactly once: one incident per node and cause, one notification per incident, event and channel
            incidents = _rows(pg_database, "SELECT id, agent_id, rule_id, status FROM incidents ORDER BY id")
            causes = Counter((r["agent_id"], r["rule_id"]) for r in incidents)
            assert set(causes.values()) == {1}, incidents
            expected = {(n.agent_id, PLAINTEXT_RULE) for n in nodes[1:5]} | {(nodes[5].agent_id, "silent")}
            # node 0's deviation lasted a moment: an incident (resolved) only if a duty round fell in it
            assert set(causes) - {(nodes[0].agent_id, PLAINTEXT_RULE)} == expected, incidents
            assert all(r["status"] == "resolved" for r in incidents if r["agent_id"] == nodes[0].agent_id)
            for hook in hooks:
                deliveries = Counter((d.incident["id"], d.event) for d in hook.deliveries)
                assert set(deliveries.values()) == {1}, deliveries
                assert _kinds(hook)[(nodes[0].agent_id, "resolve")] <= 1
            # node 0's deviation and its clearing arrived at different replicas: judged in its order
            [finding] = _rows(
                pg_database,
                "SELECT status FROM findings WHERE agent_id = :a AND rule_id = :r",
                a=nodes[0].agent_id,
                r=PLAINTEXT_RULE,
            )
            assert finding["status"] == "passing"
            # nothing lost, nothing stored twice, nothing left unjudged
            stored = Counter(
                r["agent_id"] for r in _rows(pg_database, "SELECT agent_id FROM reports WHERE agent_id IS NOT NULL")
            )
            assert stored == sent, (stored, sent)
            assert _rows(pg_database, "SELECT report_pk FROM pending_evaluation") == []
            assert beats.acknowledged > 0
            print(
                f"heartbeats acknowledged {beats.acknowledged}, refused or cut off around the kill {beats.refused}; "
                f"reports {sum(sent.values())}, of them sent again {resent}"
            )
            print(f"checks at {time.monotonic() - began:.1f} s")
            verify = _cli(group, "verify")
            assert verify.returncode == 0, verify.stdout + verify.stderr
            assert verify.stdout.strip().endswith(f"verified {len(nodes)} node chain(s): all intact"), verify.stdout
            print(f"verified at {time.monotonic() - began:.1f} s")
    finally:
        if beats is not None:
            beats.stopping.set()
        for hook in hooks:
            hook.stop()


def test_the_operators_haproxy_example_is_valid_for_debians_haproxy(tmp_path: Path, haproxy: None) -> None:
    """packaging/haproxy/tillsyn-central.cfg as shipped, with a certificate of the test's own."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    argv = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    argv += ["-days", "1", "-subj", "/CN=tillsyn.example.net", "-keyout", str(key), "-out", str(cert)]
    made = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    pem = tmp_path / "tillsyn.pem"
    pem.write_text(cert.read_text() + key.read_text())
    shipped = (ROOT / "packaging" / "haproxy" / "tillsyn-central.cfg").read_text()
    assert "/etc/haproxy/tillsyn.pem" in shipped and "/run/haproxy/admin.sock" in shipped
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        shipped.replace("/etc/haproxy/tillsyn.pem", str(pem)).replace("/run/haproxy/admin.sock", str(tmp_path / "s"))
    )
    checked = subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
