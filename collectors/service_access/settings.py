"""Settings of the service_access collector (docs/collectors/service_access.md)."""

from __future__ import annotations

from collectors.settings import REQUIRED, Field, Schema

SETTINGS: Schema = {
    "vendor_accounts": Field(
        list, [], "user names of vendor and service accounts that must stay locked outside a service visit"
    ),
    "vendor_ports": Field(
        list,
        [],
        "further remote-service ports of this node, e.g. a vendor's SSH port: each {port, protocol, service}",
        items={
            "port": Field(int, REQUIRED, "port number, 1-65535", minimum=1),
            "protocol": Field(str, "tcp", "tcp, udp or any", choices=("tcp", "udp", "any")),
            "service": Field(str, REQUIRED, "a name for the service, reported with the entrance"),
        },
    ),
    "remote_processes": Field(
        list,
        [],
        "further process names of remote-service tools that connect out (like TeamViewer) to report when running",
    ),
    "passwd_file": Field(str, "/etc/passwd", "the account database"),
    "shadow_file": Field(str, "/etc/shadow", "password hashes and expiry dates (root only)"),
    "authorized_keys": Field(
        list, [".ssh/authorized_keys", ".ssh/authorized_keys2"], "key files below each vendor account's home"
    ),
}
