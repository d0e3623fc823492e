"""A network namespace of the test's own, entered by this thread so sockets and commands live in it.

``ip netns add`` makes the namespace; ``setns(2)`` (through libc, as Python 3.11 has no
``os.setns``) moves the calling thread into it, so sockets it opens, commands it starts and
psutil's reading of ``/proc/net`` see that namespace only; leaving returns to the original
one and deletes the namespace.  Needs root (CAP_SYS_ADMIN); nothing leaves loopback.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import itertools
import os
import subprocess
from typing import Iterator

from tests.conftest import require_root, require_tool

CLONE_NEWNET = 0x40000000
_names = itertools.count()


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def own_netns() -> Iterator[str]:
    """Enter a fresh network namespace (loopback up) for the duration; yields its name."""
    require_root("creating a network namespace")
    require_tool("ip")
    name = f"tillsyn-test-{os.getpid()}-{next(_names)}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True, capture_output=True)
        inner = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            _setns(inner)
        finally:
            os.close(inner)
        try:
            yield name
        finally:
            _setns(original)
    finally:
        os.close(original)
        subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)


def load_nft(ruleset: str) -> None:
    """Replace the current namespace's nftables ruleset (the caller is inside :func:`own_netns`)."""
    done = subprocess.run(
        ["nft", "-f", "-"], check=False, input="flush ruleset\n" + ruleset, text=True, capture_output=True
    )
    assert done.returncode == 0, done.stderr
