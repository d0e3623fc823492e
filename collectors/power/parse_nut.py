"""Pure parsers for NUT's network protocol (upsd, TCP 3493) and NUT variables -> :class:`Ups`.

Protocol reference: NUT developer guide, "Network protocol information": replies
to ``LIST UPS`` are ``BEGIN LIST UPS`` / ``UPS <name> "<desc>"`` / ``END LIST UPS``;
to ``LIST VAR <ups>`` ``BEGIN LIST VAR <ups>`` / ``VAR <ups> <var> "<value>"`` /
``END LIST VAR <ups>``; errors are ``ERR <code> [<extra>]``.  Multi-word elements
are in double quotes; embedded quotes and backslashes are backslash-escaped.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional

from collectors.power import parse_status_flags, parse_values
from collectors.power.model import Ups


class NutProtocolError(ValueError):
    """A reply that does not follow the protocol, or an ``ERR`` reply (``code`` set)."""

    def __init__(self, message: str, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.code = code


def split_words(line: str) -> List[str]:
    """Split a protocol line into words, honouring "quotes" and backslash escapes."""
    words: List[str] = []
    current: List[str] = []
    in_quotes = False
    escaped = False
    started = False
    for char in line:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
            started = True
        elif char == '"':
            in_quotes = not in_quotes
            started = True
        elif char in " \t" and not in_quotes:
            if started:
                words.append("".join(current))
                current, started = [], False
        else:
            current.append(char)
            started = True
    if in_quotes or escaped:
        raise NutProtocolError(f"unterminated quote in reply line {line[:120]!r}")
    if started:
        words.append("".join(current))
    return words


def quote(word: str) -> str:
    """Quote a word for a request line (e.g. a password with spaces)."""
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_error(line: str) -> None:
    """Raise :class:`NutProtocolError` with the code for an ``ERR`` line."""
    if line.startswith("ERR"):
        words = line.split()
        code = words[1] if len(words) > 1 else "UNKNOWN"
        raise NutProtocolError(f"upsd answered ERR {' '.join(words[1:])}".strip(), code)


def _block(lines: List[str], header: str) -> List[List[str]]:
    """The word lists between ``BEGIN <header>`` and ``END <header>``."""
    body: List[List[str]] = []
    begun = False
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            continue
        if not begun:
            check_error(line)
            if split_words(line) != ["BEGIN", *header.split()]:
                raise NutProtocolError(f"expected 'BEGIN {header}', got {line[:120]!r}")
            begun = True
            continue
        words = split_words(line)
        if words == ["END", *header.split()]:
            return body
        check_error(line)
        body.append(words)
    raise NutProtocolError(f"reply ended before 'END {header}'")


def parse_list_ups(text: str) -> Dict[str, str]:
    """``LIST UPS`` reply -> {ups name: description}."""
    result: Dict[str, str] = {}
    for words in _block(text.splitlines(), "LIST UPS"):
        if len(words) < 2 or words[0] != "UPS":
            raise NutProtocolError(f"unexpected line in LIST UPS: {' '.join(words)[:120]!r}")
        result[words[1]] = words[2] if len(words) > 2 else ""
    return result


def parse_list_var(text: str, ups: str) -> Dict[str, str]:
    """``LIST VAR <ups>`` reply -> {variable: value}."""
    result: Dict[str, str] = {}
    for words in _block(text.splitlines(), f"LIST VAR {ups}"):
        if len(words) != 4 or words[0] != "VAR" or words[1] != ups:
            raise NutProtocolError(f"unexpected line in LIST VAR {ups}: {' '.join(words)[:120]!r}")
        result[words[2]] = words[3]
    return result


def _first(variables: Mapping[str, str], *names: str) -> Optional[str]:
    for name in names:
        value = variables.get(name)
        if value is not None and value.strip():
            return value.strip()
    return None


def ups_from_vars(name: str, server: str, variables: Mapping[str, str], description: str = "") -> Ups:
    """Map NUT standard variables (NUT developer guide, "new-names") to a :class:`Ups`."""
    status = _first(variables, "ups.status")
    flags = parse_status_flags.parse_nut_status(status) if status else []
    if flags == ["WAIT"]:  # upsd's placeholder until the driver has sent data
        flags = []
    test_date_raw = _first(variables, "ups.test.date")
    return Ups(
        source="nut",
        name=name,
        server=server,
        description=description or None,
        status_raw=status,
        flags=flags,
        on_line=parse_status_flags.on_line(flags),
        battery_charge_pct=parse_values.number(variables.get("battery.charge")),
        runtime_s=parse_values.seconds(variables.get("battery.runtime")),
        load_pct=parse_values.number(variables.get("ups.load")),
        self_test_result=_first(variables, "ups.test.result"),
        self_test_result_raw=_first(variables, "ups.test.result"),
        self_test_date=parse_values.test_date(test_date_raw),
        self_test_date_raw=test_date_raw,
        model=_first(variables, "device.model", "ups.model"),
        manufacturer=_first(variables, "device.mfr", "ups.mfr"),
    )
