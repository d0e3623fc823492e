"""The collector against real sockets opened by the test (private, ephemeral ports only).

The test binds TCP listeners and UDP sockets on port 0 (the kernel picks a free
port), on IPv4 and IPv6, loopback and wildcard, in this process, in a child
process and in a forked child running as ``nobody``; then the collector must
list exactly those with the right exposure and owner.  Every socket is closed and
every child ended afterwards.
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import socket
import subprocess
import sys
from typing import Any, Dict, Iterator, Optional, Tuple

import psutil  # imported before any fork so a child dropping privileges needs no file access
import pytest

from collectors.base import Context
from collectors.ports import SPEC
from collectors.ports.collect import collect
from collectors.settings import defaults, validate
from evidence.model import Status
from tests.conftest import require_root
from tests.evidence.shipped import judge_shipped

NOBODY = 65534
Key = Tuple[str, str, str, int]  # protocol, family, address, port


def _bind(family: int, kind: int, address: str, v6only: bool = True) -> socket.socket:
    sock = socket.socket(family, kind)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if v6only else 0)
    sock.bind((address, 0))
    if kind == socket.SOCK_STREAM:
        sock.listen(4)
    return sock


def _key(sock: socket.socket) -> Key:
    address, port = sock.getsockname()[:2]
    return (
        "tcp" if sock.type == socket.SOCK_STREAM else "udp",
        "ipv6" if sock.family == socket.AF_INET6 else "ipv4",
        address,
        port,
    )


def _ipv6_available() -> bool:
    try:
        _bind(socket.AF_INET6, socket.SOCK_DGRAM, "::1").close()
    except OSError:
        return False
    return True


def _run(settings: Optional[Dict[str, Any]] = None) -> Any:
    return collect(Context(settings=validate(settings or {}, SPEC.settings, "collectors.ports")))


def _by_key(observed: Dict[str, Any]) -> Dict[Key, Dict[str, Any]]:
    return {(s["protocol"], s["family"], s["address"], s["port"]): s for s in observed["sockets"]}


@pytest.fixture
def own_sockets() -> Iterator[Dict[Key, str]]:
    """Sockets of this process, with the exposure each must get."""
    specs = [
        (socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1", "loopback"),
        (socket.AF_INET, socket.SOCK_STREAM, "0.0.0.0", "all"),
        (socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1", "loopback"),
        (socket.AF_INET, socket.SOCK_DGRAM, "0.0.0.0", "all"),
    ]
    if _ipv6_available():
        specs += [
            (socket.AF_INET6, socket.SOCK_STREAM, "::1", "loopback"),
            (socket.AF_INET6, socket.SOCK_STREAM, "::", "all"),
            (socket.AF_INET6, socket.SOCK_DGRAM, "::1", "loopback"),
            (socket.AF_INET6, socket.SOCK_DGRAM, "::", "all"),
        ]
    elif os.environ.get("CI"):
        pytest.fail("IPv6 loopback is not available on this CI machine")
    socks = [(_bind(f, k, a), e) for f, k, a, e in specs]
    # A connected UDP socket is a client, and must not be listed.
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.connect(socks[2][0].getsockname())
    try:
        yield {_key(s): e for s, e in socks}
    finally:
        client.close()
        for s, _ in socks:
            s.close()


def test_own_sockets_with_exposure_and_owner(own_sockets: Dict[Key, str]) -> None:
    outcome = _run()
    assert outcome.status in (Status.COMPLETE, Status.PARTIAL)
    seen = _by_key(outcome.observed)
    me = {
        "pid": os.getpid(),
        "name": open("/proc/self/comm").read().strip(),  # noqa: SIM115
        "exe": os.path.realpath(sys.executable),
        "user": pwd.getpwuid(os.geteuid()).pw_name,
    }
    mine = {k: v for k, v in seen.items() if v["process"] and v["process"]["pid"] == os.getpid()}
    assert set(mine) == set(own_sockets)  # exactly ours: not the connected UDP client
    for key, exposure in own_sockets.items():
        record = seen[key]
        assert record["exposure"] == exposure, key
        assert record["address_scope"] == ("loopback" if exposure == "loopback" else "unspecified")
        assert {k: record["process"][k] for k in me} == me
        assert record["tags"] == []
    assert outcome.observed["counts"]["total"] == len(outcome.observed["sockets"])


CHILD = """
import socket, sys
t = socket.socket(); t.bind(("127.0.0.1", 0)); t.listen(1)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 0))
print(t.getsockname()[1], u.getsockname()[1], flush=True)
sys.stdin.read()
"""


def test_socket_of_a_child_process_is_attributed_to_it() -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        tcp_port, udp_port = (int(p) for p in child.stdout.readline().split())
        seen = _by_key(_run().observed)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)
    expected = {
        "pid": child.pid,
        "name": os.path.basename(sys.executable)[:15],
        "exe": os.path.realpath(sys.executable),
        "user": pwd.getpwuid(os.geteuid()).pw_name,
    }
    for key in (("tcp", "ipv4", "127.0.0.1", tcp_port), ("udp", "ipv4", "0.0.0.0", udp_port)):
        process = seen[key]["process"]
        assert {k: process[k] for k in expected} == expected
    assert seen[("udp", "ipv4", "0.0.0.0", udp_port)]["exposure"] == "all"


def _fork_as_nobody(work: str, port: int = 0) -> Tuple[int, Any]:
    """Fork a child that drops to ``nobody`` and either holds a socket or runs the collector."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            if work == "hold":
                sock = _bind(socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1")
                os.write(write_end, str(sock.getsockname()[1]).encode() + b"\n")
                signal.pause()  # until the parent kills it
            else:
                outcome = collect(Context(settings=defaults(SPEC.settings)))
                payload = {
                    "status": outcome.status.value,
                    "observed": outcome.observed,
                    "gaps": [g.to_dict() for g in outcome.gaps],
                }
                os.write(write_end, json.dumps(payload).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    return pid, os.fdopen(read_end)


def test_socket_of_another_user_is_attributed_when_root() -> None:
    require_root("to run a socket holder as another user")
    pid, pipe = _fork_as_nobody("hold")
    try:
        port = int(pipe.readline())
        record = _by_key(_run().observed)[("tcp", "ipv4", "127.0.0.1", port)]
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pipe.close()
    assert record["process"]["pid"] == pid
    assert record["process"]["user"] == pwd.getpwuid(NOBODY).pw_name


def test_unprivileged_run_lists_root_sockets_without_owner_and_says_why() -> None:
    require_root("to drop to nobody and show what an unprivileged agent cannot see")
    # A root-owned listener in a separate process (a forked child would inherit our fds).
    holder = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        port, udp_port = (int(p) for p in holder.stdout.readline().split())
        pid, pipe = _fork_as_nobody("collect")
        result = json.loads(pipe.read())
        pipe.close()
        _, status = os.waitpid(pid, 0)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    assert os.waitstatus_to_exitcode(status) == 0
    record = _by_key(result["observed"])[("tcp", "ipv4", "127.0.0.1", port)]
    udp = _by_key(result["observed"])[("udp", "ipv4", "0.0.0.0", udp_port)]
    assert (udp["exposure"], udp["process"], udp["tags"]) == ("all", None, [None])
    # an exposed socket of an unseen owner: whatever else listens here, no port rule can pass
    verdicts = judge_shipped("ports", result)
    assert set(verdicts.values()) <= {"unknown", "failing"}, verdicts
    assert (record["process"], record["tags"]) == (None, [None])  # which tags its owner adds is unknown
    assert result["status"] == "partial"
    unmapped = result["observed"]["counts"]["unmapped"]
    assert unmapped >= 1
    assert {
        "what": f"owner of {unmapped} socket{'' if unmapped == 1 else 's'}",
        "reason": f"not root: cannot map {unmapped} socket{'' if unmapped == 1 else 's'} to processes"
        " (cannot read /proc/<pid>/fd of other users)",
    } in result["gaps"]


def test_extra_port_setting_marks_a_real_socket() -> None:
    sock = _bind(socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1")
    port = sock.getsockname()[1]
    try:
        outcome = _run({"extra_ports": [{"port": port, "service": "vendor-ssh"}], "allowed_ports": [{"port": port}]})
    finally:
        sock.close()
    record = _by_key(outcome.observed)[("tcp", "ipv4", "127.0.0.1", port)]
    assert (record["services"], record["tags"], record["allow_listed"]) == (["vendor-ssh"], ["remote_service"], True)


def test_vnc_port_on_loopback_is_tagged() -> None:
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 5901))
    except OSError as err:
        sock.close()
        pytest.skip(f"127.0.0.1:5901 is taken here ({err.strerror}); the classification table covers VNC")
    sock.listen(1)
    try:
        record = _by_key(_run().observed)[("tcp", "ipv4", "127.0.0.1", 5901)]
    finally:
        sock.close()
    assert record["services"] == ["vnc"]
    assert record["tags"] == ["plaintext_remote", "remote_service"]
    assert record["exposure"] == "loopback"


def test_psutil_api_in_use_exists() -> None:
    """The calls the probe makes exist in this psutil (5.9.4 and 7.x share them)."""
    assert callable(psutil.net_connections)
    assert psutil.CONN_LISTEN == "LISTEN" and psutil.CONN_NONE == "NONE"
    assert {"name", "exe", "username", "oneshot"} <= set(dir(psutil.Process))
