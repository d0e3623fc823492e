"""The updates collector on real apt state in a test root (a local repository with newer versions
built by dpkg-deb), and on dnf's captured output where dnf cannot run here."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import pytest

from collectors import runner
from collectors.base import Context
from collectors.runner import CommandResult
from collectors.settings import validate
from collectors.updates import SPEC, read_simulation
from evidence.model import Outcome, Status
from tests.collectors.updates.helpers import apt_root, apt_update, dnf_root, node_files, repository, write_status
from tests.conftest import FIXTURES
from tests.evidence.shipped import judge_shipped

FIX = FIXTURES / "updates"


class Recorder:
    """The real runner, remembering every command it ran."""

    def __init__(self) -> None:
        self.calls: List[Tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str], **kwargs: Any) -> CommandResult:
        self.calls.append(tuple(argv))
        return runner.run(argv, **kwargs)


def context(root: Path, state: Path, **settings: Any) -> Tuple[Context, Recorder]:
    recorder = Recorder()
    ctx = Context(root=root, settings=validate(settings, SPEC.settings, "collectors.updates"), state_dir=state)
    ctx.run = recorder
    return ctx, recorder


@pytest.fixture(autouse=True)
def _no_memory_cache() -> None:
    read_simulation._MEMORY.clear()


@pytest.fixture
def node(tmp_path: Path) -> Path:
    """A Debian node: two packages installed at 1.0, newer ones in a security and a normal release,
    reboot-required written, two kernels installed and the older one running."""
    security = repository(tmp_path, [("tillsyn-openssl", "1.0+deb12u1")], "Debian-Security", "bookworm-security")
    normal = repository(tmp_path, [("tillsyn-tool", "2.0")], "Debian", "bookworm")
    root = apt_root(tmp_path / "root", [("tillsyn-openssl", "1.0"), ("tillsyn-tool", "1.0")], [security, normal])
    node_files(
        root,
        {
            "/var/run/reboot-required": "*** System restart required ***\n",
            "/var/run/reboot-required.pkgs": "linux-image-6.1.0-28-amd64\ntillsyn-openssl\n",
            "/proc/sys/kernel/osrelease": "6.1.0-9-amd64\n",
            "/boot/vmlinuz-6.1.0-9-amd64": "",
            "/boot/vmlinuz-6.1.0-28-amd64": "",
        },
    )
    return root


def test_pending_security_updates_reboot_and_old_kernel_on_real_apt(node: Path, tmp_path: Path) -> None:
    apt_update(node)
    ctx, recorder = context(node, tmp_path / "state")
    outcome = SPEC.collect(ctx)
    o = outcome.observed
    assert outcome.status is Status.COMPLETE, outcome.gaps
    assert (o["manager"], o["pending_count"], o["security_count"]) == ("apt", 2, 1)
    assert o["pending"] == [
        {"name": "tillsyn-openssl", "current": "1.0", "candidate": "1.0+deb12u1", "security": True,
         "origin": "Debian-Security:bookworm-security"},
        {"name": "tillsyn-tool", "current": "1.0", "candidate": "2.0", "security": False, "origin": "Debian:bookworm"},
    ]  # fmt: skip
    assert o["reboot_required"] is True
    assert o["reboot_required_packages"] == ["linux-image-6.1.0-28-amd64", "tillsyn-openssl"]
    assert (o["running_kernel"], o["newest_kernel"], o["running_kernel_is_newest"]) == (
        "6.1.0-9-amd64",
        "6.1.0-28-amd64",
        False,
    )
    assert o["lists_updated_at"] and o["simulation_cached"] is False
    # the collector only simulated; it never refreshed the lists itself
    assert [c[-1] for c in recorder.calls] == ["dist-upgrade"] and "-s" in recorder.calls[0]
    assert judge_shipped("updates", outcome) == {
        "updates-no-security-pending": "failing",
        "updates-lists-fresh": "passing",
        "updates-no-reboot-pending": "failing",
        "updates-newest-kernel-running": "failing",
        "updates-none-pending": "failing",
    }
    assert SPEC.summary(o) == (
        "apt: 2 pending (1 security), lists " + o["lists_updated_at"]
        + ", REBOOT required, running kernel 6.1.0-9-amd64 < 6.1.0-28-amd64"
    )  # fmt: skip


def test_the_simulation_is_cached_until_packages_change(node: Path, tmp_path: Path) -> None:
    apt_update(node)
    ctx, recorder = context(node, tmp_path / "state")
    SPEC.collect(ctx)
    read_simulation._MEMORY.clear()  # a new process (the next `tillsyn-agent collect`) reads the state file
    again = SPEC.collect(ctx)
    assert len(recorder.calls) == 1 and again.observed["simulation_cached"] is True
    assert again.observed["pending_count"] == 2
    assert (tmp_path / "state" / read_simulation.CACHE_FILE).exists()
    # the admin upgrades tillsyn-tool: dpkg's status changes, the next run simulates again
    status = node / "var/lib/dpkg/status"
    write_status(node, [("tillsyn-openssl", "1.0"), ("tillsyn-tool", "2.0")])
    os.utime(status, (status.stat().st_atime, status.stat().st_mtime + 5))
    after = SPEC.collect(ctx)
    assert len(recorder.calls) == 2 and after.observed["simulation_cached"] is False
    assert [p["name"] for p in after.observed["pending"]] == ["tillsyn-openssl"]
    # a damaged cache file is simulated over, never an error
    (tmp_path / "state" / read_simulation.CACHE_FILE).write_text("{not json")
    read_simulation._MEMORY.clear()
    assert SPEC.collect(ctx).observed["pending_count"] == 1 and len(recorder.calls) == 3


def test_lists_never_fetched_unless_refresh_is_configured(node: Path, tmp_path: Path) -> None:
    ctx, recorder = context(node, tmp_path / "state")
    bare = SPEC.collect(ctx)  # no lists fetched yet: apt knows no newer versions
    assert bare.observed["pending_count"] == 0 and "update" not in {c[-1] for c in recorder.calls}
    assert bare.observed["lists_updated_at"] is None
    assert [g.what for g in bare.gaps] == ["age of the package lists"]
    assert judge_shipped("updates", bare)["updates-lists-fresh"] == "unknown"
    refreshing, recorder = context(node, tmp_path / "state2", refresh=True)
    fetched = SPEC.collect(refreshing)
    assert [c[-1] for c in recorder.calls] == ["update", "dist-upgrade"]
    assert fetched.observed["pending_count"] == 2 and fetched.observed["refreshed_at"]


def test_a_failing_simulation_is_a_gap_not_a_pass(node: Path, tmp_path: Path) -> None:
    (node / "etc/apt/sources.list").write_text("deb [trusted=yes this is not a source line\n")
    ctx, _ = context(node, tmp_path / "state")
    outcome = SPEC.collect(ctx)
    assert outcome.status is Status.PARTIAL and outcome.observed["pending_count"] is None
    gap = next(g for g in outcome.gaps if g.what == "pending updates")
    assert gap.reason.startswith("apt-get -s dist-upgrade failed: apt-get exited with status 100: E: ")
    assert judge_shipped("updates", outcome)["updates-no-security-pending"] == "unknown"


def test_no_package_manager_is_not_present(tmp_path: Path) -> None:
    outcome = SPEC.collect(context(tmp_path, tmp_path / "state")[0])
    assert outcome.status is Status.NOT_PRESENT
    assert "no package database" in outcome.gaps[0].reason


# ---------------------------------------------------------------- dnf, real (dnf 4.14 as Debian packages it)
def test_pending_and_security_updates_on_real_dnf(tmp_path: Path) -> None:
    root = dnf_root(
        tmp_path,
        installed=[("tillsyn-demo", "1.0"), ("tillsyn-tool", "1.0")],
        offered=[("tillsyn-demo", "1.1"), ("tillsyn-tool", "2.0")],
        security=("tillsyn-demo", "1.1"),
    )
    ctx, recorder = context(root, tmp_path / "state")
    outcome = SPEC.collect(ctx)
    o = outcome.observed
    assert (o["manager"], o["pending_count"], o["security_count"]) == ("dnf", 2, 1)
    assert [(p["name"], p["candidate"], p["security"], p["origin"]) for p in o["pending"]] == [
        ("tillsyn-demo", "1.1-1", True, "tillsyn-test"),
        ("tillsyn-tool", "2.0-1", False, "tillsyn-test"),
    ]
    assert o["lists_updated_at"] and o["lists_source"] == "newest repomd.xml in /var/cache/dnf"
    # dnf only ever from its cache (-C), inside the test root; needs-restarting answered
    dnf_calls = [c for c in recorder.calls if c[0] == "dnf"]
    assert all("-C" in c and f"--installroot={root}" in c for c in dnf_calls)
    commands = {c[c.index(f"--installroot={root}") + 1] for c in dnf_calls}
    assert commands == {"check-update", "updateinfo", "needs-restarting"}
    # needs-restarting -r counts only core packages (kernel, glibc, systemd …) installed since boot
    assert o["reboot_required"] is False and o["reboot_source"] == "needs-restarting -r"
    assert judge_shipped("updates", outcome)["updates-no-security-pending"] == "failing"


# ---------------------------------------------------------------- dnf from captured output
class Replay:
    def __init__(self, answers: Dict[str, Tuple[str, int]]) -> None:
        self.answers, self.calls = answers, []  # type: Tuple[Dict[str, Tuple[str, int]], List[Tuple[str, ...]]]

    def __call__(self, argv: Sequence[str], **_: Any) -> CommandResult:
        self.calls.append(tuple(argv))
        key = next((k for k in self.answers if k in " ".join(argv)), None)
        if key is None:
            return CommandResult(argv, None, b"", b"", "not found")
        name, rc = self.answers[key]
        return CommandResult(argv, rc, (FIX / name).read_bytes() if name else b"", b"")


def _dnf_node(root: Path) -> Path:
    node_files(root, {"/etc/dnf/dnf.conf": "[main]\n", "/var/lib/rpm/rpmdb.sqlite": "", "/proc/sys/kernel/osrelease":
                      "5.14.0-362.24.1.el9_3.x86_64\n", "/boot/vmlinuz-5.14.0-362.24.1.el9_3.x86_64": "",
                      "/boot/vmlinuz-0-rescue-0123456789abcdef": ""})  # fmt: skip
    return root


def _dnf(root: Path, state: Path, answers: Dict[str, Tuple[str, int]]) -> Tuple[Outcome, Replay]:
    replay = Replay(answers)
    ctx = Context(root=root, settings=validate({}, SPEC.settings, "collectors.updates"), state_dir=state)
    ctx.run = replay
    return SPEC.collect(ctx), replay


def test_dnf_pending_and_security_from_captured_output(tmp_path: Path) -> None:
    outcome, replay = _dnf(
        _dnf_node(tmp_path / "root"),
        tmp_path / "state",
        {
            "check-update": ("dnf-check-update_rocky-9_dnf-4.14_updates.txt", 100),
            "updateinfo": ("dnf-updateinfo-list-security_rocky-9_dnf-4.14_updates.txt", 0),
            "needs-restarting": ("", 1),
        },
    )
    o = outcome.observed
    assert o["manager"] == "dnf" and all("-C" in c for c in replay.calls if c[0] == "dnf")
    assert (o["pending_count"], o["security_count"], o["reboot_required"]) == (4, 2, True)
    assert [p["name"] for p in o["pending"] if p["security"]] == ["kernel", "openssl-libs"]
    assert o["installed_kernels"] == ["5.14.0-362.24.1.el9_3.x86_64"] and o["running_kernel_is_newest"] is True


def test_dnf_without_updateinfo_leaves_security_unknown(tmp_path: Path) -> None:
    outcome, _ = _dnf(
        _dnf_node(tmp_path / "root"),
        tmp_path / "state",
        {"check-update": ("dnf-check-update_rocky-9_dnf-4.14_updates.txt", 100), "needs-restarting": ("", 0)},
    )
    assert outcome.observed["security_count"] is None and outcome.observed["reboot_required"] is False
    assert [g.what for g in outcome.gaps][:1] == ["security updates"]
    assert judge_shipped("updates", outcome)["updates-no-security-pending"] == "unknown"
