"""``tillsyn-agent status``'s line on the centre's own health, from /healthz's answer."""

from __future__ import annotations

from agent.centre_health import ask, describe
from tests.centre_process import free_port


def test_each_answer_of_healthz_reads_as_one_line() -> None:
    assert describe(200, {"status": "ok", "reasons": []}) == "ok"
    degraded = {"status": "degraded", "reasons": ["channel mail has failed for 17 min", "the duty round is late"]}
    assert describe(200, degraded) == "degraded: channel mail has failed for 17 min; the duty round is late"
    assert describe(503, {"status": "unavailable", "error": "database: OperationalError"}) == (
        "unavailable: database: OperationalError"
    )
    assert describe(404, None) == "unknown: /healthz answered 404 without a JSON object"
    assert describe(200, {"status": "sideways"}) == "unknown: /healthz answered 200 with status 'sideways'"


def test_a_centre_that_cannot_be_reached_is_unknown_not_ok() -> None:
    line = ask(f"http://127.0.0.1:{free_port()}", None, timeout=2)
    assert line.startswith("unknown: the centre could not be asked (ConnectionError: "), line
