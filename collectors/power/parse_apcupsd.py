"""Pure parsers for apcupsd's Network Information Server (TCP 3551) and its status text.

Framing (apcupsd source, src/lib/apclibnis.c net_send/net_recv): every message is a
2-byte big-endian length followed by that many bytes.  The client sends ``status``;
the server answers one record per status line (the ``KEY : value`` lines that
``apcaccess`` prints) and ends with a zero-length record.
"""

from __future__ import annotations

import struct
from typing import Dict, List, Mapping, Optional, Tuple

from collectors.power import parse_status_flags, parse_values
from collectors.power.model import Ups

MAX_RECORD = 512
"""apcupsd never sends longer records (its buffers are 512 bytes); more means not NIS."""


class NisError(ValueError):
    """Bytes that do not follow the NIS framing."""


def encode_frame(payload: bytes) -> bytes:
    """One NIS message: 2-byte big-endian length, then the payload."""
    if len(payload) > 0xFFFF:
        raise NisError("NIS message over 65535 bytes")
    return struct.pack(">H", len(payload)) + payload


def decode_frames(data: bytes) -> Tuple[List[bytes], bool, int]:
    """Records in ``data``; whether the zero-length end record was seen; bytes consumed.

    An incomplete trailing frame is left unconsumed (read more and call again).
    """
    records: List[bytes] = []
    offset = 0
    while offset + 2 <= len(data):
        (length,) = struct.unpack_from(">H", data, offset)
        if length == 0:
            return records, True, offset + 2
        if length > MAX_RECORD:
            raise NisError(f"record of {length} bytes: not an apcupsd NIS reply")
        if offset + 2 + length > len(data):
            break
        records.append(data[offset + 2 : offset + 2 + length])
        offset += 2 + length
    return records, False, offset


def parse_status(text: str) -> Dict[str, str]:
    """``apcaccess`` / NIS status lines (``KEY : value``) -> {KEY: value}.

    Keys are the text before the first colon, stripped (``END APC``, ``CUMONBATT``);
    lines without a colon are ignored.  Raises :class:`NisError` when no ``APC``
    header line is present (not apcupsd status output).
    """
    fields: Dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip()
        if key and " " not in key.replace("END APC", "ENDAPC"):
            fields[key] = value.strip()
    if "APC" not in fields:
        raise NisError("no 'APC' header line: not apcupsd status output")
    return fields


def _text(fields: Mapping[str, str], key: str) -> Optional[str]:
    value = fields.get(key)
    if value is None or not value.strip() or value.strip() == "N/A":
        return None
    return value.strip()


# SELFTEST codes (apcupsd manual, apcaccess "SELFTEST": OK passed, BT failed for
# battery capacity, NG failed for overload, NO no results, IP in progress, ?? unknown).
SELFTEST_MEANING: Dict[str, str] = {
    "OK": "passed",
    "BT": "failed: battery capacity",
    "NG": "failed: overload",
}
# Codes that carry no result.  NO is what apcupsd shows nearly always: a Smart-UPS answers its
# self-test query with a result only for 5 minutes after a test (APC smart protocol, command X),
# and a USB UPS that has not tested since power-on says none.  LASTSTEST still dates the last test.
SELFTEST_NO_RESULT: Dict[str, str] = {
    "NO": "no self-test result (a UPS shows one only for 5 minutes after a test)",
    "IP": "a self-test is in progress",
    "??": "the self-test result is unknown to apcupsd",
}


def self_test_result(code: Optional[str]) -> Optional[str]:
    """``OK (passed)``, ``BT (failed: battery capacity)``, an unlisted code as is; None for no result."""
    if code is None or code in SELFTEST_NO_RESULT:
        return None
    meaning = SELFTEST_MEANING.get(code)
    return f"{code} ({meaning})" if meaning else code


def ups_from_status(fields: Mapping[str, str], server: str) -> Ups:
    """Map apcupsd status fields to a :class:`Ups` (TIMELEFT minutes become seconds)."""
    status = _text(fields, "STATUS")
    flags, unmapped = parse_status_flags.parse_apcupsd_status(status) if status else ([], [])
    test_code = _text(fields, "SELFTEST")
    test_date_raw = _text(fields, "LASTSTEST")
    return Ups(
        source="apcupsd",
        name=_text(fields, "UPSNAME") or _text(fields, "HOSTNAME") or server,
        server=server,
        status_raw=status,
        flags=flags,
        status_unmapped=unmapped,
        on_line=parse_status_flags.on_line(flags),
        battery_charge_pct=parse_values.number(fields.get("BCHARGE")),
        runtime_s=parse_values.seconds(fields.get("TIMELEFT")),
        load_pct=parse_values.number(fields.get("LOADPCT")),
        self_test_result=self_test_result(test_code),
        self_test_result_raw=test_code,
        self_test_date=parse_values.test_date(test_date_raw),
        self_test_date_raw=test_date_raw,
        model=_text(fields, "MODEL") or _text(fields, "APCMODEL"),
        # apcupsd speaks only APC's protocols and has no manufacturer field.
        manufacturer=None,
    )
