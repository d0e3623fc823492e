"""What a report and a heartbeat cost before anything is stored: the checks the centre must make.

The ingest goal compares the centre's ingest rate with its rate on an empty endpoint
(``/livez``).  Before it may store a report the centre must check two Ed25519
signatures (the request's and the report's own), read the batch, and parse and
type-check the report; a heartbeat needs one signature and its parsing.  These are
the centre's own functions (``central.ingest.receive``, ``evidence.signing``), timed here in
the load generator's process on requests built exactly as in the timed phases, so the
benchmark can show how much of the goal's budget they take before any storing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Dict, Sequence, Tuple

from bench.load_nodes import Node
from central.config import Limits
from central.ingest.receive import parse_signed, prepare_heartbeat, unpack_reports
from evidence.model import Evidence
from evidence.signing import public_key_text, verify

ROUNDS = 2000


@dataclass(frozen=True)
class Floor:
    """CPU milliseconds per request, each step timed on its own."""

    report_signatures_ms: float
    """Both signatures of a one-report batch (cryptography lets go of the interpreter lock meanwhile)."""
    report_read_ms: float
    """The batch's JSON and base64 (``unpack_reports``)."""
    report_parse_ms: float
    """Parsing and type-checking the report, hashing its body (``parse_signed``)."""
    heartbeat_signature_ms: float
    heartbeat_parse_ms: float
    """Parsing and checking a heartbeat (``prepare_heartbeat``)."""

    @property
    def report_interpreter_ms(self) -> float:
        """What a report costs the interpreter before storing, the HTTP work not counted."""
        return self.report_read_ms + self.report_parse_ms


def _split(data: bytes) -> Tuple[Dict[str, str], bytes]:
    head, body = data.split(b"\r\n\r\n", 1)
    headers = {}
    for line in head.decode("ascii").split("\r\n")[1:]:
        name, value = line.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    return headers, body


def _ms(work: Callable[[], object], rounds: int) -> float:
    work()  # warm: first-call costs are not what a steady centre pays
    started = time.process_time()
    for _ in range(rounds):
        work()
    return (time.process_time() - started) / rounds * 1000


def measure(template: Sequence[Evidence], rounds: int = ROUNDS) -> Floor:
    node = Node(0)
    node.agent_id = "f" * 32
    key = public_key_text(node.key)
    limits = Limits()
    headers, batch = _split(node.report(template).data)
    signed = unpack_reports(batch, limits)
    report = signed[0]
    beat_headers, beat_body = _split(node.heartbeat().data)
    beat_signature = beat_headers["x-tillsyn-signature"]
    now = datetime.now(timezone.utc)

    def report_signatures() -> None:
        verify(key, batch, headers["x-tillsyn-signature"])
        verify(key, report.raw, report.signature)

    return Floor(
        report_signatures_ms=_ms(report_signatures, rounds),
        report_read_ms=_ms(lambda: unpack_reports(batch, limits), rounds),
        report_parse_ms=_ms(lambda: parse_signed(signed, node.agent_id), rounds),
        heartbeat_signature_ms=_ms(lambda: verify(key, beat_body, beat_signature), rounds),
        heartbeat_parse_ms=_ms(lambda: prepare_heartbeat(beat_body, node.agent_id, limits, now), rounds),
    )
