"""The time parsers over captured (chrony 4.3 here, Debian 12) and published output, and fuzzed input."""

from __future__ import annotations

import contextlib
from typing import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.time import parse_chrony, parse_ntpq, parse_timesyncd
from tests.conftest import FIXTURES

FIX = FIXTURES / "time"


def read(name: str) -> str:
    return (FIX / name).read_text()


def test_chrony_tracking_synchronised_to_a_server() -> None:
    t = parse_chrony.parse_tracking(read("chronyc-tracking-csv_debian-12_chrony-4.3_synced-loopback-server.txt"))
    assert (t["synchronised"], t["reference"], t["stratum"], t["leap_status"]) == (True, "127.0.0.1", 4, "Normal")
    assert t["offset_s"] == pytest.approx(-1.436e-6)
    assert t["last_sync_at"] == "2026-12-07T00:27:32.818197Z"


def test_chrony_tracking_local_reference_is_not_synchronised() -> None:
    t = parse_chrony.parse_tracking(read("chronyc-tracking-csv_debian-12_chrony-4.3_local-reference.txt"))
    assert t["synchronised"] is False
    assert t["reference_id"] == "7F7F0101" and t["stratum"] == 3 and t["leap_status"] == "Normal"


def test_chrony_tracking_not_synchronised() -> None:
    t = parse_chrony.parse_tracking(read("chronyc-tracking-csv_debian-12_chrony-4.3_not-synchronised.txt"))
    assert (t["synchronised"], t["last_sync_at"], t["reference"]) == (False, None, None)


def test_chrony_no_daemon_answer_is_refused() -> None:
    with pytest.raises(parse_chrony.ChronyFormatError, match="1 fields"):
        parse_chrony.parse_tracking(read("chronyc-tracking-csv_debian-12_chrony-4.3_no-daemon.txt"))


def test_chrony_sources() -> None:
    sources = parse_chrony.parse_sources(read("chronyc-sources-csv_debian-12_chrony-4.3_synced-loopback-server.txt"))
    assert sources == [
        {
            "address": "127.0.0.1",
            "mode": "server",
            "state": "selected",
            "stratum": 3,
            "reach": 255,
            "last_rx_s": 0.0,
            "offset_s": pytest.approx(4.15e-7),
            "error_s": pytest.approx(3.36e-6),
        }
    ]
    assert parse_chrony.selected(sources) is sources[0]
    assert parse_chrony.parse_sources(read("chronyc-sources-csv_debian-12_chrony-4.3_no-sources.txt")) == []


def test_timesyncd_status_published() -> None:
    s = parse_timesyncd.parse_timesync_status(read("timedatectl-timesync-status_debian_systemd_published-synced.txt"))
    assert (s["server_address"], s["server_name"], s["stratum"], s["packet_count"], s["leap"]) == (
        "162.159.200.1",
        "time.cloudflare.com",
        3,
        9,
        "normal",
    )
    assert s["offset_s"] == pytest.approx(291e-6)
    ms = parse_timesyncd.parse_timesync_status(
        read("timedatectl-timesync-status_ubuntu_systemd_published-synced-ms.txt")
    )
    assert ms["offset_s"] == pytest.approx(2.497e-3)
    none = parse_timesyncd.parse_timesync_status(
        read("timedatectl-timesync-status_reconstructed_systemd-252_no-server.txt")
    )
    assert (none["server_address"], none["packet_count"], none["offset_s"]) == (None, 0, None)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("+291us", 291e-6), ("-2.156ms", -2.156e-3), ("+1min 2.5s", 62.5), ("0", None), ("12 parsecs", None)],
)
def test_timesyncd_spans(text: str, seconds: float) -> None:
    if seconds is None:
        with pytest.raises(parse_timesyncd.TimesyncdFormatError):
            parse_timesyncd.parse_span(text)
    else:
        assert parse_timesyncd.parse_span(text) == pytest.approx(seconds)


