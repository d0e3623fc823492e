"""A network namespace of the test's own, joined to the host by a veth pair, to cut and heal
the network between an agent (inside) and the centre (on the host end's address)."""

from __future__ import annotations

import secrets
import subprocess
from typing import List

from tests.conftest import require_root, require_tool


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)}: {done.stderr.strip()}")


class Netns:
    """``ip netns add``, a veth pair with a /30 of 10.x.y.0 (x, y random), the loopback up inside."""

    def __init__(self) -> None:
        require_root("ip netns and veth pairs")
        require_tool("ip")
        tag = secrets.token_hex(3)
        self.name = f"tsf-{tag}"
        self.host_end, self.inner_end = f"tsfh{tag}", f"tsfn{tag}"
        net = f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(256)}"
        self.host_ip, self.inner_ip = f"{net}.1", f"{net}.2"
        _ip("netns", "add", self.name)
        try:
            _ip("link", "add", self.host_end, "type", "veth", "peer", "name", self.inner_end, "netns", self.name)
            _ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_end)
            _ip("link", "set", self.host_end, "up")
            _ip("-n", self.name, "addr", "add", f"{self.inner_ip}/30", "dev", self.inner_end)
            _ip("-n", self.name, "link", "set", self.inner_end, "up")
            _ip("-n", self.name, "link", "set", "lo", "up")
        except AssertionError:
            self.delete()
            raise

    def prefix(self) -> List[str]:
        """What runs a command inside."""
        return ["ip", "netns", "exec", self.name]

    def cut(self) -> None:
        """The node's end of the link down: nothing passes either way."""
        _ip("-n", self.name, "link", "set", self.inner_end, "down")

    def heal(self) -> None:
        _ip("-n", self.name, "link", "set", self.inner_end, "up")

    def delete(self) -> None:
        """The namespace and with it both ends of the veth pair."""
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=30, check=False)
