"""The outbox: delivered once, a down channel delays only its own, two dispatchers never double-send."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from central.alerting import dispatch
from central.alerting import incidents as incident_rounds
from central.alerting.channels import build_sender
from central.alerting.dispatch import dispatch_once
from central.alerting.incidents import run_round
from central.alerting.settings import Alerting
from central.db.engine import make_engine, read_tx, write_tx
from central.db.schema import incident_events, incidents, outbox
from central.runtime.service import Centre
from tests.central.alerting.channels.helpers import Reply, free_port, http_receiver
from tests.central.alerting.two_webhooks import deviate, two_webhooks
from tests.central.conftest import Node, new_token


def _timeline(centre: Centre) -> List[Tuple[str, Optional[str]]]:
    with read_tx(centre.engine) as conn:
        return [(r.kind, r.channel) for r in conn.execute(select(incident_events).order_by(incident_events.c.id))]


def test_down_channel_waits_without_blocking_the_other(
    client: TestClient, centre: Centre, node: Node, tmp_path: Path
) -> None:
    with http_receiver() as up:
        settings = two_webhooks(tmp_path, up.url, f"http://127.0.0.1:{free_port()}/hook")
        senders = {name: build_sender(name, channel) for name, channel in settings.channels.items()}
        deviate(node)
        with write_tx(centre.engine) as conn:
            run_round(conn, settings, datetime.now(timezone.utc))
        result = dispatch_once(centre.engine, settings, senders)
        assert (result.sent, result.failed) == (1, 1)
        [delivered] = up.requests
        body = json.loads(delivered.body)
        assert body["event"] == "trigger" and body["incident"]["rule_id"] == "ports-no-plaintext-remote"
        assert ("notified", "up") in _timeline(centre) and ("notify_failed", "down") in _timeline(centre)
        with read_tx(centre.engine) as conn:
            waiting = conn.execute(select(outbox).where(outbox.c.channel == "down")).mappings().one()
        assert waiting["sent_at"] is None and waiting["attempts"] == 1
        assert "unreachable" in waiting["last_error"] or "refused" in waiting["last_error"]
        assert waiting["next_attempt_at"] > datetime.now(timezone.utc)

        # nothing due yet: a second round sends nothing twice
        assert dispatch_once(centre.engine, settings, senders).sent == 0
        assert len(up.requests) == 1

        # the receiver comes back (same URL now answering) and its turn comes: delivered, once
        with http_receiver() as back:
            settings2 = two_webhooks(tmp_path, up.url, back.url)
            senders2 = {name: build_sender(name, channel) for name, channel in settings2.channels.items()}
            with write_tx(centre.engine) as conn:
                conn.execute(update(outbox).values(next_attempt_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
            assert dispatch_once(centre.engine, settings2, senders2).sent == 1
            assert len(back.requests) == 1 and len(up.requests) == 1
            assert dispatch_once(centre.engine, settings2, senders2).sent == 0


def _as_two_replicas(work: Callable[[int], None], engines: List[Any], timeout: float) -> None:
    """``work(0)`` and ``work(1)`` at once, as two centre processes with an engine each; then the engines go."""
    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    for engine in engines:
        engine.dispose()


def test_two_dispatchers_send_each_notification_once(
    client: TestClient, centre: Centre, tmp_path: Path, database_url: str
) -> None:
    """Two dispatchers with their own engines (as two centre processes) work one outbox at once."""
    with http_receiver() as up:
        # a slow receiver keeps both dispatchers busy at the same time
        up.replies.extend(Reply(delay_s=0.02) for _ in range(200))
        settings = Alerting.model_validate(
            {
                "channels": {"up": {"type": "webhook", "url": up.url, "secret_file": str(tmp_path / "k")}},
                "routes": [{"channels": ["up"]}],
            }
        )
        (tmp_path / "k").write_text("key")
        nodes = []
        for i in range(12):
            n = Node(client, hostname=f"n{i}")
            n.enrol(new_token(centre))
            deviate(n)
            nodes.append(n)
        with write_tx(centre.engine) as conn:
            run_round(conn, settings, datetime.now(timezone.utc))
        with read_tx(centre.engine) as conn:
            queued = len(conn.execute(select(outbox.c.id)).all())
        assert queued >= 12
        engines = [make_engine(database_url), make_engine(database_url)]
        senders = {"up": build_sender("up", settings.channels["up"])}
        results: Dict[int, Any] = {}

        def work(index: int) -> None:
            total = 0
            while True:
                sent = dispatch_once(engines[index], settings, senders, owner=f"replica-{index}").sent
                if not sent:
                    break
                total += sent
            results[index] = total

        _as_two_replicas(work, engines, 60)
        ids = [json.loads(r.body)["incident"]["id"] for r in up.requests]
        assert len(ids) == queued == results[0] + results[1]
        assert len(set(ids)) == len(ids)  # no notification went out twice
        with read_tx(centre.engine) as conn:
            assert conn.execute(select(outbox.c.id).where(outbox.c.sent_at.is_(None))).all() == []


def test_a_channel_slower_than_the_lease_is_still_sent_once_by_two_dispatchers(
    client: TestClient, centre: Centre, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch is sent row after row; when the whole batch takes longer than a lease (here a 1 s
    lease and 0.4 s a send, standing for 120 s and 50 slow mails), each row is leased again as
    its turn comes, and a row another process took over is left to it: nothing goes out twice."""
    monkeypatch.setattr(dispatch, "LEASE_S", 1)
    with http_receiver() as slow:
        slow.replies.extend(Reply(delay_s=0.4) for _ in range(50))
        (tmp_path / "k").write_text("key")
        settings = Alerting.model_validate(
            {
                "channels": {"slow": {"type": "webhook", "url": slow.url, "secret_file": str(tmp_path / "k")}},
                "routes": [{"channels": ["slow"]}],
            }
        )
        for i in range(8):
            n = Node(client, hostname=f"n{i}")
            n.enrol(new_token(centre))
            deviate(n)
        with write_tx(centre.engine) as conn:
            run_round(conn, settings, datetime.now(timezone.utc))
        with read_tx(centre.engine) as conn:
            queued = len(conn.execute(select(outbox.c.id)).all())
        assert queued >= 8
        engines = [make_engine(database_url), make_engine(database_url)]
        senders = {"slow": build_sender("slow", settings.channels["slow"])}
        sent: Dict[int, int] = {0: 0, 1: 0}

        def unsent() -> int:
            with read_tx(engines[0]) as conn:
                return len(conn.execute(select(outbox.c.id).where(outbox.c.sent_at.is_(None))).all())

        def work(index: int) -> None:
            deadline = time.monotonic() + 60
            while unsent() and time.monotonic() < deadline:
                sent[index] += dispatch_once(engines[index], settings, senders, owner=f"replica-{index}").sent
                time.sleep(0.05)

        _as_two_replicas(work, engines, 90)
        ids = [json.loads(r.body)["incident"]["id"] for r in slow.requests]
        assert len(ids) == len(set(ids)) == queued  # each once, none lost
        assert sent[0] + sent[1] == queued and min(sent.values()) > 0  # both took part
    notified = [c for kind, c in _timeline(centre) if kind == "notified"]
    assert len(notified) == queued


def test_reminders_read_when_each_channel_last_heard_of_any_number_of_open_incidents(
    client: TestClient, centre: Centre, node: Node, tmp_path: Path
) -> None:
    """The ids are asked in lists of at most 1,000: both databases limit a statement's parameters,
    and a large fleet has more open incidents than that."""
    settings = two_webhooks(tmp_path, "http://127.0.0.1:9/up", "http://127.0.0.1:9/down")
    deviate(node)
    with write_tx(centre.engine) as conn:
        run_round(conn, settings, datetime.now(timezone.utc))
    with read_tx(centre.engine) as conn:
        (real,) = conn.execute(select(incidents.c.id)).scalars().all()
        asked = [*range(10_000_000, 10_070_000), real]  # more than either database takes in one statement
        sent = incident_rounds._last_sent(conn, asked)
    assert list(sent) == [real] and sorted(sent[real]) == ["down", "up"]