def test_timedatectl_show() -> None:
    values = parse_timesyncd.parse_show(read("timedatectl-show_reconstructed_systemd-252_synchronised.txt"))
    assert parse_timesyncd.yes_no(values["NTPSynchronized"]) is True
    with pytest.raises(parse_timesyncd.TimesyncdFormatError, match="line 1"):
        parse_timesyncd.parse_show(read("timedatectl-timesync-status_debian-12_systemd-252_no-systemd.stderr.txt"))


def test_ntpq_synced_and_not() -> None:
    peers = parse_ntpq.parse_peers(read("ntpq-pn_centos-7_ntp-4.2.6_published-synced.txt"))
    peer = parse_ntpq.system_peer(peers)
    assert peer is not None and peer["address"] == "ntp3.jst.mfeed." and peer["stratum"] == 2
    assert peer["offset_s"] == pytest.approx(-1.033e-3)
    assert [p["state"] for p in peers] == ["candidate", "candidate", "system_peer"]
    assert [p["last_rx_s"] for p in peers] == [29, 28, 28]
    pool = parse_ntpq.parse_peers(read("ntpq-pn_ubuntu-22.04_ntp-4.2.8_published-pool-not-synced.txt"))
    assert len(pool) == 5 and parse_ntpq.system_peer(pool) is None
    pps = parse_ntpq.parse_peers(read("ntpq-pn_raspbian_ntpsec_published-pps.txt"))
    assert parse_ntpq.system_peer(pps)["offset_s"] == pytest.approx(48.9037e-3)  # type: ignore[index]
    assert [p["last_rx_s"] for p in pps] == [8, 7, None]  # ntp.time.nl: '-', no packet yet
    assert [parse_ntpq.when_seconds(w) for w in ("2048", "35m", "5h", "3d", "-", "7x", "")] == [
        2048, 2100, 18000, 259200, None, None, None]  # fmt: skip
    with pytest.raises(parse_ntpq.NtpqFormatError, match="no peer table"):
        parse_ntpq.parse_peers(read("ntpq-pn_reconstructed_ntp-4.2.8_no-daemon.stderr.txt"))


# ---------------------------------------------------------------- fuzzing: never anything but the format error
SAMPLES = sorted(p.name for p in FIX.iterdir() if p.suffix == ".txt")
PARSERS: dict[str, tuple[Callable[[str], object], type[Exception]]] = {
    "chronyc-tracking": (parse_chrony.parse_tracking, parse_chrony.ChronyFormatError),
    "chronyc-sources": (parse_chrony.parse_sources, parse_chrony.ChronyFormatError),
    "timedatectl-timesync-status": (parse_timesyncd.parse_timesync_status, parse_timesyncd.TimesyncdFormatError),
    "timedatectl-show": (parse_timesyncd.parse_show, parse_timesyncd.TimesyncdFormatError),
    "ntpq-pn": (parse_ntpq.parse_peers, parse_ntpq.NtpqFormatError),
}


def _mutate(text: str, data: st.DataObject) -> str:
    """Cut, duplicate, replace or insert characters of a real sample."""
    chars = list(text)
    for _ in range(data.draw(st.integers(0, 8))):
        op = data.draw(st.sampled_from(["cut", "replace", "insert", "dup"]))
        at = data.draw(st.integers(0, len(chars)))
        piece = data.draw(st.text(alphabet=",.:=-+*#~? \n0123456789abcdefnsuµxo\x00é", max_size=6))
        if op == "cut":
            del chars[at : at + data.draw(st.integers(1, 20))]
        elif op == "replace":
            chars[at : at + len(piece)] = piece
        elif op == "insert":
            chars[at:at] = piece
        else:
            chars[at:at] = chars[at : at + 30]
    return "".join(chars)


@pytest.mark.parametrize("kind", sorted(PARSERS))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_parsers_never_raise_anything_but_their_format_error(kind: str, data: st.DataObject) -> None:
    parse, error = PARSERS[kind]
    samples = [
        read(name) for name in SAMPLES if name.startswith(kind + "_") or name.startswith(kind.split("-", maxsplit=1)[0])
    ]
    text = data.draw(st.one_of(st.text(max_size=300), st.sampled_from(samples)))
    text = _mutate(text, data)
    with contextlib.suppress(error):
        parse(text)
