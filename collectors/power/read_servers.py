"""Socket I/O for the power collector: a NUT upsd client and an apcupsd NIS client.

Each server gets one connection with one overall deadline; every failure becomes
the server's ``error`` (never an exception), so one dead server never hides others.
"""

from __future__ import annotations

import errno
import socket
import time
from typing import List, Optional, Tuple

from collectors.power import parse_apcupsd, parse_nut
from collectors.power.model import ServerResult, Ups

MAX_REPLY = 1024 * 1024
"""No upsd or apcupsd reply is anywhere near this; more means something else listens."""


class _Connection:
    """A TCP connection that reads lines or bytes against one deadline."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.deadline = time.monotonic() + timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buffer = b""
        self.received = 0

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self._arm()
        self.sock.sendall(data)

    def _arm(self) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("deadline passed")
        self.sock.settimeout(remaining)

    def fill(self) -> None:
        self._arm()
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.received += len(chunk)
        if self.received > MAX_REPLY:
            raise ConnectionError(f"reply over {MAX_REPLY} bytes")
        self.buffer += chunk

    def read_until(self, last_line: bytes) -> str:
        """Lines up to and including ``last_line`` or an ``ERR`` line, as text."""
        start = 0
        while True:
            end = self.buffer.find(b"\n", start)
            if end < 0:
                self.fill()
                continue
            line = self.buffer[start:end].rstrip(b"\r")
            start = end + 1
            if line == last_line or line.startswith(b"ERR"):
                text = self.buffer[:start].decode("utf-8", errors="replace")
                self.buffer = self.buffer[start:]
                return text


def describe_socket_error(err: BaseException) -> Tuple[str, bool]:
    """(reason, refused) for a failed connection or exchange."""
    if isinstance(err, ConnectionRefusedError):
        return "connection refused (nothing listening)", True
    if isinstance(err, socket.timeout):
        return "timed out", False
    if isinstance(err, socket.gaierror):
        return f"cannot resolve host: {err.strerror or err}", False
    if isinstance(err, OSError) and err.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return f"unreachable: {err.strerror}", False
    if isinstance(err, OSError) and err.strerror:
        return err.strerror, False
    return str(err) or type(err).__name__, False


def query_nut(
    host: str, port: int, timeout: float, username: Optional[str] = None, password: Optional[str] = None
) -> ServerResult:
    """``LIST UPS`` then ``LIST VAR`` for each UPS on one upsd."""
    result = ServerResult("nut", host, port)
    try:
        conn = _Connection(host, port, timeout)
    except OSError as err:
        result.error, result.refused = describe_socket_error(err)
        return result
    try:
        if username is not None and password is not None:
            result.login = _login(conn, username, password)
        conn.send(b"LIST UPS\n")
        names = parse_nut.parse_list_ups(conn.read_until(b"END LIST UPS"))
        result.reachable = True
        for name, description in names.items():
            result.ups.append(_list_var(conn, name, description, result.address))
        conn.send(b"LOGOUT\n")
    except parse_nut.NutProtocolError as err:
        result.error = str(err)
    except (OSError, ConnectionError) as err:
        result.error = describe_socket_error(err)[0]
    finally:
        conn.close()
    return result


def _login(conn: _Connection, username: str, password: str) -> str:
    """USERNAME/PASSWORD (NUT protocol); LIST needs no login, so a refusal is only recorded."""
    for command in (f"USERNAME {parse_nut.quote(username)}", f"PASSWORD {parse_nut.quote(password)}"):
        conn.send(command.encode("utf-8") + b"\n")
        line = conn.read_until(b"OK").strip()
        if line != "OK":
            return f"refused: {line[:100]}"
    return "ok"


def _list_var(conn: _Connection, name: str, description: str, server: str) -> Ups:
    if any(c.isspace() for c in name):  # cannot be sent unquoted; upsd never lists such names
        return Ups("nut", name, server, description=description or None, error="UPS name with spaces")
    conn.send(f"LIST VAR {name}\n".encode())
    text = conn.read_until(f"END LIST VAR {name}".encode())
    try:
        variables = parse_nut.parse_list_var(text, name)
    except parse_nut.NutProtocolError as err:
        if err.code is None:
            raise
        # e.g. ERR DATA-STALE or ERR DRIVER-NOT-CONNECTED: this UPS only.
        return Ups("nut", name, server, description=description or None, error=str(err))
    return parse_nut.ups_from_vars(name, server, variables, description)


def query_apcupsd(host: str, port: int, timeout: float) -> ServerResult:
    """Send ``status`` to an apcupsd NIS server and parse the records it returns."""
    result = ServerResult("apcupsd", host, port)
    try:
        conn = _Connection(host, port, timeout)
    except OSError as err:
        result.error, result.refused = describe_socket_error(err)
        return result
    try:
        conn.send(parse_apcupsd.encode_frame(b"status"))
        records: List[bytes] = []
        while True:
            got, done, used = parse_apcupsd.decode_frames(conn.buffer)
            records.extend(got)
            conn.buffer = conn.buffer[used:]
            if done:
                break
            conn.fill()
        text = b"".join(records).decode("utf-8", errors="replace")
        fields = parse_apcupsd.parse_status(text)
        result.reachable = True
        result.ups.append(parse_apcupsd.ups_from_status(fields, result.address))
    except parse_apcupsd.NisError as err:
        result.error = str(err)
    except (OSError, ConnectionError) as err:
        result.error = describe_socket_error(err)[0]
    finally:
        conn.close()
    return result
