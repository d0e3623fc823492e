"""Loading ``agent.yaml``: every key checked, every error naming the key and the file.

A missing default file means "all defaults"; a file named explicitly (flag or
``TILLSYN_AGENT_CONFIG``) must exist.  Nothing is half-applied: either the whole
file is valid or :class:`ConfigError` is raised and the caller keeps what it had.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import yaml

from collectors import REGISTRY
from collectors.settings import Field, SettingsError, validate
from evidence.policy import libyaml_may_read

DEFAULT_PATH = Path("/etc/tillsyn/agent.yaml")
ENV_PATH = "TILLSYN_AGENT_CONFIG"
MAX_FILE_BYTES = 1024 * 1024

# Keys every collector has, beside its own settings; a collector's spec gives its own defaults.
COMMON: Dict[str, Field] = {
    "enabled": Field(bool, True, "run this collector"),
    "interval": Field(int, 300, "seconds between runs in the daemon", minimum=10),
    "timeout": Field(float, 30.0, "seconds before a run is abandoned and reported as errored", minimum=0.1),
    "poll": Field(
        float, 0.0, "seconds between quick checks that run the collector at once on a change (0: off)", minimum=0
    ),
}

TOP: Dict[str, Field] = {
    "collectors": Field(dict, {}, "per-collector settings, by collector name"),
    "command_timeout": Field(float, 10.0, "default timeout of one command a collector runs", minimum=0.1),
    "heartbeat_interval": Field(int, 60, "seconds between heartbeats to the centre", minimum=5),
    "jitter": Field(
        float, 0.1, "random share of the shortest interval added to each round (fleet not in step)", minimum=0
    ),
    "spool": Field(dict, {}, "limits of the on-disk spool"),
    "delivery": Field(dict, {}, "retrying delivery"),
    "privacy": Field(dict, {}, "pseudonymisation of personal data"),
}
SPOOL: Dict[str, Field] = {
    "max_bytes": Field(
        int, 100 * 1024 * 1024, "oldest reports are dropped (and counted) beyond this size", minimum=64 * 1024
    ),
    "max_age": Field(int, 30 * 86400, "reports older than this many seconds are dropped (and counted)", minimum=60),
}
DELIVERY: Dict[str, Field] = {
    "backoff_min": Field(float, 1.0, "first retry delay in seconds", minimum=0.1),
    "backoff_max": Field(float, 300.0, "longest retry delay in seconds", minimum=1),
}
PRIVACY: Dict[str, Field] = {
    "pseudonymise": Field(bool, True, "replace usernames and home paths by keyed pseudonyms before sending"),
}


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and what to do."""


@dataclass(frozen=True)
class CollectorConfig:
    name: str
    enabled: bool
    interval: int
    timeout: float
    settings: Mapping[str, Any]
    poll: float = 0.0


@dataclass(frozen=True)
class AgentConfig:
    source: Optional[Path]
    """The file this came from, or None for built-in defaults."""
    command_timeout: float
    collectors: Mapping[str, CollectorConfig]
    heartbeat_interval: int = 60
    jitter: float = 0.1
    spool_max_bytes: int = 100 * 1024 * 1024
    spool_max_age: int = 30 * 86400
    backoff_min: float = 1.0
    backoff_max: float = 300.0
    pseudonymise: bool = True


def resolve_path(flag: Optional[str], env: Mapping[str, str]) -> Tuple[Path, bool]:
    """The config path and whether it was asked for explicitly (then it must exist)."""
    if flag:
        return Path(flag), True
    if env.get(ENV_PATH):
        return Path(env[ENV_PATH]), True
    return DEFAULT_PATH, False


