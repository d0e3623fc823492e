"""Raw-socket clients for the hostile-input tests against a real ``tillsyn-central serve`` (loopback only)."""

from __future__ import annotations

import select
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Tuple

import httpx

from tests.central.conftest import Node
from tests.centre_process import CentreProcess


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set (VmHWM of /proc/PID/status), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


def send_chunked(port: int, path: str, total: int, content_type: str = "application/json") -> Tuple[bytes, int]:
    """POST ``total`` bytes of JSON-looking junk with chunked encoding, stopping as soon as the server
    answers or closes; (what it answered, bytes sent)."""
    chunk = b"[" * 65536
    piece = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head)
        try:
            while sent < total:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                sock.sendall(piece)
                sent += len(chunk)
            else:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        return _read_all(sock), sent


def send_declared(port: int, path: str, declared: int) -> bytes:
    """A head that announces ``declared`` bytes of body, and no body: the answer must not wait for it."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {declared}\r\n\r\n".encode()
        )
        return _read_all(sock)


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    try:
        while True:
            got = sock.recv(65536)
            if not got:
                return data
            data += got
    except (ConnectionResetError, TimeoutError):
        return data


def enrolled_node(centre: CentreProcess) -> Node:
    """A node enrolled over HTTP with the real process, sending through an httpx client."""
    node = Node(httpx.Client(base_url=centre.url, timeout=10))  # type: ignore[arg-type]
    node.enrol(centre.token())
    return node


@contextmanager
def serving(centre: CentreProcess) -> Iterator[CentreProcess]:
    """``centre`` with its database made, serving until the block ends."""
    centre.cli("db", "upgrade")
    centre.start()
    try:
        yield centre
    finally:
        centre.stop()
