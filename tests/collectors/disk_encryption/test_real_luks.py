"""Real LUKS headers on loop devices: cryptsetup writes them, the collector finds them.

Needs root, losetup and cryptsetup (skipped on a developer machine without
them, failing under CI).  The containers are never opened: device-mapper is not
needed, only the loop device's /sys/block entry and /dev node.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator, Tuple

import pytest

from collectors.base import Context
from collectors.disk_encryption import SPEC
from collectors.disk_encryption.parse_luks import parse_luks_header
from collectors.disk_encryption.read_containers import read_header_area
from tests.conftest import require_root, require_tool

pytestmark = pytest.mark.root


def _luks_loop(tmp_path: Path, luks_type: str, *extra: str) -> Iterator[Tuple[str, str]]:
    require_root("losetup and cryptsetup luksFormat on a loop device")
    losetup, cryptsetup = require_tool("losetup"), require_tool("cryptsetup")
    image = tmp_path / f"{luks_type}.img"
    with open(image, "wb") as handle:
        handle.truncate(20 * 1024 * 1024)
    key = tmp_path / "key"
    key.write_bytes(b"tillsyn-test-key")
    loop = subprocess.run(
        [losetup, "--find", "--show", str(image)], check=True, capture_output=True, text=True, timeout=10
    ).stdout.strip()
    uuid = {"luks2": "3e1f5a7c-9b2d-4c6e-8f0a-1b3c5d7e9f20", "luks1": "6a8c0e2f-4b6d-4f8a-9c1e-3a5c7e9b1d3f"}
    try:
        subprocess.run(
            [
                cryptsetup,
                "luksFormat",
                "--type",
                luks_type,
                "--batch-mode",
                "--key-file",
                str(key),
                "--pbkdf-force-iterations",
                "1000",
                "--uuid",
                uuid[luks_type],
                *extra,
                loop,
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        yield loop, uuid[luks_type]
    finally:
        subprocess.run([losetup, "-d", loop], check=False, capture_output=True, timeout=10)


@pytest.fixture
def luks2_loop(tmp_path: Path) -> Iterator[Tuple[str, str]]:
    yield from _luks_loop(tmp_path, "luks2", "--pbkdf", "pbkdf2", "--label", "evidence")


@pytest.fixture
def luks1_loop(tmp_path: Path) -> Iterator[Tuple[str, str]]:
    # Other ciphers than AES would need dm-crypt for cryptsetup's cipher check.
    yield from _luks_loop(tmp_path, "luks1", "--cipher", "aes-xts-plain64", "--key-size", "256")


def test_header_parser_on_real_luks2(luks2_loop: Tuple[str, str]) -> None:
    loop, uuid = luks2_loop
    header = parse_luks_header(read_header_area(Context(), Path(loop).name))
    assert header is not None
    assert (header.version, header.cipher, header.uuid, header.label, header.kdfs, header.key_bits) == (
        2,
        "aes-xts-plain64",
        uuid,
        "evidence",
        ("pbkdf2",),
        512,
    )


def test_header_parser_on_real_luks1(luks1_loop: Tuple[str, str]) -> None:
    loop, uuid = luks1_loop
    header = parse_luks_header(read_header_area(Context(), Path(loop).name))
    assert header is not None
    assert (header.version, header.cipher, header.uuid, header.key_bits) == (1, "aes-xts-plain64", uuid, 256)


def test_unopened_container_found_through_real_sysfs(luks2_loop: Tuple[str, str], luks1_loop: Tuple[str, str]) -> None:
    outcome = SPEC.collect(Context())
    containers = {c["device"]: c for c in outcome.observed["luks_containers"]}
    for (loop, uuid), version, cipher in ((luks2_loop, 2, "aes-xts-plain64"), (luks1_loop, 1, "aes-xts-plain64")):
        found = containers[Path(loop).name]
        assert (found["version"], found["uuid"], found["cipher"], found["opened"], found["mapped_as"]) == (
            version,
            uuid,
            cipher,
            False,
            None,
        )
    assert "LUKS not opened: " in SPEC.summary(outcome.observed)


def test_unprivileged_run_reports_a_gap_not_a_cipher(luks2_loop: Tuple[str, str]) -> None:
    outcome = SPEC.collect(Context(euid=1000))
    name = Path(luks2_loop[0]).name
    listed = [c for c in outcome.observed["luks_containers"] if c["device"] == name]
    whats = [g.what for g in outcome.gaps]
    if listed:  # a host with udev: found through /run/udev/data, cipher still unknown
        assert listed[0]["cipher"] is None
        assert any(w.startswith("cipher of LUKS containers") and name in w for w in whats)
    else:
        assert "LUKS containers that are not opened" in whats
