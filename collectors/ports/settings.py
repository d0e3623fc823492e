"""Settings of the ports collector (``collectors.ports.*`` in agent.yaml): extra known ports and
a per-node allow-list hint.  Nothing to watch: sockets change without a file changing."""

from __future__ import annotations

from collectors.ports.model import TAGS
from collectors.settings import REQUIRED, Field, Schema

_PORT = Field(int, REQUIRED, "port number, 1-65535", minimum=1)
_PROTOCOL = Field(str, "tcp", "tcp, udp or any", choices=("tcp", "udp", "any"))

SETTINGS: Schema = {
    "extra_ports": Field(
        list,
        [],
        "extra known ports for this node, e.g. a vendor's service SSH port: each {port, protocol, service, tag}",
        items={
            "port": _PORT,
            "protocol": _PROTOCOL,
            "service": Field(str, REQUIRED, "a name for the service, reported in 'services'"),
            "tag": Field(str, "remote_service", "tag to give matching sockets", choices=TAGS),
        },
    ),
    "allowed_ports": Field(
        list,
        [],
        "per-node allow-list hint: each {port, protocol}; when set, every socket reports allow_listed true/false",
        items={"port": _PORT, "protocol": _PROTOCOL},
    ),
}
