"""Settings of the firewall collector (docs/collectors/firewall.md)."""

from __future__ import annotations

from collectors.settings import REQUIRED, Field, Schema

SETTINGS: Schema = {
    "allowed_open": Field(
        list,
        [{"port": 22, "protocol": "tcp"}, {"port": 80, "protocol": "tcp"}, {"port": 443, "protocol": "tcp"}],
        "ports meant to be reachable from anywhere (each {port, protocol}); others must be filtered",
        items={
            "port": Field(int, REQUIRED, "port number, 1-65535", minimum=1),
            "protocol": Field(str, "tcp", "tcp, udp or any", choices=("tcp", "udp", "any")),
        },
    ),
    "nft_binary": Field(str, "nft", "the nft command (nftables)"),
    "iptables_legacy": Field(bool, True, "also read iptables-legacy-save/ip6tables-legacy-save when installed"),
    "ufw_config": Field(str, "/etc/ufw/ufw.conf", "ufw's switch (ENABLED=yes)"),
    "ufw_defaults": Field(str, "/etc/default/ufw", "ufw's default policies (DEFAULT_INPUT_POLICY)"),
    "firewalld_config": Field(str, "/etc/firewalld/firewalld.conf", "firewalld's main configuration (DefaultZone)"),
    "command_timeout": Field(float, 5.0, "seconds for each command", minimum=0.1),
}
