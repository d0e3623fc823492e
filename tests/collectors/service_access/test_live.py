"""service_access on real state: listening sockets in a network namespace the test creates, a real
process named like a relay tool, and vendor accounts in a test root; then the shipped rules."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List

import pytest

from collectors.base import Context
from collectors.service_access import SPEC
from collectors.service_access.collect import collect
from collectors.settings import validate
from evidence.model import Status
from tests.collectors.firewall.netns import own_netns
from tests.evidence.shipped import judge_shipped

HASH = "$y$j9T$abcdefghijklmnopqrstu.$ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHFJnTGQyGgBPQXwOVdn5XeIQnAGZlYjGBRyo+3CsTkn vendor@laptop\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """/etc/passwd, /etc/shadow and homes: 'hpsupport' locked and expired, 'vendor' with a locked
    password but an SSH key, 'olduser' not present."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\n"
        "hpsupport:x:1001:1001::/home/hpsupport:/bin/bash\n"
        "vendor:x:1002:1002::/home/vendor:/usr/sbin/nologin\n"
    )
    (etc / "shadow").write_text(
        f"root:*:20000:0:99999:7:::\nhpsupport:!{HASH}:20000:0:99999:7::1:\nvendor:!{HASH}:20000:0:99999:7:::\n"
    )
    (tmp_path / "home/vendor/.ssh").mkdir(parents=True)
    (tmp_path / "home/vendor/.ssh/authorized_keys").write_text(KEY)
    return tmp_path


@pytest.fixture
def relay_tool(tmp_path: Path) -> Iterator[int]:
    """A real process whose name is 'anydesk' (a copy of sleep), as psutil sees it."""
    tool = tmp_path / "bin" / "anydesk"
    tool.parent.mkdir()
    shutil.copy("/bin/sleep", tool)
    proc = subprocess.Popen([str(tool), "60"])
    yield proc.pid
    proc.kill()
    proc.wait(5)


def _listen(port: int, address: str = "0.0.0.0") -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
    sock.bind((address, port))
    sock.listen(1)
    return sock


def _collect(root: Path, **settings: Any) -> Any:
    return SPEC.collect(Context(root=root, settings=validate(settings, SPEC.settings, "collectors.service_access")))


def test_entrances_and_accounts_on_real_state(root: Path, relay_tool: int) -> None:
    with own_netns():
        sockets: List[socket.socket] = [_listen(5901), _listen(5902, "127.0.0.1"), _listen(2222), _listen(8443)]
        try:
            outcome = _collect(
                root,
                vendor_accounts=["hpsupport", "vendor", "olduser"],
                vendor_ports=[{"port": 2222, "service": "vendor-ssh"}],
            )
        finally:
            for s in sockets:
                s.close()
    assert outcome.status is Status.COMPLETE, outcome.gaps
    observed: Dict[str, Any] = outcome.observed
    listeners = {(e["port"], e["service"], e["process"]) for e in observed["entrances"] if e["kind"] == "listener"}
    assert {(p, s) for p, s, _ in listeners} == {(5901, "vnc"), (2222, "vendor-ssh")}  # not 5902 (loopback), 8443
    assert {e["pid"] for e in observed["entrances"] if e["kind"] == "process"} >= {relay_tool}
    accounts = {a["name"]: (a["locked"], a["reason"]) for a in observed["accounts"]}
    assert accounts == {
        "hpsupport": (True, "expired since 1970-01-02"),
        "vendor": (False, "password locked, but 1 SSH key can log in"),
        "olduser": (True, "no such account"),
    }
    verdicts = judge_shipped("service_access", outcome)
    assert verdicts == {"service-remote-access-closed": "failing", "service-vendor-accounts-locked": "failing"}


def test_a_closed_node_passes(root: Path) -> None:
    with own_netns():
        sockets = [_listen(5903, "127.0.0.1"), _listen(443)]
        try:
            outcome = _collect(root, vendor_accounts=["hpsupport"], remote_processes=[])
        finally:
            for s in sockets:
                s.close()
    assert [e for e in outcome.observed["entrances"] if e["kind"] == "listener"] == []
    processes = [e for e in outcome.observed["entrances"] if e["kind"] == "process"]
    expected = "failing" if processes else "passing"  # a real relay tool on this machine would be reported
    verdicts = judge_shipped("service_access", outcome)
    assert verdicts == {"service-remote-access-closed": expected, "service-vendor-accounts-locked": "passing"}


def test_an_unreadable_shadow_file_makes_the_account_unknown(root: Path) -> None:
    (root / "etc/shadow").unlink()
    (root / "etc/shadow").mkdir()  # unreadable even for root (EISDIR), as the file is for others
    outcome = collect(
        Context(root=root, settings=validate({"vendor_accounts": ["vendor"]}, SPEC.settings, "x")),
        entries=[],
        processes=[],
    )
    assert outcome.status is Status.PARTIAL
    assert [g.what for g in outcome.gaps] == ["vendor accounts' passwords and expiry"]
    assert outcome.observed["accounts"][0]["reason"] == "the shadow file could not be read"
    assert judge_shipped("service_access", outcome)["service-vendor-accounts-locked"] == "unknown"


@pytest.mark.parametrize(("count", "said"), [(1, "owner of 1 socket"), (2, "owner of 2 sockets")])
def test_a_socket_without_an_owner_is_counted_in_words(root: Path, count: int, said: str) -> None:
    """A listener no process holds (a kernel socket, or one the agent may not map) is a gap in words."""
    entries = [
        SimpleNamespace(fd=-1, family=socket.AF_INET, type=socket.SOCK_STREAM, laddr=("0.0.0.0", 2024 + n),
                        raddr=(), status="LISTEN", pid=None)
        for n in range(count)
    ]  # fmt: skip
    outcome = collect(Context(root=root, settings=validate({}, SPEC.settings, "x")), entries=entries, processes=[])
    gaps = {g.what: g.reason for g in outcome.gaps}
    assert said in gaps, gaps
    assert gaps[said].endswith("whether it is a remote-service tool is unknown" if count == 1 else "tools is unknown")
