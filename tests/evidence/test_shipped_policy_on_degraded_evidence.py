"""No shipped rule passes on what a collector did not see.

``test_no_input_ever_yields_passing_from_missing_facts`` feeds empty facts; a collector that
emits ``[]`` or empty tags for what it could not see slips past it.  Here each collector runs for
real (captured trees, real sockets, a real clamd socket, real restic) in a partial or degraded
state, and its outcome is judged with config/policy.yaml as the centre would: the rules that read
the unseen facts must be unknown (or failing, where what was seen already fails).
"""

from __future__ import annotations

import json
import shutil
import socket
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Dict, Optional, Tuple

import pytest

from collectors.antivirus.collect import collect_with
from collectors.antivirus.products import ProcessInfo as AvProcess
from collectors.backup import SPEC as BACKUP
from collectors.base import Context
from collectors.disk_encryption import SPEC as DISK
from collectors.ports.collect import assemble
from collectors.ports.model import ProcessInfo
from collectors.power import SPEC as POWER
from collectors.settings import defaults, validate
from evidence.model import Outcome
from tests.collectors.antivirus.helpers import FIX as AV_FIX
from tests.collectors.antivirus.helpers import context as av_context
from tests.collectors.antivirus.helpers import make_tree
from tests.collectors.backup.helpers import restic_two_hosts
from tests.collectors.disk_encryption.helpers import TREES
from tests.collectors.ports.helpers import load_capture
from tests.collectors.power.helpers import FIXTURES as POWER_FIX
from tests.collectors.power.helpers import NisServer
from tests.collectors.power.helpers import context as power_context
from tests.conftest import FIXTURES, require_tool
from tests.evidence.shipped import judge_shipped

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)
Case = Callable[[Path], Tuple[str, Outcome]]


# ---------------------------------------------------------------- disk_encryption
def _disk_tree(tmp: Path, change: Callable[[Path], None]) -> Tuple[str, Outcome]:
    tree = tmp / "tree"
    shutil.copytree(TREES / "debian-12_lvm-on-luks", tree, symlinks=True)
    change(tree)
    return "disk_encryption", DISK.collect(Context(root=tree, settings=defaults(DISK.settings), euid=1000))


def swaps_unreadable(tmp: Path) -> Tuple[str, Outcome]:
    return _disk_tree(tmp, lambda tree: (tree / "proc/swaps").unlink())


def swaps_malformed(tmp: Path) -> Tuple[str, Outcome]:
    return _disk_tree(tmp, lambda tree: (tree / "proc/swaps").write_text("/dev/dm-2 partition 999 0 -2\n"))


def mountinfo_unreadable(tmp: Path) -> Tuple[str, Outcome]:
    return _disk_tree(tmp, lambda tree: (tree / "proc/self/mountinfo").unlink())


# ---------------------------------------------------------------- antivirus
FRESH_DB = {
    "/etc/clamav/freshclam.conf": AV_FIX / "freshclam-conf_debian-12_clamav-freshclam-1.4.6.conf",
    "/usr/lib/systemd/system/clamav-freshclam.service": "[Service]\n",
    "/var/lib/clamav/daily.cld": AV_FIX / "cvd-header_crafted_daily-27450.bin",  # built 2026-11-25 09:24 UTC
}
FRESHCLAM = AvProcess(812, "freshclam", ("/usr/bin/freshclam", "-d", "--foreground=true"))


def freshclam_only(tmp: Path) -> Tuple[str, Outcome]:
    """Debian 12 after ``apt install clamav``: the updater, no scanner."""
    return "antivirus", collect_with(av_context(make_tree(tmp, FRESH_DB)), lambda names: [FRESHCLAM])


def clamd_hung(tmp: Path) -> Tuple[str, Outcome]:
    """A clamd process whose socket accepts but never answers PING."""
    tree = make_tree(tmp, {**FRESH_DB, "/etc/clamav/clamd.conf": "LocalSocket /run/clamd.ctl\n", "/run": None})
    clamd = AvProcess(700, "clamd", ("/usr/sbin/clamd", "--foreground=true"))
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tree / "run/clamd.ctl"))
        server.listen(1)
        outcome = collect_with(av_context(tree, socket_timeout=0.3), lambda names: [clamd, FRESHCLAM])
    return "antivirus", outcome


def processes_hidden(tmp: Path) -> Tuple[str, Outcome]:
    """/proc mounted hidepid=2 and the agent not root: clamd may run unseen."""
    tree = make_tree(tmp, {**FRESH_DB, "/proc/mounts": "proc /proc proc rw,hidepid=2 0 0\n"})
    ctx = Context(root=tree, settings=av_context(tree).settings, euid=1000)
    return "antivirus", collect_with(ctx, lambda names: [])


