"""What a stalled request, an odd byte in a path, a clock stepped back on a full disk or a wake-up a
moment early does to the daemon: it goes on, and says so (docs/agent.md)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator, List

import pytest

import agent.daemon as daemon_module
from agent import sequence_numbers
from agent.collect import run_collectors
from agent.config import from_mapping
from agent.notify import Notifier
from agent.safe_text import utf8_safe
from agent.uplink import heartbeats, pace
from agent.uplink.network_thread import Courier
from collectors.base import CollectorSpec, Context
from evidence.model import Outcome
from tests.agent.daemon_helpers import agent_cli, agent_yaml
from tests.agent.fake_centre import FakeCentre, point_at


@pytest.fixture
def drip() -> Iterator[Any]:
    """A server that answers a request's head at once, then its body one byte every 0.5 s: the
    transport's read timeout (a wait for one byte) never ends such a request."""
    hits: List[float] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            hits.append(time.monotonic())
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
            while not stop.is_set():
                try:
                    conn.sendall(b" ")
                except OSError:
                    return
                stop.wait(0.5)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield type("Drip", (), {"url": f"http://127.0.0.1:{server.getsockname()[1]}", "hits": hits})
    stop.set()
    server.close()


def test_a_request_that_never_ends_is_abandoned_and_the_agent_talks_again(
    tmp_path: Path, drip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeCentre()
    try:
        (tmp_path / "agent.yaml").write_text(agent_yaml(tmp_path, ports=None, heartbeat=5))
        config = tmp_path / "agent.yaml"
        enrolled = agent_cli(tmp_path / "state", config, "enroll", "--server", fake.url, "--token", "t")
        assert enrolled.returncode == 0, enrolled.stderr
    finally:
        fake.stop()
    point_at(tmp_path / "state", drip.url)
    monkeypatch.setattr(pace, "JOB_DEADLINE_S", 2.0)  # stands for 90 s
    monkeypatch.setattr(daemon_module, "run_collectors", lambda config, only=None, running=None, **_: [])
    daemon = daemon_module.Daemon(tmp_path / "state", tmp_path / "agent.yaml", True, notifier=Notifier({}))
    threading.Timer(7, lambda: (setattr(daemon, "stopping", True), daemon.wake.set())).start()
    started = time.monotonic()
    assert daemon.run() == 0
    assert time.monotonic() - started < 12
    assert len(drip.hits) >= 2  # abandoned after 2 s, then asked again (before: 1 request, for ever)
    assert drip.hits[1] - drip.hits[0] >= 2.0
    said = [e for e in daemon.recent.items() if "was abandoned" in e]
    assert said == ["centre: a heartbeat took over 2 s and was abandoned; connecting again"]


def test_a_finished_job_is_taken_even_before_its_thread_has_ended(monkeypatch: pytest.MonkeyPatch) -> None:
    """The job wakes the loop as soon as it has a result, a moment before its thread ends."""
    wake = threading.Event()
    courier = Courier(wake)
    courier.start("heartbeat", lambda: 7)
    assert wake.wait(5)
    monkeypatch.setattr(threading.Thread, "is_alive", lambda self: True)  # the thread not quite gone yet
    done = courier.take()
    assert done is not None and (done.name, done.value, done.error) == ("heartbeat", 7, None)
    assert not courier.busy and courier.take() is None


def test_heartbeat_numbers_stay_above_the_last_one_used_when_the_clock_steps_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk empties heartbeat.json (numbering goes on from the clock); NTP then steps the
    clock back an hour: the next number must still be above the one this process used."""
    (tmp_path / "heartbeat.json").write_bytes(b"")  # as a full disk leaves it
    monkeypatch.setattr(sequence_numbers, "clock_floor", lambda: 1_800_000_000_000)
    first, _ = heartbeats.next_seq(tmp_path)
    (tmp_path / "heartbeat.json").write_bytes(b"")
    monkeypatch.setattr(sequence_numbers, "clock_floor", lambda: 1_800_000_000_000 - 3_600_000)
    second, _ = heartbeats.next_seq(tmp_path, at_least=first)
    assert second == first + 1


def test_paths_that_are_not_utf8_are_reported_not_fatal() -> None:
    """psutil and os hand back a path made in Latin-1 with lone surrogates; such a string cannot be
    encoded, so it would stop the report from being signed and spooled at all."""
    odd = "/home/caf\udce9/bin/srv"
    assert utf8_safe({"exe": odd, "args": [odd], "n": 1}) == {
        "exe": "/home/caf\\xe9/bin/srv",
        "args": ["/home/caf\\xe9/bin/srv"],
        "n": 1,
    }
    assert utf8_safe("broken \ud800 half") == "broken \\ud800 half"

    def collect(_ctx: Context) -> Outcome:
        return Outcome.from_parts({"sockets": [{"process": {"exe": odd}}]}, [])

    spec = CollectorSpec("ports", "1", ("M07",), collect, {}, lambda observed: "")
    config = from_mapping({"collectors": {"ports": {}}}, None)
    (record,) = run_collectors(config, only=["ports"], registry={"ports": spec})
    assert record.observed["sockets"][0]["process"]["exe"] == "/home/caf\\xe9/bin/srv"
    record.to_dict()  # and it encodes
    assert str(record.observed).encode("utf-8")


def test_a_round_that_cannot_be_made_a_report_is_dropped_and_the_next_one_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kept, it would be tried again on every turn and no other round would ever start."""
    fake = FakeCentre()
    try:
        config = tmp_path / "agent.yaml"
        config.write_text(agent_yaml(tmp_path, ports=10, heartbeat=5))  # a round every 10 s
        enrolled = agent_cli(tmp_path / "state", config, "enroll", "--server", fake.url, "--token", "t")
        assert enrolled.returncode == 0, enrolled.stderr
        monkeypatch.setattr(daemon_module, "run_collectors", lambda config, only=None, running=None, **_: [])
        daemon = daemon_module.Daemon(tmp_path / "state", config, True, notifier=Notifier({}))
        real_add, calls, spooled = daemon.spool.add, [], []

        def add(*args: Any) -> Any:
            calls.append(time.monotonic())
            if len(calls) == 1:
                raise TypeError("cannot serialise the first round")
            spooled.append(real_add(*args))
            return spooled[-1]

        monkeypatch.setattr(daemon.spool, "add", add)
        threading.Timer(13, lambda: (setattr(daemon, "stopping", True), daemon.wake.set())).start()
        assert daemon.run() == 0
        assert len(calls) == 2  # once each round, not again and again
        assert [e for e in daemon.recent.items() if e.startswith("report not made")] == [
            "report not made: TypeError: cannot serialise the first round"
        ]
        assert len(spooled) == 1 and spooled[0].seq >= 1  # the next round became a report
    finally:
        fake.stop()
