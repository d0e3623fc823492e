"""``tillsyn-agent enroll``: create the key, register with the centre, remember the answer."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Optional

import requests

from agent import __version__
from agent.errors import IdentityError, TransportError
from agent.identity import Enrolment, load_or_create_key, public_key_of, save_enrolment
from agent.uplink.signed_http import Client

MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")
AGENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
"""What the centre may name a node (the wire format's identifier, evidence/wire.py)."""


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
        # no answer (unreachable, timed out) or the centre failed (5xx): try again later, exit 3;
        # a refusal (a bad token), a certificate not trusted (--ca) or an answer that is not a
        # centre's (a wrong URL) cannot mend with time: exit 2
        untrusted = isinstance(err.__cause__, requests.exceptions.SSLError)
        if err.retry and not untrusted and (err.status is None or err.status >= 500):
            raise TransportError(f"enrolment failed, not enrolled: {err}", retry=True) from err
        raise IdentityError(f"enrolment failed: {err}") from err
    finally:
        client.close()
    agent_id = answer.get("agent_id")
    if not isinstance(agent_id, str) or not AGENT_ID.fullmatch(agent_id):
        raise IdentityError(
            f"enrolment failed: {client.server} answered without a valid agent id ({agent_id!r}); "
            "is that URL a Tillsyn centre? Not enrolled"
        )
    interval = answer.get("heartbeat_interval_s")
    enrolment = Enrolment(
        agent_id,
        client.server,
        ca_file,
        public,
        interval if isinstance(interval, int) and interval > 0 else None,
    )
    save_enrolment(state, enrolment)
    return enrolment
