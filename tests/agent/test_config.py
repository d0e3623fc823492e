"""agent.yaml: a broken file gets an error naming the key and the file."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from agent.config import COMMON, DELIVERY, PRIVACY, SPOOL, TOP, ConfigError, from_mapping, load, resolve_path
from collectors import REGISTRY

ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    return path


def test_shipped_config_is_valid() -> None:
    config = load(ROOT / "config" / "agent.yaml", required=True)
    # the shipped file has a section for every collector (a new one must be added to it)
    sections = yaml.safe_load((ROOT / "config" / "agent.yaml").read_text())["collectors"]
    assert set(sections) == set(config.collectors) == set(REGISTRY)


def test_the_shipped_file_is_the_defaults_and_names_every_key() -> None:
    """README: the shipped config files list every key (packagers ship it as /etc/tillsyn/agent.yaml)."""
    shipped = ROOT / "config" / "agent.yaml"
    assert replace(load(shipped, required=True), source=None) == from_mapping({}, None)
    text = shipped.read_text()
    schemas = [TOP, SPOOL, DELIVERY, PRIVACY, COMMON, *(spec.settings for spec in REGISTRY.values())]
    missing = sorted({k for schema in schemas for k in schema if not re.search(rf"^[ #-]*{k}:", text, re.MULTILINE)})
    assert missing == []


def test_the_shipped_file_reads_the_same_with_libyaml_as_with_the_pure_parser() -> None:
    """``load`` reads with libyaml where PyYAML has it; the shipped file must mean the same either way."""
    raw = (ROOT / "config" / "agent.yaml").read_bytes()
    assert yaml.__with_libyaml__  # Debian's python3-yaml and the locked wheel both have it
    assert yaml.load(raw, Loader=yaml.CSafeLoader) == yaml.safe_load(raw)


def test_missing_default_file_means_defaults(tmp_path: Path) -> None:
    config = load(tmp_path / "absent.yaml", required=False)
    assert config.source is None
    assert config.collectors["disk_encryption"].interval == 3600
    assert config.collectors["power"].enabled is True


def test_missing_named_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"absent\.yaml: no such file"):
        load(tmp_path / "absent.yaml", required=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("collectors:\n  power:\n    intervall: 5\n", "collectors.power.intervall: unknown setting"),
        ("collectors:\n  power:\n    interval: soon\n", "collectors.power.interval: expected an integer"),
        ("collectors:\n  power:\n    interval: 1\n", "collectors.power.interval: must be at least 10"),
        ("collectors:\n  powr: {}\n", "collectors.powr: no such collector"),
        ("collectors:\n  power: [1]\n", "collectors.power: expected a mapping"),
        ("colectors: {}\n", "colectors: unknown setting"),
        ("- just\n- a list\n", "expected a mapping, got list"),
        # libyaml refuses it too, but the message is the pure parser's, as it always was
        ("collectors:\n  power: {enabled: yes\n", "line 3, column 1: not valid YAML: expected ',' or '}', but got"),
        ("a: " + "[" * 100000, "not a configuration: nested too deeply"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load(path, required=True)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "# " + "x" * (1024 * 1024 + 10) + "\n")
    with pytest.raises(ConfigError, match="larger than"):
        load(path, required=True)


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load(_write(tmp_path, ""), required=True).collectors["ports"].enabled


def test_path_resolution_order() -> None:
    assert resolve_path("/a.yaml", {"TILLSYN_AGENT_CONFIG": "/b.yaml"}) == (Path("/a.yaml"), True)
    assert resolve_path(None, {"TILLSYN_AGENT_CONFIG": "/b.yaml"}) == (Path("/b.yaml"), True)
    assert resolve_path(None, {}) == (Path("/etc/tillsyn/agent.yaml"), False)


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_bytes(b"collectors:\n  power:\n    enabled: caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load(path, required=True)
    assert str(info.value).startswith(f"{path}:") and "not valid YAML" in str(info.value)


def test_each_collectors_interval_timeout_and_poll_default_to_its_spec() -> None:
    """The scheduling defaults live on each CollectorSpec (disk_encryption hourly, power polled every 5 s)."""
    collectors = from_mapping({}, None).collectors
    got = {name: (c.interval, c.timeout, c.poll) for name, c in collectors.items()}
    assert got == {name: (spec.interval, spec.timeout, spec.poll) for name, spec in REGISTRY.items()}
    assert got["disk_encryption"][0] == 3600 and got["power"][2] == 5.0
