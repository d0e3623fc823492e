"""One collector crashing or hanging never stops the others."""

from __future__ import annotations

import threading
import time
from typing import List

from agent.collect import Running, run_collectors
from agent.config import from_mapping
from collectors import REGISTRY
from collectors.base import CollectorSpec, Context
from evidence.model import Outcome, Status


def _spec(name: str, collect: object) -> CollectorSpec:
    return CollectorSpec(name=name, version="9", controls=("M99",), collect=collect)  # type: ignore[arg-type]


def _fine(ctx: Context) -> Outcome:
    return Outcome.from_parts({"root": str(ctx.root), "settings": dict(ctx.settings)}, [])


def _crash(ctx: Context) -> Outcome:
    raise RuntimeError("boom: password=hunter2 at https://u:hunter2@example.invalid/x")


RELEASE = threading.Event()


def _hang(ctx: Context) -> Outcome:
    RELEASE.wait(30)
    return Outcome.from_parts({}, [])


def test_crash_and_hang_are_errors_and_others_report() -> None:
    names = ["power", "antivirus", "backup"]
    registry = {
        "power": _spec("power", _fine),
        "antivirus": _spec("antivirus", _crash),
        "backup": _spec("backup", _hang),
    }
    config = from_mapping({"collectors": {"backup": {"timeout": 0.3}}}, None)
    started = time.monotonic()
    try:
        records = {r.collector: r for r in run_collectors(config, only=names, registry=registry)}
    finally:
        RELEASE.set()
    assert time.monotonic() - started < 3
    assert records["power"].status is Status.COMPLETE
    assert records["power"].observed["root"] == "/"
    crashed = records["antivirus"]
    assert crashed.status is Status.ERROR
    assert crashed.error is not None and "RuntimeError: boom" in crashed.error
    assert "hunter2" not in crashed.error
    hung = records["backup"]
    assert hung.status is Status.ERROR and hung.error == "timed out after 0.3 s; abandoned"


def test_disabled_collectors_do_not_run() -> None:
    config = from_mapping({"collectors": {name: {"enabled": name == "ports"} for name in REGISTRY}}, None)
    records = run_collectors(config, registry={"ports": _spec("ports", _fine)})
    assert [r.collector for r in records] == ["ports"]


def test_wrong_return_type_is_an_error() -> None:
    config = from_mapping({}, None)
    records = run_collectors(config, only=["power"], registry={"power": _spec("power", lambda ctx: {"a": 1})})
    assert records[0].status is Status.ERROR
    assert records[0].error == "collector returned dict, not an Outcome"


def test_a_collector_still_stuck_from_an_earlier_round_is_not_started_again() -> None:
    """Each round would otherwise leave one more hung thread, until TasksMax stops every thread start."""
    release = threading.Event()
    calls: List[str] = []

    def stuck(ctx: Context) -> Outcome:
        calls.append("stuck")
        release.wait(30)
        return Outcome.from_parts({}, [])

    registry = {"backup": _spec("backup", stuck), "power": _spec("power", _fine)}
    config = from_mapping({"collectors": {"backup": {"timeout": 0.2}}}, None)
    running = Running()
    try:
        first = {
            r.collector: r for r in run_collectors(config, only=["backup", "power"], registry=registry, running=running)
        }
        assert first["backup"].error == "timed out after 0.2 s; abandoned"
        for _ in range(3):
            again = {
                r.collector: r
                for r in run_collectors(config, only=["backup", "power"], registry=registry, running=running)
            }
            assert again["power"].status is Status.COMPLETE
            hung = again["backup"]
            assert hung.status is Status.ERROR and hung.error is not None
            assert hung.error.startswith(f"still running since {first['backup'].collected_at:%Y-%m-%dT%H:%M:%S}")
        assert calls == ["stuck"], "the stuck collector was started again (one more thread each round)"
    finally:
        release.set()
    # Once its thread has ended, the collector runs again.
    deadline = time.monotonic() + 10
    while running.since("backup") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    records = run_collectors(config, only=["backup"], registry=registry, running=running)
    assert records[0].status is Status.COMPLETE
    assert calls == ["stuck", "stuck"]


def test_a_read_several_collectors_make_is_done_once_a_round() -> None:
    reads: List[int] = []

    def read_table() -> int:
        time.sleep(0.05)  # long enough for the other collectors' threads to ask meanwhile
        reads.append(len(reads) + 1)
        return reads[-1]

    def asks(ctx: Context) -> Outcome:
        return Outcome.from_parts({"table": ctx.once("table", read_table)}, [])

    names = ["ports", "firewall", "service_access"]
    registry = {name: _spec(name, asks) for name in names}
    config = from_mapping({}, None)
    first = run_collectors(config, only=names, registry=registry)
    assert reads == [1] and [r.observed["table"] for r in first] == [1, 1, 1]
    second = run_collectors(config, only=names, registry=registry)
    assert reads == [1, 2] and [r.observed["table"] for r in second] == [2, 2, 2]


def test_a_shared_read_that_fails_is_tried_again_by_the_next_collector() -> None:
    attempts: List[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("/proc went away")
        return "table"

    def asks(ctx: Context) -> Outcome:
        return Outcome.from_parts({"table": ctx.once("table", flaky)}, [])

    registry = {"ports": _spec("ports", asks)}
    config = from_mapping({}, None)
    assert Context().with_settings({}).shared is None  # outside a round, every read is fresh
    [crashed] = run_collectors(config, only=["ports"], registry=registry)
    assert crashed.status is Status.ERROR and crashed.error is not None and "/proc went away" in crashed.error
    [fine] = run_collectors(config, only=["ports"], registry=registry)
    assert fine.observed["table"] == "table" and len(attempts) == 2