# ---------------------------------------------------------------- ports
def _sock(ip: str, port: int, pid: Optional[int], family: int = socket.AF_INET) -> SimpleNamespace:
    return SimpleNamespace(fd=-1, family=int(family), type=int(socket.SOCK_STREAM), laddr=(ip, port), raddr=(),
                           status="LISTEN", pid=pid)  # fmt: skip


def owners_unseen(tmp: Path) -> Tuple[str, Outcome]:
    """Unprivileged: vsftpd on 0.0.0.0:2121 and x11vnc on [::]:5910 have pid None."""
    entries = [_sock("0.0.0.0", 2121, None), _sock("::", 5910, None, socket.AF_INET6)]
    return "ports", assemble(entries, lambda pid: (ProcessInfo(pid), []), {}, is_root=False)


def telnet_owner_unseen(tmp: Path) -> Tuple[str, Outcome]:
    """Port 23 alone is plaintext and remote service, whoever holds it; whether it is a database is unknown."""
    return "ports", assemble([_sock("0.0.0.0", 23, None)], lambda pid: (ProcessInfo(pid), []), {}, is_root=False)


def owner_exited(tmp: Path) -> Tuple[str, Outcome]:
    """The owner exited while it was read: only its pid is known."""
    return "ports", assemble([_sock("0.0.0.0", 2121, 40)], lambda pid: (ProcessInfo(pid), []), {}, is_root=True)


def captured_kernel_socket(tmp: Path) -> Tuple[str, Outcome]:
    """Captured on Debian 12 as root: 0.0.0.0:2024 is held by no process this namespace sees."""
    entries, lookup = load_capture("psutil-net-connections_debian-12_psutil-7.2.2_loopback-services.json")
    return "ports", assemble(entries, lookup, {}, is_root=True)


# ---------------------------------------------------------------- backup
def _markers(
    tmp: Path, markers: Dict[str, Dict[str, Any]], hostname: str = "web01", mountinfo: bool = True
) -> Tuple[str, Outcome]:
    """Marker backups as written by backup jobs, on the captured mount table of an NFS-backed node."""
    if mountinfo:
        (tmp / "proc/self").mkdir(parents=True)
        shutil.copy(FIXTURES / "backup/mountinfo_debian-12_nfs4-backup-mount.txt", tmp / "proc/self/mountinfo")
    (tmp / "var/lib/tillsyn/restore-tests").mkdir(parents=True)
    items = []
    for name, marker in markers.items():
        (tmp / f"var/lib/jobs/{name}.json").parent.mkdir(parents=True, exist_ok=True)
        (tmp / f"var/lib/jobs/{name}.json").write_text(json.dumps(marker))
        restore = {"tested_at": marker["finished_at"], "result": "passed"}
        (tmp / f"var/lib/tillsyn/restore-tests/{name}.json").write_text(json.dumps(restore))
        items.append({"name": name, "type": "marker", "marker": f"/var/lib/jobs/{name}.json"})
    settings = validate({"backups": items}, BACKUP.settings, "collectors.backup")
    return "backup", BACKUP.collect(Context(root=tmp, settings=settings, hostname=hostname))


def _marker(repository: str, finished_at: str = "2026-11-21T03:00:00Z") -> Dict[str, Any]:
    return {"finished_at": finished_at, "result": "success", "repository": repository, "encrypted": True}


LOOPBACK_REPOSITORIES = [
    "rest:http://127.0.0.1:8000/web01",
    "sftp:backup@localhost:/srv/restic/web01",
    "s3:http://localhost:9000/backups",
    "ssh://borg@[::1]/./web01",
    "localhost:/srv/borg/web01",
]


def repositories_on_loopback(tmp: Path) -> Tuple[str, Outcome]:
    return _markers(tmp, {f"b{i}": _marker(repo) for i, repo in enumerate(LOOPBACK_REPOSITORIES)})


def repository_named_like_this_node(tmp: Path) -> Tuple[str, Outcome]:
    return _markers(tmp, {"files": _marker("sftp:backup@web01.example.net:/srv/restic")}, hostname="web01")


def times_in_the_future(tmp: Path) -> Tuple[str, Outcome]:
    """A job whose clock says 2036: neither its backup nor its restore test is known to be recent."""
    return _markers(tmp, {"db": _marker("/mnt/backup/db", "2036-11-20T03:12:44Z")})


def mount_table_unreadable(tmp: Path) -> Tuple[str, Outcome]:
    """A repository path, and no mount table to place it: maybe on this node's disk."""
    return _markers(tmp, {"db": _marker("/var/backups/db")}, mountinfo=False)


# ---------------------------------------------------------------- power
def _apcupsd(tmp: Path, text: str) -> Tuple[str, Outcome]:
    server = NisServer(text.encode().splitlines(keepends=True))
    try:
        ctx = power_context(tmp, apcupsd_servers=[{"host": "127.0.0.1", "port": server.port}])
        return "power", POWER.collect(ctx)
    finally:
        server.close()


