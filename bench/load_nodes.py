"""Simulated nodes for the load generator: own keys, real enrolment, pre-signed messages.

Reports are built from a real ``tillsyn-agent collect --json`` of this machine
(captured once), so each one carries the five collectors' evidence in the real
format and is as large as a real node's report.  Everything is signed before the
timed phases, so the client spends its time on the wire, not on Ed25519.
"""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.load_http import Request, build
from evidence.model import Evidence
from evidence.signing import new_private_key, public_key_text, sign
from evidence.wire import Heartbeat, Report, canonical


def capture_template(agent_cli: Path, config: Path) -> Tuple[Evidence, ...]:
    """One real collection of this machine, as the evidence every simulated node reports."""
    out = subprocess.run(
        [str(agent_cli), "--config", str(config), "collect", "--json"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    return tuple(Evidence.from_dict(record) for record in json.loads(out))


@dataclass
class Node:
    index: int
    key: Ed25519PrivateKey = field(default_factory=new_private_key)
    machine_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    agent_id: str = ""
    seq: int = 0
    hb_seq: int = 0

    @property
    def hostname(self) -> str:
        return f"bench-{self.index:05d}.example.net"

    def enrolment(self, token: str) -> bytes:
        body = json.dumps(
            {
                "token": token,
                "hostname": self.hostname,
                "machine_id": self.machine_id,
                "public_key": public_key_text(self.key),
                "agent_version": "bench",
            }
        ).encode()
        return build("POST", "/api/v1/enrol", body, {"X-Tillsyn-Signature": sign(self.key, body)})

    def report(self, template: Sequence[Evidence], at: Optional[datetime] = None) -> Request:
        """The next report, signed, in a one-report batch (an agent's steady state), signed again;
        collected ``at`` (default: now)."""
        self.seq += 1
        now = at or datetime.now(timezone.utc)
        report = Report(
            self.agent_id,
            uuid.uuid4().hex,
            self.seq,
            now,
            "bench",
            tuple(replace(record, collected_at=now) for record in template),
        )
        raw = canonical(report.to_dict())
        batch = json.dumps(
            {"reports": [{"body": base64.b64encode(raw).decode(), "signature": sign(self.key, raw)}]}
        ).encode()
        headers = {"X-Tillsyn-Agent": self.agent_id, "X-Tillsyn-Signature": sign(self.key, batch)}
        return Request(build("POST", "/api/v1/reports", batch, headers), self.index, report.report_id)

    def heartbeat(self, at: Optional[datetime] = None) -> Request:
        """The next heartbeat, sent ``at`` (default: now); its sequence number is its ``report_id``."""
        self.hb_seq += 1
        beat = Heartbeat(self.agent_id, self.hb_seq, at or datetime.now(timezone.utc), spool_depth=0)
        body = canonical(beat.to_dict())
        headers = {"X-Tillsyn-Agent": self.agent_id, "X-Tillsyn-Signature": sign(self.key, body)}
        return Request(build("POST", "/api/v1/heartbeat", body, headers), self.index, str(self.hb_seq))


def round_robin(nodes: Sequence[Node], count: int, kind: str, template: Sequence[Evidence] = ()) -> List[Request]:
    """``count`` messages, taking the nodes in turn, so each node's sequence numbers rise in order."""
    out = []
    for i in range(count):
        node = nodes[i % len(nodes)]
        out.append(node.report(template) if kind == "report" else node.heartbeat())
    return out


def livez(count: int) -> List[Request]:
    data = build("GET", "/livez")
    return [Request(data)] * count
