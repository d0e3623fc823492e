"""Signed load beside the real agents: simulated nodes (own Ed25519 keys, real enrolment) that
each send their reports one after another, as an agent empties its spool, and retry the same
signed bytes until the centre answers 200 (a report id the centre already holds comes back as a
duplicate: it is stored once).  What each node sent is kept to check the ledger against."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Dict, List, Sequence, Tuple

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from evidence.model import Evidence
from evidence.signing import new_private_key, public_key_text, sign
from evidence.wire import Heartbeat, Report, canonical
from tests.centre_process import CentreProcess


@dataclass
class SignedNode:
    index: int
    key: Ed25519PrivateKey = field(default_factory=new_private_key)
    agent_id: str = ""
    seq: int = 0
    hb_seq: int = 0
    sent: List[str] = field(default_factory=list)
    """Report ids acknowledged by the centre (stored or duplicate), in order."""
    duplicates: int = 0
    failures: Dict[str, int] = field(default_factory=dict)
    """Attempts that got no 200, by what happened (a status code or an exception's name)."""

    def enrol(self, centre: CentreProcess, token: str) -> None:
        body = json.dumps(
            {
                "token": token,
                "hostname": f"load-{self.index:03d}.example.net",
                "machine_id": uuid.uuid4().hex,
                "public_key": public_key_text(self.key),
                "agent_version": "load",
            }
        ).encode()
        answer = requests.post(
            centre.url + "/api/v1/enrol", data=body, headers={"X-Tillsyn-Signature": sign(self.key, body)}, timeout=30
        )
        answer.raise_for_status()
        self.agent_id = answer.json()["agent_id"]

    def next_report(self, template: Sequence[Evidence]) -> Tuple[str, bytes, Dict[str, str]]:
        self.seq += 1
        now = datetime.now(timezone.utc)
        evidence = tuple(replace(r, collected_at=now) for r in template)
        report = Report(self.agent_id, uuid.uuid4().hex, self.seq, now, "load", evidence)
        raw = canonical(report.to_dict())
        batch = json.dumps({"reports": [{"body": base64.b64encode(raw).decode(), "signature": sign(self.key, raw)}]})
        data = batch.encode()
        headers = {
            "X-Tillsyn-Agent": self.agent_id,
            "X-Tillsyn-Signature": sign(self.key, data),
            "Content-Type": "application/json",
        }
        return report.report_id, data, headers

    def next_heartbeat(self) -> Tuple[bytes, Dict[str, str]]:
        self.hb_seq += 1
        beat = Heartbeat(self.agent_id, self.hb_seq, datetime.now(timezone.utc), spool_depth=0)
        body = canonical(beat.to_dict())
        return body, {
            "X-Tillsyn-Agent": self.agent_id,
            "X-Tillsyn-Signature": sign(self.key, body),
            "Content-Type": "application/json",
        }

    def _failed(self, what: str) -> None:
        self.failures[what] = self.failures.get(what, 0) + 1


class SignedLoad:
    """``nodes`` simulated nodes, each in its own thread, sending until :meth:`stop`."""

    def __init__(self, centre: CentreProcess, nodes: int, template: Sequence[Evidence]) -> None:
        self.centre = centre
        self.template = tuple(template)
        token = centre.token("--uses", str(nodes))
        self.nodes = [SignedNode(i) for i in range(nodes)]
        for node in self.nodes:
            node.enrol(centre, token)
        self._stop = threading.Event()
        self.errors: List[str] = []
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in self.nodes]

    def start(self) -> SignedLoad:
        for thread in self._threads:
            thread.start()
        return self

    def acknowledged(self) -> int:
        return sum(len(n.sent) for n in self.nodes)

    def failures(self) -> Dict[str, int]:
        total: Dict[str, int] = {}
        for node in self.nodes:
            for what, count in node.failures.items():
                total[what] = total.get(what, 0) + count
        return total

    def stop(self) -> None:
        """Stop after each node's report in flight is acknowledged (retried until it is)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(120)
            assert not thread.is_alive(), "a load node did not get its last report acknowledged within 120 s"
        assert not self.errors, self.errors

    def _post(
        self, node: SignedNode, path: str, data: bytes, headers: Dict[str, str], replay_ok: bool = False
    ) -> Dict[str, object]:
        """POST until 200, the same bytes every time; what the centre answered.

        ``replay_ok``: a heartbeat sent again after an attempt that got no answer may have been
        recorded by it; the centre then refuses the same number as a replay (409), which is an answer.
        """
        session = requests.Session()
        unanswered = False
        while True:
            try:
                answer = session.post(self.centre.url + path, data=data, headers=headers, timeout=30)
            except requests.RequestException as err:
                node._failed(type(err).__name__)
                session, unanswered = requests.Session(), True
                time.sleep(0.2)
                continue
            if answer.status_code == 200:
                body: Dict[str, object] = answer.json()
                return body
            node._failed(str(answer.status_code))
            if replay_ok and unanswered and answer.status_code == 409:
                return {}
            unanswered = unanswered or answer.status_code >= 500
            if 400 <= answer.status_code < 500 and answer.status_code != 429:
                raise AssertionError(f"{path} refused for good ({answer.status_code}): {answer.text}")
            time.sleep(0.2)

    def _run(self, node: SignedNode) -> None:
        try:
            self._send(node)
        except Exception as err:  # noqa: BLE001  reported by stop(), which the test calls
            self.errors.append(f"load node {node.index}: {type(err).__name__}: {err}")

    def _send(self, node: SignedNode) -> None:
        while not self._stop.is_set():
            report_id, data, headers = node.next_report(self.template)
            answer = self._post(node, "/api/v1/reports", data, headers)
            if report_id in list(answer.get("duplicates") or []):  # type: ignore[call-overload]
                node.duplicates += 1
            else:
                assert report_id in list(answer.get("stored") or []), answer  # type: ignore[call-overload]
            node.sent.append(report_id)
            if node.seq % 3 == 0:
                body, beat_headers = node.next_heartbeat()
                self._post(node, "/api/v1/heartbeat", body, beat_headers, replay_ok=True)
            time.sleep(0.05)
