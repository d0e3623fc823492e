"""classify_address: loopback, wildcard and the scope of a specific address."""

from __future__ import annotations

import pytest

from collectors.ports.exposure import Exposure, classify_address

CASES = [
    ("127.0.0.1", Exposure("loopback", "loopback")),
    ("127.0.0.53", Exposure("loopback", "loopback")),  # systemd-resolved's stub listener
    ("::1", Exposure("loopback", "loopback")),
    ("::ffff:127.0.0.1", Exposure("loopback", "loopback")),
    ("0.0.0.0", Exposure("all", "unspecified")),
    ("::", Exposure("all", "unspecified")),
    ("10.1.2.3", Exposure("specific", "private")),
    ("172.31.255.1", Exposure("specific", "private")),
    ("192.168.1.10", Exposure("specific", "private")),
    ("100.64.0.1", Exposure("specific", "private")),
    ("fd12:3456::1", Exposure("specific", "private")),
    ("169.254.10.1", Exposure("specific", "link_local")),
    ("fe80::1%eth0", Exposure("specific", "link_local")),
    ("224.0.0.251", Exposure("specific", "multicast")),
    ("8.8.8.8", Exposure("specific", "public")),
    ("2001:4860:4860::8888", Exposure("specific", "public")),
    ("::ffff:8.8.4.4", Exposure("specific", "public")),
    ("192.0.2.7", Exposure("specific", "reserved")),  # TEST-NET-1, RFC 5737
    ("2001:db8::1", Exposure("specific", "reserved")),  # documentation, RFC 3849
]


@pytest.mark.parametrize(("address", "expected"), CASES, ids=[c[0] for c in CASES])
def test_classify_address(address: str, expected: Exposure) -> None:
    assert classify_address(address) == expected


@pytest.mark.parametrize("bad", ["", "localhost", "256.1.1.1", "::g"])
def test_not_an_address_raises(bad: str) -> None:
    with pytest.raises(ValueError):
        classify_address(bad)
