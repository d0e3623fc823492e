"""Parse the 512-byte header of a ClamAV signature database (``.cvd``/``.cld``), pure.

Layout (libclamav/cvd.c, sigtool(1) ``--info``): ASCII, colon-separated, padded
with spaces to 512 bytes::

    ClamAV-VDB:<build time "%d %b %Y %H-%M %z">:<version>:<signatures>:
    <functionality level>:<md5>:<digital signature>:<builder>:<build time, Unix seconds>
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

HEADER_SIZE = 512
MAGIC = "ClamAV-VDB"


@dataclass(frozen=True)
class CvdHeader:
    """What a database file says about itself."""

    build_time: datetime
    """UTC; from the Unix-seconds field when present (it has seconds), else the text field."""
    version: int
    signatures: int
    functionality_level: int
    builder: str


def parse_cvd_header(data: bytes) -> CvdHeader:
    """Parse the first 512 bytes of a database file; raises ``ValueError`` if it is not one."""
    text = data[:HEADER_SIZE].decode("ascii", errors="replace").rstrip(" \0\n")
    fields = text.split(":")
    if fields[0] != MAGIC:
        raise ValueError(f"not a ClamAV database header (starts {text[:16]!r})")
    if len(fields) < 5:
        raise ValueError(f"truncated ClamAV database header: {len(fields)} fields")
    try:
        version, signatures, level = int(fields[2]), int(fields[3]), int(fields[4])
    except ValueError as err:
        raise ValueError(f"ClamAV database header has a non-numeric field: {err}") from err
    builder = fields[7] if len(fields) > 7 else ""
    stime = fields[8].strip() if len(fields) > 8 else ""
    if stime.isdigit():
        build_time = datetime.fromtimestamp(int(stime), timezone.utc)
    else:
        try:
            build_time = datetime.strptime(fields[1], "%d %b %Y %H-%M %z").astimezone(timezone.utc)
        except ValueError as err:
            raise ValueError(f"ClamAV database header has an unreadable build time {fields[1]!r}") from err
    return CvdHeader(build_time, version, signatures, level, builder)
