"""How JSON columns are written and read: orjson, with the standard library where orjson declines.

JSON columns hold evidence, findings and settings; reading and writing them is a large share of
evaluating a report.  orjson is several times faster than the json module, but refuses to write
integers beyond 64 bits and reads them as floats (losing digits), and an agent may send such a
number: text with a run of 19 or more digits is read, and such values written, the json module's way.
"""

from __future__ import annotations

import json
import re
from typing import Any, Union

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS
_LONG_STR = re.compile(r"[0-9]{19}")
_LONG_BYTES = re.compile(rb"[0-9]{19}")


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, option=_OPTIONS).decode("utf-8")
    except TypeError:  # an integer past 64 bits, or a type orjson does not know
        return json.dumps(value)


def loads(text: Union[str, bytes]) -> Any:
    long = _LONG_STR.search(text) if isinstance(text, str) else _LONG_BYTES.search(text)
    if long is not None:  # perhaps an integer past 64 bits: exactly, not as orjson's float
        return json.loads(text)
    return orjson.loads(text)
