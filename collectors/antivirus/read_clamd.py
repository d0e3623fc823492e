"""Talk to clamd over its unix or TCP socket with ``z``-prefixed, NUL-terminated commands.

clamd(8): "prefix clamd commands with the letter z (eg. zSCAN) to indicate that the
command will be delimited by a NULL character and that clamd should continue
reading command data until a NULL character is read"; the answer ends with NUL too.
Only ``PING`` and ``VERSION`` are ever sent: nothing is scanned.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from typing import Any, Optional

MAX_ANSWER = 4096


@dataclass(frozen=True)
class ClamdAddress:
    """Where clamd listens: a unix socket path, or a TCP host and port."""

    path: Optional[str] = None
    host: Optional[str] = None
    port: Optional[int] = None

    def describe(self) -> str:
        if self.path is not None:
            return f"unix:{self.path}"
        return f"tcp:{self.host}:{self.port}"


class ClamdError(Exception):
    """clamd could not be asked.  ``unknown`` is True when the failure hides the answer
    (permission denied), False when it is itself the answer (nothing listens)."""

    def __init__(self, reason: str, unknown: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unknown = unknown


def query(address: ClamdAddress, command: str, timeout: float, socket_path: Optional[str] = None) -> str:
    """Send ``z<command>\\0`` and return the answer without its NUL.

    ``socket_path`` is the file to connect to for a unix address (the address's path
    below the collector's root); it defaults to ``address.path``.
    """
    where = address.describe()
    try:
        if address.path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: Any = socket_path or address.path
        else:
            infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
            family, kind, proto, _, target = infos[0]
            sock = socket.socket(family, kind, proto)
    except OSError as err:
        raise ClamdError(f"cannot open a socket to {where}: {err.strerror or err}", unknown=True) from err
    with sock:
        sock.settimeout(timeout)
        try:
            sock.connect(target)
            sock.sendall(b"z" + command.encode("ascii") + b"\0")
            answer = bytearray()
            while b"\0" not in answer and len(answer) < MAX_ANSWER:
                chunk = sock.recv(MAX_ANSWER)
                if not chunk:
                    break
                answer.extend(chunk)
        except socket.timeout as err:
            raise ClamdError(f"clamd at {where} did not answer {command} within {timeout:g} s") from err
        except OSError as err:
            raise _translate(err, where) from err
    if not answer:
        raise ClamdError(f"clamd at {where} closed the connection without answering {command}")
    return answer.split(b"\0", 1)[0].decode("utf-8", errors="replace")


def _translate(err: OSError, where: str) -> ClamdError:
    """A socket error as a reason; refused or missing means nothing listens (a fact)."""
    if err.errno == errno.ECONNREFUSED:
        return ClamdError(f"connection refused at {where} (clamd not running; stale socket file?)")
    if err.errno == errno.ENOENT:
        return ClamdError(f"{where} does not exist (clamd not running)")
    if err.errno in (errno.EACCES, errno.EPERM):
        return ClamdError(f"permission denied connecting to {where} (not in clamd's socket group?)", True)
    return ClamdError(f"cannot talk to clamd at {where}: {err.strerror or err}")
