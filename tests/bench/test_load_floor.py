"""The benchmark's floor runs the centre's own checks on requests built as in the load phases:
if those functions or the request format change, this fails here rather than in a benchmark run."""

from __future__ import annotations

from bench.load_floor import _split, measure
from bench.load_nodes import Node
from tests.central.conftest import evidence_record


def test_floor_times_each_check_on_a_real_request() -> None:
    floor = measure([evidence_record("ports", {"sockets": []})], rounds=3)
    for value in (
        floor.report_signatures_ms,
        floor.report_read_ms,
        floor.report_parse_ms,
        floor.heartbeat_signature_ms,
        floor.heartbeat_parse_ms,
    ):
        assert 0 < value < 1000


def test_split_gives_the_signed_body_and_its_headers() -> None:
    node = Node(1)
    node.agent_id = "a" * 32
    headers, body = _split(node.heartbeat().data)
    assert headers["x-tillsyn-agent"] == node.agent_id
    assert headers["content-length"] == str(len(body))
    assert body.startswith(b"{") and body.endswith(b"}")
