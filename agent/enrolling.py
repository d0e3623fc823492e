"""``tillsyn-agent enroll``: create the key, register with the centre, remember the answer."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Optional

from agent import __version__
from agent.errors import IdentityError, TransportError
from agent.identity import Enrolment, load_or_create_key, public_key_of, save_enrolment
from agent.transport import Client

MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")


def machine_id(root: Path) -> str:
    for name in MACHINE_ID_FILES:
        try:
            value = (root / name.lstrip("/")).read_text().strip()
        except OSError:
            continue
        if value:
            return value
    raise IdentityError("no machine id in /etc/machine-id or /var/lib/dbus/machine-id; run systemd-machine-id-setup")


def enroll(state: Path, server: str, token: str, ca_file: Optional[str], root: Path = Path("/")) -> Enrolment:
    if ca_file is not None and not Path(ca_file).is_file():
        raise IdentityError(f"--ca {ca_file}: no such file")
    key = load_or_create_key(state)
    public = public_key_of(key)
    request = {
        "token": token,
        "hostname": socket.gethostname(),
        "machine_id": machine_id(root),
        "public_key": public,
        "agent_version": __version__,
    }
    try:
        client = Client(server, key, ca_file=ca_file)
    except TransportError as err:
        raise IdentityError(str(err)) from err
    try:
        answer = client.post("/api/v1/enrol", json.dumps(request).encode("utf-8"))
    except TransportError as err:
        raise IdentityError(f"enrolment failed: {err}") from err
    finally:
        client.close()
    interval = answer.get("heartbeat_interval_s")
    enrolment = Enrolment(
        str(answer["agent_id"]),
        client.server,
        ca_file,
        public,
        interval if isinstance(interval, int) and interval > 0 else None,
    )
    save_enrolment(state, enrolment)
    return enrolment