def load(path: Path, *, required: bool) -> AgentConfig:
    """Read and validate ``path``; a missing optional file gives the defaults."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        if required:
            raise ConfigError(f"{path}: no such file; create it (see config/agent.yaml) or drop the option") from None
        return from_mapping({}, None)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror or err}") from err
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_FILE_BYTES} bytes; is this the right file?")
    try:
        data = _parse(raw)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{path}:{where}: not valid YAML: {problem}") from err
    except RecursionError as err:  # the YAML parser recurses once per level of nesting
        raise ConfigError(f"{path}: not a configuration: nested too deeply") from err
    return from_mapping(data, path)


def _parse(raw: bytes) -> Any:
    """The YAML document in ``raw``, read by libyaml where PyYAML has it (Debian's python3-yaml does).

    libyaml reads the shipped agent.yaml in about 1 ms of CPU, PyYAML's pure-Python parser in about
    16 ms, paid by every ``collect`` and ``check``.  A file libyaml refuses is read again by the pure
    parser, so errors keep its wording (line, column, problem) and its recursion limit.  libyaml
    accepts a few things the pure parser refuses (a tab between a key and its value, ``?`` inside
    a plain scalar in a flow collection); the keys and values are still validated as before.
    """
    if libyaml_may_read(raw):  # not for deeply nested text: libyaml recurses in C
        try:
            return yaml.load(raw, Loader=yaml.CSafeLoader)
        except yaml.YAMLError:
            pass
    return yaml.safe_load(raw)


def from_mapping(data: Any, source: Optional[Path]) -> AgentConfig:
    """Validate parsed YAML; errors name the dotted key and the file."""
    label = str(source) if source else "built-in defaults"
    try:
        top = validate(data, TOP, "agent")
        sections = top["collectors"]
        unknown = sorted(set(sections) - set(REGISTRY))
        if unknown:
            raise SettingsError(
                f"agent.collectors.{unknown[0]}",
                f"no such collector (known: {', '.join(sorted(REGISTRY))})",
            )
        collectors = {name: _collector(name, sections.get(name)) for name in REGISTRY}
        spool = validate(top["spool"], SPOOL, "agent.spool")
        delivery = validate(top["delivery"], DELIVERY, "agent.uplink.deliver_reports")
        privacy = validate(top["privacy"], PRIVACY, "agent.privacy")
    except SettingsError as err:
        raise ConfigError(f"{label}: {err.key[len('agent.') :]}: {err.message}") from err
    return AgentConfig(
        source,
        float(top["command_timeout"]),
        collectors,
        heartbeat_interval=int(top["heartbeat_interval"]),
        jitter=float(top["jitter"]),
        spool_max_bytes=int(spool["max_bytes"]),
        spool_max_age=int(spool["max_age"]),
        backoff_min=float(delivery["backoff_min"]),
        backoff_max=float(delivery["backoff_max"]),
        pseudonymise=bool(privacy["pseudonymise"]),
    )


def _collector(name: str, section: Any) -> CollectorConfig:
    prefix = f"agent.collectors.{name}"
    if section is None:
        section = {}
    if not isinstance(section, Mapping):
        raise SettingsError(prefix, f"expected a mapping, got {type(section).__name__}")
    spec = REGISTRY[name]
    own = spec.settings
    clash = set(own) & set(COMMON)
    assert not clash, f"collector {name} redefines common settings {clash}"
    unknown = sorted(set(section) - set(COMMON) - set(own))
    if unknown:
        known = ", ".join(sorted(set(COMMON) | set(own)))
        raise SettingsError(f"{prefix}.{unknown[0]}", f"unknown setting (known here: {known})")
    common_part = {k: v for k, v in section.items() if k in COMMON}
    own_part = {k: v for k, v in section.items() if k not in COMMON}
    schema = {**COMMON}
    for key, value in (("interval", spec.interval), ("timeout", spec.timeout), ("poll", spec.poll)):
        field = schema[key]
        schema[key] = Field(field.type, value, field.help, minimum=field.minimum)
    common = validate(common_part, schema, prefix)
    settings = validate(own_part, own, prefix)
    return CollectorConfig(
        name, common["enabled"], int(common["interval"]), float(common["timeout"]), settings, float(common["poll"])
    )
