"""Table-driven tests of the pure parsers over captured and reconstructed fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pytest

from collectors.disk_encryption.model import kind_from_dm_uuid, luks_uuid_from_dm_uuid
from collectors.disk_encryption.parse_dmtable import DmTableFormatError, parse_crypt_table
from collectors.disk_encryption.parse_lsblk import LsblkFormatError, parse_lsblk_json
from collectors.disk_encryption.parse_luks import LuksFormatError, parse_luks_header, parse_udev_properties
from collectors.disk_encryption.parse_procfs import ProcFormatError, parse_swaps
from collectors.disk_encryption.parse_zfs import ZfsFormatError, parse_zfs_get, parse_zpool_status
from collectors.disk_encryption.stack import decide

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "disk_encryption"
TREES = FIX / "trees"


@pytest.mark.parametrize(
    ("name", "version", "cipher", "uuid", "label", "key_bits", "kdfs", "secondary"),
    [
        (
            "luks2-header_debian-12_cryptsetup-2.6.1_aes-xts-plain64.bin",
            2,
            "aes-xts-plain64",
            "5d8f3a9e-1c2b-4e7f-9a6d-3b1c0e2f4a5d",
            "tillsyn-test",
            512,
            ("pbkdf2",),
            False,
        ),
        (
            "luks2-header_debian-12_cryptsetup-2.6.1_primary-wiped.bin",
            2,
            "aes-xts-plain64",
            "5d8f3a9e-1c2b-4e7f-9a6d-3b1c0e2f4a5d",
            "tillsyn-test",
            512,
            ("pbkdf2",),
            True,
        ),
        (
            "luks1-header_debian-12_cryptsetup-2.6.1_aes-cbc-essiv.bin",
            1,
            "aes-cbc-essiv:sha256",
            "9b1e2c3d-4f5a-4b6c-8d7e-0f1a2b3c4d5e",
            None,
            256,
            ("pbkdf2-sha256",),
            False,
        ),
    ],
)
def test_luks_header(
    name: str, version: int, cipher: str, uuid: str, label: Optional[str], key_bits: int, kdfs: tuple, secondary: bool
) -> None:
    header = parse_luks_header((FIX / name).read_bytes())
    assert header is not None
    assert (
        header.version,
        header.cipher,
        header.uuid,
        header.label,
        header.key_bits,
        header.kdfs,
        header.from_secondary,
    ) == (version, cipher, uuid, label, key_bits, kdfs, secondary)


def test_luks_absent_and_malformed() -> None:
    assert parse_luks_header((FIX / "no-header_zeroes.bin").read_bytes()) is None
    assert parse_luks_header(b"") is None
    with pytest.raises(LuksFormatError, match="JSON metadata unreadable"):
        parse_luks_header((FIX / "luks2-header_debian-12_cryptsetup-2.6.1_malformed-json.bin").read_bytes())
    good = (FIX / "luks2-header_debian-12_cryptsetup-2.6.1_aes-xts-plain64.bin").read_bytes()
    with pytest.raises(LuksFormatError, match="truncated"):
        parse_luks_header(good[:6000])
    with pytest.raises(LuksFormatError, match="unknown LUKS version 7"):
        parse_luks_header(b"LUKS\xba\xbe\x00\x07" + bytes(4088))


def test_udev_properties() -> None:
    text = "S:disk/by-uuid/5d8f\nE:ID_FS_TYPE=crypto_LUKS\nE:ID_FS_VERSION=2\nE:ID_FS_UUID=5d8f\nG:systemd\n"
    assert parse_udev_properties(text) == {"ID_FS_TYPE": "crypto_LUKS", "ID_FS_VERSION": "2", "ID_FS_UUID": "5d8f"}
    assert parse_udev_properties("") == {}


def test_swaps() -> None:
    swaps = parse_swaps((TREES / "debian-12_encrypted-swap/proc/swaps").read_text())
    assert [(s.path, s.type, s.size_kib, s.priority) for s in swaps] == [
        ("/dev/dm-0", "partition", 1048572, -2),
        ("/dev/dm-1", "partition", 1048572, -3),
        ("/swap file", "file", 524284, -4),
    ]
    assert parse_swaps((TREES / "debian-12_unencrypted-root_captured/proc/swaps").read_text()) == []
    assert parse_swaps("") == []
    with pytest.raises(ProcFormatError):
        parse_swaps("/dev/sda2 partition 100 0 -2\n")


@pytest.mark.parametrize(
    ("uuid", "kind", "crypt_type"),
    [
        ("CRYPT-LUKS2-4f3c1b2a9e8d47c6b5a4f3e2d1c0b9a8-sda3_crypt", "crypt", "LUKS2"),
        ("CRYPT-PLAIN-cryptswap1", "crypt", "PLAIN"),
        ("CRYPT-TEMP-temporary-cryptsetup-1", "crypt", "TEMP"),
        ("CRYPT-SUBDEV-abc-x_dif", "dm-subdev", None),
        ("CRYPT-VERITY-abc-root", "dm-verity", None),
        ("LVM-Xq1HRz8kYpS2", "lvm", None),
        ("mpath-3600508b", "mpath", None),
        ("", "dm", None),
    ],
)
def test_dm_uuid_kinds(uuid: str, kind: str, crypt_type: Optional[str]) -> None:
    assert kind_from_dm_uuid(uuid) == (kind, crypt_type)


def test_luks_uuid_from_dm_uuid() -> None:
    assert luks_uuid_from_dm_uuid("CRYPT-LUKS2-4f3c1b2a9e8d47c6b5a4f3e2d1c0b9a8-sda3_crypt") == (
        "4f3c1b2a-9e8d-47c6-b5a4-f3e2d1c0b9a8"
    )
    assert luks_uuid_from_dm_uuid("CRYPT-PLAIN-swap") is None
    assert luks_uuid_from_dm_uuid("CRYPT-LUKS2-nothex-x") is None


def test_lsblk_lvm_on_luks() -> None:
    result = parse_lsblk_json((FIX / "lsblk-json_debian-12_util-linux-2.38.1_lvm-on-luks.json").read_text())
    assert result.mountpoints["dm-1"] == ["/var/www", "/"]
    dev = result.devices["dm-0"]
    assert (dev.kind, dev.lower, dev.crypt_type, dev.dm_name) == ("crypt", ("sda3",), "LUKS2", "sda3_crypt")
    decision = decide(result.devices, "dm-1")
    assert decision.encrypted is True and decision.layer == "luks2"
    assert decision.chain == [
        "sda -> sda3 (part) -> dm-0 (crypt LUKS2, name sda3_crypt) -> dm-1 (lvm, name debian--vg-root)"
    ]
    assert decide(result.devices, "sda2").encrypted is False


def test_lsblk_md_member_listed_twice_is_merged() -> None:
    result = parse_lsblk_json((FIX / "lsblk-json_debian-12_util-linux-2.38.1_luks-on-md-raid1.json").read_text())
    assert result.devices["md0"].lower == ("sda1", "sdb1")
    assert result.devices["dm-1"].crypt_type is None  # plain mode: lsblk cannot tell
    assert decide(result.devices, "dm-1").encrypted is True


def test_lsblk_captured_and_malformed() -> None:
    result = parse_lsblk_json((FIX / "lsblk-json_debian-12_util-linux-2.38.1_unencrypted-root.json").read_text())
    assert result.mountpoints["vda"] == ["/"]
    assert decide(result.devices, "vda").encrypted is False
    assert result.devices["zram0"].volatile
    with pytest.raises(LsblkFormatError):
        parse_lsblk_json((FIX / "lsblk-json_malformed.json").read_text())
    with pytest.raises(LsblkFormatError):
        parse_lsblk_json('{"devices": []}')
    assert parse_lsblk_json('{"blockdevices": []}').devices == {}


def test_zfs_get() -> None:
    props = parse_zfs_get((FIX / "zfs-get_ubuntu-22.04_zfs-2.1.5_native.txt").read_text())
    root = props["rpool/ROOT/ubuntu_k3j2h1"]
    assert (root.encryption, root.keystatus, root.encryptionroot, root.encrypted) == (
        "aes-256-gcm",
        "available",
        "rpool",
        True,
    )
    boot = props["bpool/BOOT/ubuntu_k3j2h1"]
    assert (boot.encryption, boot.keystatus, boot.encryptionroot, boot.encrypted) == ("off", None, None, False)
    assert parse_zfs_get("") == {}
    with pytest.raises(ZfsFormatError):
        parse_zfs_get((FIX / "zfs-get_malformed.txt").read_text())


def test_zpool_status() -> None:
    assert parse_zpool_status((FIX / "zpool-status-PL_debian-12_zfs-2.1.11_on-luks.txt").read_text()) == {
        "rpool": ["/dev/dm-0", "/dev/dm-1"]
    }
    assert parse_zpool_status((FIX / "zpool-status-PL_ubuntu-22.04_zfs-2.1.5_native.txt").read_text()) == {
        "bpool": ["/dev/nvme0n1p3"],
        "rpool": ["/dev/nvme0n1p4"],
    }
    assert parse_zpool_status("") == {}
    with pytest.raises(ZfsFormatError):
        parse_zpool_status("no pools available to display\n")


def test_dmsetup_crypt_table() -> None:
    table = parse_crypt_table((FIX / "dmsetup-table-crypt_debian-12_lvm2-2.03.16_swap.txt").read_text())
    assert table == {
        "cryptswap1": "aes-xts-plain64",
        "temporary-cryptsetup-1234": "aes-cbc-essiv:sha256",
        "md1_crypt": "aes-xts-plain64",
    }
    assert parse_crypt_table("No devices found\n") == {}
    with pytest.raises(DmTableFormatError):
        parse_crypt_table("vg-root: 0 100 linear 8:3 2048\n")
