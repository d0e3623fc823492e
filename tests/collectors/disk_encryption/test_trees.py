"""The whole collector over captured and reconstructed sysfs/procfs trees.

Each tree under tests/fixtures/disk_encryption/trees/ holds only the files the
collector reads (see the fixtures README).  Tool output (zfs, zpool, dmsetup)
comes from fixture files through the context's runner.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import pytest

from collectors import settings as settings_mod
from collectors.base import Context
from collectors.disk_encryption import SPEC
from collectors.disk_encryption.parse_lsblk import parse_lsblk_json
from collectors.disk_encryption.stack import decide
from collectors.runner import CommandResult
from evidence.model import Outcome, Status
from tests.collectors.disk_encryption.helpers import FIX, TREES, run


def by_point(outcome: Outcome) -> Dict[str, Dict[str, Any]]:
    return {m["mountpoint"]: m for m in outcome.observed["mounts"]}


def gap_whats(outcome: Outcome) -> List[str]:
    return [g.what for g in outcome.gaps]


def test_lvm_on_luks_unprivileged() -> None:
    outcome, runner = run("debian-12_lvm-on-luks")
    mounts = by_point(outcome)
    assert list(mounts) == ["/", "/boot", "/boot/efi"]  # pseudo filesystems skipped, bind mount folded
    root = mounts["/"]
    assert (root["device"], root["encrypted"], root["layer"], root["also_mounted_at"]) == (
        "dm-1",
        True,
        "luks2",
        ["/var/www"],
    )
    assert root["chain"] == [
        "sda -> sda3 (part) -> dm-0 (crypt LUKS2, name sda3_crypt) -> dm-1 (lvm, name debian--vg-root)"
    ]
    assert root["ciphers"] is None  # not root: unknown, never guessed
    assert (mounts["/boot"]["encrypted"], mounts["/boot"]["chain"]) == (False, ["sda -> sda2 (part)"])
    # /boot and the ESP are clear by design (firmware and GRUB read them before any passphrase)
    assert {point: m["boot"] for point, m in mounts.items()} == {"/": False, "/boot": True, "/boot/efi": True}
    (swap,) = outcome.observed["swaps"]
    assert (swap["device"], swap["encrypted"], swap["layer"]) == ("dm-2", True, "luks2")
    (container,) = outcome.observed["luks_containers"]
    assert container == {
        "device": "sda3",
        "version": 2,
        "cipher": None,
        "key_bits": None,
        "kdfs": None,
        "uuid": "4f3c1b2a-9e8d-47c6-b5a4-f3e2d1c0b9a8",
        "label": None,
        "opened": True,
        "mapped_as": "sda3_crypt",
        "primary_header_damaged": None,
    }
    assert outcome.observed["unencrypted_count"] == 0  # only the boot mounts are clear
    assert outcome.status is Status.PARTIAL
    assert "cipher of dm-0" in gap_whats(outcome)
    assert "LUKS containers that are not opened" in gap_whats(outcome)
    assert runner.calls == []  # no ZFS, not root: no command at all
    assert SPEC.summary(outcome.observed) == "3 mounts: 1 encrypted, 2 unencrypted (2 boot); swap 1/1 encrypted"


def test_luks_on_md_raid1_as_root_reads_header_and_dm_table() -> None:
    outcome, runner = run(
        "debian-12_luks-on-md-raid1", euid=0, outputs={"dmsetup": "dmsetup-table-crypt_debian-12_lvm2-2.03.16_swap.txt"}
    )
    root = by_point(outcome)["/"]
    assert (root["encrypted"], root["layer"], root["ciphers"]) == (True, "luks2", ["aes-xts-plain64"])
    assert root["chain"] == [
        "sda -> sda1 (part) -> md0 (raid1) -> dm-0 (crypt LUKS2, name md0_crypt)",
        "sdb -> sdb1 (part) -> md0 (raid1) -> dm-0 (crypt LUKS2, name md0_crypt)",
    ]
    (swap,) = outcome.observed["swaps"]
    assert (swap["encrypted"], swap["layer"], swap["ciphers"]) == (True, "plain", ["aes-xts-plain64"])
    (container,) = outcome.observed["luks_containers"]
    assert (
        container["device"],
        container["version"],
        container["cipher"],
        container["label"],
        container["opened"],
        container["mapped_as"],
        container["kdfs"],
    ) == ("md0", 2, "aes-xts-plain64", "tillsyn-test", True, "md0_crypt", ["pbkdf2"])
    assert outcome.status is Status.COMPLETE, outcome.gaps
    assert runner.calls == [["dmsetup", "table", "--target", "crypt"]]


def test_plain_dm_crypt_unknown_dm_and_network_mounts() -> None:
    outcome, _ = run("debian-12_plain-dm-crypt")
    mounts = by_point(outcome)
    assert "/snap/core22/1380" not in mounts  # squashfs image skipped
    assert (mounts["/"]["encrypted"], mounts["/srv/data"]["encrypted"], mounts["/srv/data"]["layer"]) == (
        False,
        True,
        "plain",
    )
    assert mounts["/srv/scratch"]["encrypted"] is None
    assert mounts["/mnt/backup"]["encrypted"] is None
    reasons = {g.what: g.reason for g in outcome.gaps}
    assert "target type was not identified" in reasons["encryption of /srv/scratch"]
    assert "nas.example.net:/export/backup" in reasons["encryption of /mnt/backup"]
    assert (outcome.observed["unencrypted_count"], outcome.observed["unknown_count"]) == (2, 2)


def test_dm_without_uuid_resolved_by_dmsetup_as_root(tmp_path: Path) -> None:
    table = tmp_path / "table.txt"
    table.write_text(
        "data: 0 100 crypt aes-xts-plain64 0 0 8:16 0\nscratch: 0 100 crypt serpent-xts-plain64 0 0 8:32 0\n"
    )
    outcome, runner = run("debian-12_plain-dm-crypt", euid=0, outputs={"dmsetup": str(table)})
    scratch = by_point(outcome)["/srv/scratch"]
    assert (scratch["encrypted"], scratch["layer"], scratch["ciphers"]) == (True, "dm-crypt", ["serpent-xts-plain64"])
    assert by_point(outcome)["/srv/data"]["ciphers"] == ["aes-xts-plain64"]
    assert runner.calls.count(["dmsetup", "table", "--target", "crypt"]) == 1


def test_zfs_native_encryption() -> None:
    outcome, runner = run(
        "ubuntu-22.04_zfs-native",
        outputs={
            "zfs": "zfs-get_ubuntu-22.04_zfs-2.1.5_native.txt",
            "zpool": "zpool-status-PL_ubuntu-22.04_zfs-2.1.5_native.txt",
        },
    )
    mounts = by_point(outcome)
    root = mounts["/"]
    assert (root["encrypted"], root["layer"], root["ciphers"], root["device"], root["majmin"]) == (
        True,
        "zfs-native",
        ["aes-256-gcm"],
        None,
        None,
    )
    assert root["zfs"] == {
        "dataset": "rpool/ROOT/ubuntu_k3j2h1",
        "encryption": "aes-256-gcm",
        "keystatus": "available",
        "encryptionroot": "rpool",
    }
    assert root["chain"] == ["nvme0n1 -> nvme0n1p4 (part) -> zpool rpool"]
    assert mounts["/boot"]["encrypted"] is False
    assert mounts["/home/alice"]["encrypted"] is True
    assert runner.calls[0][:7] == [
        "zfs",
        "get",
        "-H",
        "-p",
        "-o",
        "name,property,value",
        "encryption,keystatus,encryptionroot",
    ]
    assert runner.calls[1] == ["zpool", "status", "-P", "-L", "bpool", "rpool"]


def test_zfs_without_tools_is_unknown_not_passing() -> None:
    outcome, _ = run("ubuntu-22.04_zfs-native")
    root = by_point(outcome)["/"]
    assert root["encrypted"] is None
    reasons = [g.reason for g in outcome.gaps if g.what == "encryption of /"]
    assert reasons == ["zfs: not found", "zpool: not found"]


def test_zfs_on_luks() -> None:
    outcome, _ = run(
        "debian-12_zfs-on-luks",
        outputs={
            "zfs": "zfs-get_debian-12_zfs-2.1.11_on-luks.txt",
            "zpool": "zpool-status-PL_debian-12_zfs-2.1.11_on-luks.txt",
        },
    )
    mounts = by_point(outcome)
    assert (mounts["/"]["encrypted"], mounts["/"]["layer"]) == (True, "luks2")
    assert mounts["/"]["chain"] == [
        "sda -> sda2 (part) -> dm-0 (crypt LUKS2, name luks-sda2) -> zpool rpool",
        "sdb -> sdb2 (part) -> dm-1 (crypt LUKS2, name luks-sdb2) -> zpool rpool",
    ]
    assert mounts["/srv"]["encrypted"] is True
    assert mounts["/boot"]["encrypted"] is False
    (swap,) = outcome.observed["swaps"]
    assert (swap["device"], swap["encrypted"], swap["volatile"]) == ("zram0", False, True)
    assert outcome.observed["unencrypted_count"] == 0  # /boot holds no data; zram swap never reaches media
    assert mounts["/boot"]["boot"] is True
    assert {c["device"] for c in outcome.observed["luks_containers"]} == {"sda2", "sdb2"}


def test_encrypted_swap_kinds_and_swap_file() -> None:
    outcome, _ = run("debian-12_encrypted-swap")
    swaps = outcome.observed["swaps"]
    assert [(s["path"], s["encrypted"], s["layer"]) for s in swaps] == [
        ("/dev/dm-0", True, "plain"),
        ("/dev/dm-1", True, "temp"),
        ("/swap file", False, None),
    ]
    assert swaps[2]["chain"] == ["sda -> sda1 (part) -> file /swap file"]
    assert outcome.observed["luks_containers"] == []


def test_captured_unencrypted_root() -> None:
    outcome, _ = run("debian-12_unencrypted-root_captured")
    (root,) = outcome.observed["mounts"]
    assert (root["mountpoint"], root["device"], root["encrypted"], root["chain"]) == ("/", "vda", False, ["vda"])
    assert outcome.observed["swaps"] == []
    assert outcome.observed["unencrypted_count"] == 1


@pytest.mark.parametrize(
    ("tree", "lsblk"),
    [
        ("debian-12_lvm-on-luks", "lsblk-json_debian-12_util-linux-2.38.1_lvm-on-luks.json"),
        ("debian-12_luks-on-md-raid1", "lsblk-json_debian-12_util-linux-2.38.1_luks-on-md-raid1.json"),
        ("debian-12_unencrypted-root_captured", "lsblk-json_debian-12_util-linux-2.38.1_unencrypted-root.json"),
    ],
)
def test_lsblk_cross_check(tree: str, lsblk: str) -> None:
    """lsblk's view of the same machine gives the same device, stack and decision per mount."""
    outcome, _ = run(tree)
    result = parse_lsblk_json((FIX / lsblk).read_text())
    records = {m["mountpoint"]: m for m in outcome.observed["mounts"]}
    for swap in outcome.observed["swaps"]:
        records["[SWAP]"] = swap
    checked = 0
    for kname, points in result.mountpoints.items():
        for point in points:
            record = records.get(point) or next(r for r in records.values() if point in r.get("also_mounted_at", []))
            decision = decide(result.devices, kname)
            assert record["device"] == kname
            assert record["encrypted"] == decision.encrypted
            names = [[step.split(" ")[0] for step in line.split(" -> ")] for line in record["chain"]]
            assert names == [[step.split(" ")[0] for step in line.split(" -> ")] for line in decision.chain]
            checked += 1
    assert checked >= 1


