"""The pipeline read from the database (SQLite and PostgreSQL) and the health checks judged on it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agent.centre_health import describe
from central.alerting.channels import build_sender
from central.alerting.dispatch import dispatch_once
from central.alerting.incidents import run_round
from central.api.app import create_app
from central.config import Health
from central.db.engine import read_tx, write_tx
from central.db.schema import agents
from central.runtime import pipeline as module
from central.runtime.health import Problem, assess
from central.runtime.pipeline import Channel, Pipeline, read_pipeline
from central.runtime.service import Centre, open_centre
from tests.central.alerting.channels.helpers import free_port, http_receiver
from tests.central.alerting.two_webhooks import deviate, two_webhooks
from tests.central.conftest import Node, make_config, new_token


def test_a_down_channel_is_read_as_failing_and_judged_so(
    client: TestClient, centre: Centre, node: Node, tmp_path: Path
) -> None:
    with http_receiver() as up:
        settings = two_webhooks(tmp_path, up.url, f"http://127.0.0.1:{free_port()}/hook")
        senders = {name: build_sender(name, channel) for name, channel in settings.channels.items()}
        deviate(node)
        with write_tx(centre.engine) as conn:
            run_round(conn, settings, datetime.now(timezone.utc))
        sent = dispatch_once(centre.engine, settings, senders)
    assert sent.attempts == {("up", "trigger", True): 1, ("down", "trigger", False): 1}

    later = datetime.now(timezone.utc) + timedelta(seconds=120)
    with read_tx(centre.engine) as conn:
        pipeline = read_pipeline(conn, centre.policy.policy, ["up", "down", "quiet"], now=later)
    down, up_, quiet = pipeline.channels["down"], pipeline.channels["up"], pipeline.channels["quiet"]
    assert down.waiting == 1 and 119 < down.oldest_waiting_s < 180 and 119 < down.failing_s < 180
    assert down.since_delivery_s is None and down.last_error
    assert (up_.waiting, up_.failing_s, up_.oldest_waiting_s) == (0, 0.0, 0.0)
    assert up_.since_delivery_s is not None and 119 < up_.since_delivery_s < 180
    assert quiet == Channel()  # configured, never used: present, all zero
    assert pipeline.open_incidents == {"high": 1}
    assert pipeline.findings[("M07", "failing")] == 1
    assert sum(pipeline.agent_versions.values()) == 1

    [problem] = assess(Health(channel_failing_s=60), 10, pipeline, since_duty_ok_s=5)
    assert problem.check == "channel_failing"
    assert problem.reason.startswith("channel down has failed for 2 min, 1 notification(s) wait: "), problem.reason
    assert assess(Health(channel_failing_s=600, outbox_age_s=600), 10, pipeline, since_duty_ok_s=5) == []


def test_an_old_notification_that_was_never_tried_is_an_outbox_stuck() -> None:
    pipeline = Pipeline(channels={"mail": Channel(waiting=3, oldest_waiting_s=1900.0)})
    [problem] = assess(Health(outbox_age_s=900), 10, pipeline, since_duty_ok_s=None)
    assert problem.check == "outbox_stuck"
    assert problem.reason == "channel mail's oldest notification has waited 32 min (3 waiting; limit 15 min)"


def test_duties_are_overdue_after_six_rounds_or_a_minute_or_as_configured() -> None:
    assert assess(Health(), 10, Pipeline(), since_duty_ok_s=59) == []
    [late] = assess(Health(), 10, Pipeline(), since_duty_ok_s=61)
    assert late.check == "duties_overdue"
    assert late.reason == (
        "the duty round last succeeded 61 s ago (it runs every 10 s; overdue after 60 s): "
        "incidents are neither opened nor resolved meanwhile"
    )
    assert assess(Health(), 30, Pipeline(), since_duty_ok_s=170) == []  # 6 x 30 s
    assert [p.check for p in assess(Health(duty_overdue_s=20), 10, None, since_duty_ok_s=21)] == ["duties_overdue"]
    assert assess(Health(duty_overdue_s=20), 10, None, since_duty_ok_s=None) == []  # a centre without duties


def test_a_duty_round_is_timed_and_its_success_stamped(centre: Centre) -> None:
    registry = centre.metrics.registry
    assert registry.get_sample_value("tillsyn_duty_round_seconds_count") == 0
    assert registry.get_sample_value("tillsyn_duty_last_success_timestamp_seconds") == 0
    before = datetime.now(timezone.utc).timestamp()
    assert centre.run_duties().ran
    assert registry.get_sample_value("tillsyn_duty_round_seconds_count") == 1
    stamped = registry.get_sample_value("tillsyn_duty_last_success_timestamp_seconds")
    assert stamped is not None and stamped >= before - 1

    def broken() -> None:
        raise RuntimeError("database gone")

    # a round that fails
    centre._run_duties = broken  # type: ignore[method-assign,assignment]
    with pytest.raises(RuntimeError):
        centre.run_duties()
    assert registry.get_sample_value("tillsyn_duty_round_seconds_count") == 2  # timed all the same
    assert registry.get_sample_value("tillsyn_duty_last_success_timestamp_seconds") == stamped  # not a success


def test_agent_versions_are_a_bounded_label_set_the_rarest_counted_as_other(
    client: TestClient, centre: Centre, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "MAX_VERSIONS", 2)
    for version in ("1.0", "1.0", "0.9", "1.1"):
        node = Node(client, hostname=f"web-{version}.example.net")
        node.enrol(new_token(centre))
        with write_tx(centre.engine) as conn:
            conn.execute(agents.update().where(agents.c.id == node.agent_id).values(agent_version=version))
    with read_tx(centre.engine) as conn:
        read = read_pipeline(conn, centre.policy.policy, [])
    assert read.agent_versions == {"1.0": 2, "0.9": 1, "other": 1}


def test_healthz_names_channels_only_to_this_machine_and_the_metrics_token(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = tmp_path / "metrics.token"
    token.write_text("a-long-random-metrics-token\n")
    centre = open_centre(make_config(tmp_path, database_url, metrics={"bearer_token_file": str(token)}))
    named = "channel globex-pager has failed for 17 min, 3 notification(s) wait: HTTP 401 from the receiver"
    problems = [Problem("channel_failing", named)]
    monkeypatch.setattr(centre, "pipeline_health", lambda: (None, problems))
    try:
        with TestClient(create_app(centre, duties=False)) as client:  # its address is not loopback
            anyone = client.get("/healthz").json()
            told = client.get("/healthz", headers={"Authorization": "Bearer a-long-random-metrics-token"}).json()
    finally:
        centre.stop()
    assert (anyone["status"], anyone["checks"]) == ("degraded", ["channel_failing"])
    assert anyone["reasons"] == ["an alert channel has been failing"]  # an agent on a tenant's node, say
    assert describe(200, anyone) == "degraded: an alert channel has been failing"  # tillsyn-agent status
    assert told["reasons"] == [named]
