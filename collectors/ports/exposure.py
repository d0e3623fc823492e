"""Where a bound address is reachable from: loopback only, every interface, or one address.

Scopes come from explicit IANA ranges rather than ``ipaddress``'s ``is_private``,
whose ranges changed between Python releases (3.9 vs 3.12.4+), so a node's
evidence does not depend on its Python version.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Tuple, Union

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

# RFC 1918 private-use, RFC 6598 shared (carrier-grade NAT) and RFC 4193 unique-local.
_PRIVATE: Tuple[Union[ipaddress.IPv4Network, ipaddress.IPv6Network], ...] = (
    ipaddress.ip_network("10.0.0.0/8"),
    ipaddress.ip_network("172.16.0.0/12"),
    ipaddress.ip_network("192.168.0.0/16"),
    ipaddress.ip_network("100.64.0.0/10"),
    ipaddress.ip_network("fc00::/7"),
)


@dataclass(frozen=True)
class Exposure:
    """``kind``: loopback | all | specific.  ``scope``: loopback | unspecified | private |
    link_local | public | multicast | reserved."""

    kind: str
    scope: str


def parse_address(text: str) -> IPAddress:
    """An address as psutil prints it; an IPv4-mapped IPv6 address becomes its IPv4 form.

    Raises ``ValueError`` for anything that is not an IP address.
    """
    address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def classify_address(text: str) -> Exposure:
    """Exposure of a socket bound to ``text``.

    A wildcard (0.0.0.0, ::) listens on every interface, including future ones;
    an IPv6 ``::`` socket also takes IPv4 unless IPV6_V6ONLY is set (ipv6(7)).
    """
    address = parse_address(text)
    if address.is_unspecified:
        return Exposure("all", "unspecified")
    if address.is_loopback:
        return Exposure("loopback", "loopback")
    if address.is_link_local:
        scope = "link_local"
    elif address.is_multicast:
        scope = "multicast"
    elif any(address in net for net in _PRIVATE if net.version == address.version):
        scope = "private"
    else:
        scope = "public" if address.is_global else "reserved"
    return Exposure("specific", scope)