def test_not_present_when_only_overlay_and_pseudo(tmp_path: Path) -> None:
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/mountinfo").write_text(
        "500 400 0:120 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w\n"
        "501 500 0:121 / /proc rw - proc proc rw\n"
    )
    (tmp_path / "proc/swaps").write_text("Filename\tType\tSize\tUsed\tPriority\n")
    (tmp_path / "sys/block").mkdir(parents=True)
    outcome = SPEC.collect(Context(root=tmp_path, euid=1000))
    assert outcome.status is Status.NOT_PRESENT
    assert "no data filesystem" in outcome.gaps[0].reason


@pytest.mark.parametrize(
    ("fstype", "source"),
    [
        ("sshfs", "backup@nas01.example.net:/srv/data"),
        ("davfs", "https://dav.example.net/remote.php/webdav"),
        ("fuse.davfs2", "https://dav.example.net/remote.php/webdav"),
        ("9p", "hostshare"),
        ("virtiofs", "hostshare"),
        ("afs", "#example.net:root.cell."),
        ("nfs4", "nas01.example.net:/export/data"),
        ("fuse.mergerfs", "disk1:disk2"),  # any other FUSE filesystem: a user-space process
    ],
)
def test_network_and_fuse_mounts_are_unknown_as_another_hosts(tmp_path: Path, fstype: str, source: str) -> None:
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/mountinfo").write_text(
        f"60 26 0:52 / /mnt/data rw,nosuid,nodev,relatime shared:40 - {fstype} {source} rw\n"
    )
    (tmp_path / "proc/swaps").write_text("Filename\tType\tSize\tUsed\tPriority\n")
    (tmp_path / "sys/block").mkdir(parents=True)
    outcome = SPEC.collect(Context(root=tmp_path, euid=1000))
    assert by_point(outcome)["/mnt/data"]["encrypted"] is None
    assert {g.what: g.reason for g in outcome.gaps}["encryption of /mnt/data"] == (
        f"{fstype} filesystem from {source}: its storage is on another host or in a user-space process, "
        "whose encryption is not visible from this node"
    )