BACK_UPS = "apcaccess_debian_apcupsd-3.14.14_back-ups-rs-1500ms2.txt"


def apcupsd_no_self_test_result(tmp: Path) -> Tuple[str, Outcome]:
    """Captured Back-UPS: SELFTEST NO (no result) and no LASTSTEST."""
    return _apcupsd(tmp, (POWER_FIX / BACK_UPS).read_text())


def apcupsd_failed_self_test(tmp: Path) -> Tuple[str, Outcome]:
    """The same UPS within 5 minutes of a failed battery test: it still fails."""
    return _apcupsd(tmp, (POWER_FIX / BACK_UPS).read_text().replace("SELFTEST : NO", "SELFTEST : BT"))


CASES: Dict[str, Tuple[Case, Dict[str, str]]] = {
    "swaps unreadable": (swaps_unreadable, {"disk-swap-encrypted": "unknown"}),
    "swaps malformed": (swaps_malformed, {"disk-swap-encrypted": "unknown"}),
    "mountinfo unreadable": (mountinfo_unreadable, {"disk-mounts-encrypted": "unknown"}),
    "freshclam only": (freshclam_only, {"av-running": "failing", "av-signatures-fresh": "failing",
                                        "av-real-time": "failing"}),
    "clamd hung": (clamd_hung, {"av-running": "failing", "av-signatures-fresh": "failing"}),
    "processes hidden": (processes_hidden, {"av-running": "unknown", "av-signatures-fresh": "unknown"}),
    "owners unseen": (owners_unseen, {"ports-no-plaintext-remote": "unknown", "ports-no-exposed-database": "unknown",
                                      "ports-no-remote-service": "unknown"}),
    "telnet owner unseen": (telnet_owner_unseen, {"ports-no-plaintext-remote": "failing",
                                                  "ports-no-exposed-database": "unknown",
                                                  "ports-no-remote-service": "failing"}),
    "owner exited": (owner_exited, {"ports-no-plaintext-remote": "unknown", "ports-no-exposed-database": "unknown",
                                    "ports-no-remote-service": "unknown"}),
    "captured kernel socket": (captured_kernel_socket, {"ports-no-plaintext-remote": "unknown",
                                                        "ports-no-exposed-database": "unknown",
                                                        "ports-no-remote-service": "unknown"}),
    "repositories on loopback": (repositories_on_loopback, {"backup-separate": "failing"}),
    "repository named like this node": (repository_named_like_this_node, {"backup-separate": "unknown"}),
    "times in the future": (times_in_the_future, {"backup-recent": "unknown", "backup-restore-tested": "unknown"}),
    "mount table unreadable": (mount_table_unreadable, {"backup-separate": "unknown"}),
    "apcupsd without a self-test result": (apcupsd_no_self_test_result, {"power-self-test-passed": "unknown",
                                                                         "power-self-test-recent": "unknown"}),
    "apcupsd failed self-test": (apcupsd_failed_self_test, {"power-self-test-passed": "failing"}),
}  # fmt: skip


def test_the_table_expects_nothing_to_pass() -> None:
    assert all(v in ("unknown", "failing") for _, expected in CASES.values() for v in expected.values())


@pytest.mark.parametrize("name", list(CASES))
def test_no_rule_passes_on_what_was_not_seen(name: str, tmp_path: Path) -> None:
    case, expected = CASES[name]
    collector, outcome = case(tmp_path)
    verdicts = judge_shipped(collector, outcome, NOW)
    assert {rule: verdicts[rule] for rule in expected} == expected, [g.to_dict() for g in outcome.gaps]


@pytest.fixture(scope="module")
def shared_restic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return restic_two_hosts(require_tool("restic"), tmp_path_factory.mktemp("shared-restic"))


@pytest.mark.parametrize(("node", "verdict"), [("n2", "failing"), ("web07", "unknown")])
def test_another_nodes_snapshot_in_a_shared_restic_repository_never_counts(
    shared_restic: Path, tmp_path: Path, node: str, verdict: str
) -> None:
    """n1 backed up 2026-11-20 10:00, n2 last on 2026-11-19 10:00, web07 never; judged 3 h after n1's."""
    (tmp_path / "proc/self").mkdir(parents=True)
    shutil.copy(FIXTURES / "backup/mountinfo_debian-12_nfs4-backup-mount.txt", tmp_path / "proc/self/mountinfo")
    item = {"name": "files", "type": "restic", "repository": str(shared_restic),
            "password_file": str(shared_restic.parent / "password")}  # fmt: skip
    settings = validate({"backups": [item]}, BACKUP.settings, "collectors.backup")
    outcome = BACKUP.collect(Context(root=tmp_path, settings=settings, hostname=node))
    at = datetime(2026, 11, 20, 13, 0, tzinfo=timezone.utc)
    assert judge_shipped("backup", outcome, at)["backup-recent"] == verdict
