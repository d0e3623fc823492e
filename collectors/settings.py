"""A small schema for collector and agent settings, so a wrong key or type names itself.

Settings come from YAML; each collector declares a :data:`Schema` of its keys.
:func:`validate` returns the settings with defaults filled in, or raises
:class:`SettingsError` with the dotted path of the first bad key.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

TypeSpec = Union[type, Tuple[type, ...]]


class SettingsError(ValueError):
    """A setting is unknown, missing or of the wrong type.  ``key`` is its dotted path."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@dataclass(frozen=True)
class Field:
    """One setting: its type, default (``REQUIRED`` when it has none) and a line of help."""

    type: TypeSpec
    default: Any
    help: str
    items: Optional[Schema] = None
    """For a list of mappings: the schema of each item."""
    choices: Optional[Sequence[Any]] = None
    minimum: Optional[float] = None


REQUIRED = object()
Schema = Mapping[str, Field]

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a mapping",
}


def _type_name(spec: TypeSpec) -> str:
    kinds = spec if isinstance(spec, tuple) else (spec,)
    return " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)


def _check_type(key: str, value: Any, spec: Field) -> Any:
    kinds = spec.type if isinstance(spec.type, tuple) else (spec.type,)
    if value is None and type(None) in kinds:
        return None
    # bool is an int in Python; a YAML "yes" must not pass for a number.
    if isinstance(value, bool) and bool not in kinds:
        raise SettingsError(key, f"expected {_type_name(spec.type)}, got {value!r}")
    if isinstance(value, int) and float in kinds and int not in kinds:
        value = float(value)
    if not isinstance(value, kinds):
        raise SettingsError(key, f"expected {_type_name(spec.type)}, got {type(value).__name__} {value!r}")
    if spec.choices is not None and value not in spec.choices:
        allowed = ", ".join(repr(c) for c in spec.choices)
        raise SettingsError(key, f"must be one of {allowed}, got {value!r}")
    if spec.minimum is not None and isinstance(value, (int, float)) and value < spec.minimum:
        raise SettingsError(key, f"must be at least {spec.minimum:g}, got {value!r}")
    if spec.items is not None and isinstance(value, list):
        return [validate(item, spec.items, f"{key}[{i}]") for i, item in enumerate(value)]
    return value


def validate(data: Any, schema: Schema, prefix: str) -> Dict[str, Any]:
    """Check ``data`` against ``schema`` and fill in defaults."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise SettingsError(prefix, f"expected a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - set(schema))
    if unknown:
        known = ", ".join(sorted(schema)) or "none"
        raise SettingsError(f"{prefix}.{unknown[0]}", f"unknown setting (known here: {known})")
    result: Dict[str, Any] = {}
    for name, spec in schema.items():
        key = f"{prefix}.{name}"
        if name in data:
            result[name] = _check_type(key, data[name], spec)
        elif spec.default is REQUIRED:
            raise SettingsError(key, "is required")
        else:
            result[name] = copy.deepcopy(spec.default)
    return result


def defaults(schema: Schema) -> Dict[str, Any]:
    """The settings a collector runs with when the config says nothing about it."""
    return validate({}, schema, "defaults")