def test_malformed_mountinfo_is_a_gap_naming_the_line(tmp_path: Path) -> None:
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/mountinfo").write_text("26 1 254:1 / / rw - ext4 /dev/vda1 rw\n27 26 0:21 / /proc rw\n")
    (tmp_path / "proc/swaps").write_text("Filename\tType\tSize\tUsed\tPriority\n")
    (tmp_path / "sys/block").mkdir(parents=True)
    outcome = SPEC.collect(Context(root=tmp_path, euid=1000))
    assert outcome.status is Status.PARTIAL
    assert outcome.observed["mounts"] is None  # unknown, not "no mounts"
    assert {g.what: g.reason for g in outcome.gaps}["mounted filesystems"] == "mountinfo line 2: no ' - ' separator"


@pytest.mark.parametrize(
    ("swaps", "reason"),
    [
        (None, "/proc/swaps does not exist"),
        (
            "Name Kind\n/dev/dm-2 partition 1000 0 -2\n",
            "/proc/swaps: header line 'Filename Type Size Used Priority' missing",
        ),
        ("Filename\tType\tSize\tUsed\tPriority\n/dev/dm-2\n", "/proc/swaps line 2: too few fields"),
    ],
)
def test_unreadable_or_malformed_swaps_are_unknown_not_empty(tmp_path: Path, swaps: Optional[str], reason: str) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(TREES / "debian-12_lvm-on-luks", tree, symlinks=True)
    if swaps is None:
        (tree / "proc/swaps").unlink()
    else:
        (tree / "proc/swaps").write_text(swaps)
    outcome = SPEC.collect(Context(root=tree, euid=1000))
    assert outcome.observed["swaps"] is None
    assert {g.what: g.reason for g in outcome.gaps}["active swap"] == reason
    assert outcome.observed["mounts"] is not None and outcome.status is Status.PARTIAL
    assert "swap unknown" in SPEC.summary(outcome.observed)


