"""The systemd notification protocol (sd_notify(3)), without needing python-systemd.

A datagram of ``KEY=VALUE`` lines to the socket named by ``$NOTIFY_SOCKET`` (a path,
or an abstract socket when it starts with ``@``).  Without the variable every call
does nothing, so the agent runs the same with or without systemd.
"""

from __future__ import annotations

import os
import socket
from typing import Mapping, Optional


class Notifier:
    def __init__(self, env: Optional[Mapping[str, str]] = None) -> None:
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        self.address: Optional[str] = None
        if address.startswith("@"):
            self.address = "\0" + address[1:]
        elif address.startswith("/"):
            self.address = address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        watchdog_for_us = usec.isdigit() and (not pid or pid == str(os.getpid()))
        self.watchdog_interval: Optional[float] = int(usec) / 1e6 if watchdog_for_us else None
        """How often systemd expects WATCHDOG=1, in seconds (None: no watchdog)."""

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields: str) -> bool:
        """Send e.g. ``READY="1", STATUS="..."``; False when there is nobody to tell or it failed."""
        if self.address is None:
            return False
        message = "\n".join(f"{k}={v.replace(chr(10), ' ')}" for k, v in fields.items()).encode("utf-8")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self.address)
                sock.sendall(message)
        except OSError:
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.send(READY="1", STATUS=status)

    def status(self, status: str) -> bool:
        return self.send(STATUS=status)

    def watchdog(self) -> bool:
        return self.watchdog_interval is not None and self.send(WATCHDOG="1")

    def stopping(self, status: str = "stopping") -> bool:
        return self.send(STOPPING="1", STATUS=status)
