"""central.yaml: errors name the file and the key; TILLSYN_* environment variables override it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, Set

import pytest
from pydantic import BaseModel

from central.config import CentralConfig, ConfigError, from_mapping, load
from tests.centre_process import ROOT


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "central.yaml"
    path.write_text(text)
    return path


def test_defaults_and_derived_values(tmp_path: Path) -> None:
    config = load(str(write(tmp_path, "heartbeat_interval_s: 30\n")), {})
    assert config.silent_threshold_s == 90  # 3 x heartbeat interval unless set
    assert config.db_url == "sqlite:////var/lib/tillsyn/central/central.db"
    assert (config.listen.host, config.listen.port) == ("127.0.0.1", 8443)
    assert from_mapping({"silent_after_s": 600}, "x", {}).silent_threshold_s == 600


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "state_dir: /srv/a\ndatabase_url: sqlite:////srv/a/c.db\npolicy: /srv/a/p.yaml\n")
    env = {
        "TILLSYN_STATE_DIR": str(tmp_path / "state"),
        "TILLSYN_DATABASE_URL": "postgresql://tillsyn@127.0.0.1/tillsyn",
        "TILLSYN_POLICY": str(tmp_path / "policy.yaml"),
    }
    config = load(str(path), env)
    assert (config.state_dir, config.database_url, config.policy) == (
        tmp_path / "state", env["TILLSYN_DATABASE_URL"], tmp_path / "policy.yaml")  # fmt: skip
    only_state = load(str(path), {"TILLSYN_STATE_DIR": str(tmp_path / "s2")})
    assert (only_state.state_dir, only_state.database_url) == (tmp_path / "s2", "sqlite:////srv/a/c.db")
    # the config file itself can come from the environment; state dir decides the default database
    config = load(None, {"TILLSYN_CENTRAL_CONFIG": str(write(tmp_path, "{}\n")), "TILLSYN_STATE_DIR": "/tmp/t"})
    assert config.db_url == "sqlite:////tmp/t/central.db"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("listen:\n  port: https\n", "listen.port: Input should be a valid integer"),
        ("listen:\n  port: 70000\n", "listen.port: Input should be less than or equal to 65535"),
        ("lissen: {}\n", "lissen: unknown setting"),
        ("limits:\n  max_body_byte: 5\n", "limits.max_body_byte: unknown setting"),
        ("heartbeat_interval_s: 1\n", "heartbeat_interval_s: Input should be greater than or equal to 5"),
        ("database_url: mysql://u@h/db\n", "database_url: unsupported database 'mysql': use sqlite:///PATH"),
        ("database_url: not a url\n", "database_url: not a database URL: use sqlite:///PATH or postgresql://"),
        ("- a\n- b\n", "expected a mapping at the top, got list"),
        ("listen: [\n", "line 2: not valid YAML"),
        # channels: one model per type; the key is as central.yaml spells it (no type in the path)
        ("alerting:\n  channels:\n    ops: {type: email}\n", "alerting.channels.ops.to: is required"),
        ("alerting:\n  channels:\n    ops: {type: email, to: []}\n", "alerting.channels.ops.to: needs at least 1"),
        ("alerting:\n  channels:\n    ops: {url: x}\n", "alerting.channels.ops: a channel needs 'type' (one of email,"),
        ("alerting:\n  channels:\n    ops: {type: fax}\n", "alerting.channels.ops: unknown channel type 'fax' (one of"),
        (
            "alerting:\n  channels:\n    ops: {type: webhook, url: x, to: [a@b]}\n",
            "alerting.channels.ops.to: unknown setting for a webhook channel",
        ),
        ("alerting:\n  channels:\n    pd: {type: pagerduty}\n", "alerting.channels.pd.routing_key_file: is required"),
        ("alerting:\n  channels:\n    am: {type: alertmanager, url: x, resend_s: 1}\n", "channels.am.resend_s:"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load(str(path), {})
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)


def test_a_bad_environment_value_is_named_as_such(tmp_path: Path) -> None:
    env: Dict[str, Any] = {"TILLSYN_DATABASE_URL": "oracle://x/y"}
    with pytest.raises(ConfigError, match=r"central.yaml: database_url \(from \$TILLSYN_DATABASE_URL\): unsupported"):
        load(str(write(tmp_path, "{}\n")), env)


def test_a_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.yaml: no such file \(see config/central.yaml for an example\)"):
        load(str(tmp_path / "nope.yaml"), {})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"listen:\n  host: caf\xe9\n", ": not UTF-8 text (byte 19: invalid continuation byte)"),
        (b"a: " + b"[" * 100000, ": not a configuration: nested too deeply"),
    ],
)
def test_a_file_that_is_not_utf8_or_nests_too_deeply_is_a_config_error(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "central.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load(str(path), {})
    assert str(caught.value) == str(path) + message
    done = subprocess.run(
        [sys.executable, "-m", "central.cli", "--config", str(path), "db", "current"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.strip().endswith(str(path) + message) and "Traceback" not in done.stderr


def _keys(model: Any) -> Set[str]:
    """Every setting name of a pydantic model, of the models inside it too (in lists and maps)."""
    names: Set[str] = set()
    for name, info in model.model_fields.items():
        names.add(name)
        for kind in _types_in(info.annotation):
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                names |= _keys(kind)
    return names


def _types_in(annotation: Any) -> Iterator[Any]:
    """``annotation`` and every type inside it (lists, maps, unions, Annotated), however deep."""
    yield annotation
    for inner in getattr(annotation, "__args__", ()):
        yield from _types_in(inner)
    if hasattr(annotation, "__metadata__"):  # Annotated[X, ...]: X is __origin__
        yield from _types_in(annotation.__origin__)


def test_the_shipped_file_is_the_defaults_and_names_every_key() -> None:
    shipped = ROOT / "config" / "central.yaml"
    assert load(str(shipped), {}) == CentralConfig()
    text = shipped.read_text()
    missing = sorted(k for k in _keys(CentralConfig) if not re.search(rf"^[ #-]*{k}:", text, re.MULTILINE))
    assert missing == []
    assert {"smtp_host", "routing_key_file", "resend_s", "stop", "labels", "idle_minutes"} <= _keys(CentralConfig)