def test_no_data_mount_and_unreadable_swaps_is_not_not_present(tmp_path: Path) -> None:
    """An overlay-only container whose /proc/swaps cannot be read may still swap to a clear disk."""
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/mountinfo").write_text("500 400 0:120 / / rw,relatime - overlay overlay rw\n")
    (tmp_path / "sys/block").mkdir(parents=True)
    outcome = SPEC.collect(Context(root=tmp_path, euid=1000))
    assert outcome.status is Status.PARTIAL
    assert (outcome.observed["mounts"], outcome.observed["swaps"]) == ([], None)


def test_unreadable_everything_is_partial_with_reasons(tmp_path: Path) -> None:
    outcome = SPEC.collect(Context(root=tmp_path, euid=1000))
    assert outcome.status is Status.PARTIAL
    assert gap_whats(outcome)[:3] == ["block-device stack", "mounted filesystems", "active swap"]
    assert outcome.gaps[1].reason == "/proc/self/mountinfo does not exist"


def test_settings_skip_mountpoints_and_bad_key() -> None:
    outcome, _ = run("debian-12_lvm-on-luks", skip_mountpoints=["/boot"])
    assert list(by_point(outcome)) == ["/"]
    judged, _ = run("debian-12_lvm-on-luks", boot_mountpoints=[])  # a policy that wants /boot encrypted too
    assert [m["boot"] for m in judged.observed["mounts"]] == [False, False, False]
    assert judged.observed["unencrypted_count"] == 2
    with pytest.raises(settings_mod.SettingsError, match=r"collectors\.disk_encryption\.skip_fstypes"):
        settings_mod.validate({"skip_fstypes": "tmpfs"}, SPEC.settings, "collectors.disk_encryption")
    with pytest.raises(settings_mod.SettingsError, match=r"collectors\.disk_encryption\.scan_headers"):
        settings_mod.validate({"scan_headers": True}, SPEC.settings, "collectors.disk_encryption")


def test_spec() -> None:
    assert (SPEC.name, SPEC.controls) == ("disk_encryption", ("M02",))
    assert list(SPEC.watch_paths({})) == ["/etc/crypttab", "/etc/fstab"]


def test_a_failing_dmsetup_is_explained_by_the_line_naming_the_device() -> None:
    """dmsetup ends with a bare "Command failed."; the gap quotes the line that says why (real
    stderr of dmsetup where device-mapper cannot be reached), and where to look."""
    stderr = (FIX / "dmsetup-stderr_debian-12_lvm2-2.03.16_no-device-mapper.txt").read_bytes()

    def failing(argv: Sequence[str], **kwargs: Any) -> CommandResult:
        return CommandResult(argv, 1, b"", stderr)

    valid = settings_mod.validate({}, SPEC.settings, "collectors.disk_encryption")
    outcome = SPEC.collect(Context(root=TREES / "debian-12_plain-dm-crypt", settings=valid, run=failing, euid=0))
    reasons = {g.reason for g in outcome.gaps if g.what.startswith("cipher of")}
    assert reasons == {
        "dmsetup exited with status 1: /dev/mapper/control: open failed: No such device (device-mapper answers "
        "through /dev/mapper/control, with CAP_SYS_ADMIN: docs/operations.md)"
    }
    assert by_point(outcome)["/srv/scratch"]["encrypted"] is None  # unknown, never passing
