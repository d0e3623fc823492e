"""Text a collector read from the system, made safe to encode as UTF-8.

Python hands back file names and process paths that are not valid UTF-8 (a home directory
made in Latin-1, a binary installed from an old archive) with lone surrogates
(``surrogateescape``): such a string cannot be encoded, so one of them in a report would
stop it from being signed, pseudonymised or spooled at all.  Each such byte becomes the
text ``\\xNN``, so the evidence still shows what was there.
"""

from __future__ import annotations

from typing import Any


def utf8_safe(value: Any) -> Any:
    """``value`` with every string in it (keys too, in dicts and lists) encodable as UTF-8."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raw = value.encode("utf-8", "surrogateescape") if _escaped_only(value) else None
            if raw is not None:
                return raw.decode("utf-8", "backslashreplace")
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {utf8_safe(k): utf8_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(utf8_safe(v) for v in value)
    return value


def _escaped_only(value: str) -> bool:
    """Every lone surrogate is one ``surrogateescape`` made (U+DC80..U+DCFF, a raw byte)."""
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in value)
