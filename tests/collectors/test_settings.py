"""Settings schema: defaults, and errors that name the key."""

from __future__ import annotations

import pytest

from collectors.settings import REQUIRED, Field, SettingsError, defaults, validate

SERVER = {"host": Field(str, "127.0.0.1", "host"), "port": Field(int, 3493, "port", minimum=1)}
SCHEMA = {
    "servers": Field(list, [{"host": "127.0.0.1", "port": 3493}], "servers", items=SERVER),
    "mode": Field(str, "auto", "mode", choices=("auto", "off")),
    "ratio": Field(float, 0.5, "a number"),
    "name": Field(str, REQUIRED, "required"),
}


def test_defaults_filled_and_copied() -> None:
    a = validate({"name": "x"}, SCHEMA, "c")
    b = validate({"name": "y"}, SCHEMA, "c")
    assert a["mode"] == "auto" and a["servers"] == [{"host": "127.0.0.1", "port": 3493}]
    a["servers"].append("mutated")
    assert b["servers"] == [{"host": "127.0.0.1", "port": 3493}]


def test_int_accepted_for_float() -> None:
    assert validate({"name": "x", "ratio": 2}, SCHEMA, "c")["ratio"] == 2.0


@pytest.mark.parametrize(
    ("data", "key", "fragment"),
    [
        ({"name": "x", "bogus": 1}, "c.bogus", "unknown setting"),
        ({}, "c.name", "is required"),
        ({"name": 5}, "c.name", "expected a string, got int 5"),
        ({"name": "x", "mode": "on"}, "c.mode", "must be one of 'auto', 'off'"),
        ({"name": "x", "ratio": True}, "c.ratio", "expected a number, got True"),
        ({"name": "x", "servers": [{"port": "x"}]}, "c.servers[0].port", "expected an integer"),
        ({"name": "x", "servers": [{"port": 0}]}, "c.servers[0].port", "must be at least 1"),
        ({"name": "x", "servers": [{"hots": "a"}]}, "c.servers[0].hots", "unknown setting"),
        ("text", "c", "expected a mapping"),
    ],
)
def test_errors_name_the_key(data: object, key: str, fragment: str) -> None:
    with pytest.raises(SettingsError) as info:
        validate(data, SCHEMA, "c")
    assert info.value.key == key
    assert fragment in info.value.message


def test_defaults_helper_rejects_required() -> None:
    with pytest.raises(SettingsError):
        defaults(SCHEMA)
    assert defaults({"a": Field(int, 1, "a")}) == {"a": 1}
