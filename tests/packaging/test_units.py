"""The systemd units, sysusers.d and tmpfiles.d files as systemd's own tools read them.

No systemd runs as PID 1 here, so the units are checked offline: ``systemd-analyze
verify`` (with stub executables in place of /usr/bin/tillsyn-*), ``systemd-analyze
security --offline`` with an asserted exposure ceiling, ``systemd-sysusers`` and
``systemd-tmpfiles`` into a scratch root; and the agent's capability bounding set is
applied with ``setpriv`` to a real ``tillsyn-agent collect`` to show it is enough.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

from agent.config import from_mapping, load
from agent.identity import ENROLMENT_FILE
from central.config import DEFAULT_STATE, Listen
from tests.centre_process import ROOT, free_port
from tests.conftest import require_root, require_tool

PACKAGING = ROOT / "packaging"
UNITS = PACKAGING / "systemd"
AGENT_UNIT = UNITS / "tillsyn-agent.service"
CENTRE_UNIT = UNITS / "tillsyn-central.service"

# What `systemd-analyze security` may still count against each unit, and why (docs/operations.md).
AGENT_CEILING = 2.5
AGENT_ACCEPTED = {
    "RootDirectory=/RootImage=",  # runs the host's own tools (cryptsetup, zfs, restic ...)
    "User=/DynamicUser=",  # root: LUKS headers in /dev, /proc/<pid>/fd of every process
    "PrivateDevices=",  # block devices must stay visible; DeviceAllow limits them to reading
    "DeviceAllow=",
    "CapabilityBoundingSet=~CAP_(DAC_*|FOWNER|IPC_OWNER)",  # CAP_DAC_READ_SEARCH: root-only config files
    "CapabilityBoundingSet=~CAP_SYS_PTRACE",  # which process owns a listening socket
    "ProtectProc=",  # sees every process: antivirus daemons, socket owners
    "ProcSubset=",  # /proc/mounts, /proc/swaps, /proc/net
    "ProtectHome=",  # read-only: ssh keys for sftp backup repositories
    "PrivateUsers=",  # user names of socket owners (pseudonymised before sending)
    "PrivateNetwork=",  # talks to the centre, NUT and apcupsd servers
    "IPAddressDeny=",  # the centre's address is site-specific: a drop-in can add an allow list
    "RestrictAddressFamilies=~AF_(INET|INET6)",
    "RestrictAddressFamilies=~AF_UNIX",  # clamd, sd_notify, the journal
    "RestrictAddressFamilies=~AF_NETLINK",  # interface addresses
}
CENTRE_CEILING = 1.5
CENTRE_ACCEPTED = {
    "RootDirectory=/RootImage=",
    "PrivateNetwork=",  # it is a network service
    "IPAddressDeny=",  # nodes connect from anywhere the site decides
    "RestrictAddressFamilies=~AF_(INET|INET6)",
    "RestrictAddressFamilies=~AF_UNIX",  # PostgreSQL's local socket
    "DeviceAllow=",  # char-rtc:r, added by ProtectClock=yes itself
    "MemoryDenyWriteExecute=",  # native extensions (psycopg, pydantic-core) not proven W^X-clean
    "ProcSubset=",  # prometheus-client's process metrics read /proc/stat
}


def parse_unit(path: Path) -> Dict[str, List[str]]:
    """``Key`` -> every value it is given (keys may repeat), across sections."""
    values: Dict[str, List[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        values.setdefault(key.strip(), []).append(value.strip())
    return values


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(s|min)?", value)
    assert match, value
    return int(match.group(1)) * (60 if match.group(2) == "min" else 1)


def verify(unit: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` on a copy whose /usr/bin/tillsyn-* are stub executables here."""
    analyze = require_tool("systemd-analyze")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("tillsyn-agent", "tillsyn-central"):
        stub = bin_dir / name
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace("/usr/bin/tillsyn-", f"{bin_dir}/tillsyn-"))
    return subprocess.run(
        [analyze, "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("unit", [AGENT_UNIT, CENTRE_UNIT], ids=lambda p: p.name)
def test_systemd_analyze_verify_finds_nothing(unit: Path, tmp_path: Path) -> None:
    result = verify(unit, tmp_path)
    assert result.returncode == 0 and (result.stdout + result.stderr).strip() == "", result.stderr


def test_verify_would_report_a_misspelt_directive(tmp_path: Path) -> None:
    # verify exits 0 on an unknown key, so the test above must (and does) demand empty output.
    broken = tmp_path / "src" / "tillsyn-agent.service"
    broken.parent.mkdir()
    broken.write_text(AGENT_UNIT.read_text().replace("ProtectSystem=strict", "ProtectSytem=strict"))
    result = verify(broken, tmp_path)
    assert "Unknown key 'ProtectSytem'" in result.stderr


def security(unit: Path) -> tuple[float, set[str]]:
    """The overall exposure and the names of the checks the unit does not pass."""
    analyze = require_tool("systemd-analyze")
    base = [analyze, "security", "--offline=true", "--no-pager"]
    text = subprocess.run([*base, str(unit)], capture_output=True, text=True, timeout=60, check=True).stdout
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d)", text)
    assert match, text
    items = json.loads(
        subprocess.run(
            [*base, "--json=short", str(unit)], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    )
    failing = {item["name"] for item in items if item["exposure"] and not item["set"]}
    return float(match.group(1)), failing


def test_centre_exposure_is_low() -> None:
    score, failing = security(CENTRE_UNIT)
    assert score <= CENTRE_CEILING
    assert failing <= CENTRE_ACCEPTED, f"new exposure: {failing - CENTRE_ACCEPTED}"


def test_agent_exposure_is_only_what_evidence_needs() -> None:
    score, failing = security(AGENT_UNIT)
    assert score <= AGENT_CEILING
    assert failing <= AGENT_ACCEPTED, f"new exposure: {failing - AGENT_ACCEPTED}"
    assert "CapabilityBoundingSet=~CAP_SYS_ADMIN" not in failing


def test_agent_unit_speaks_the_daemons_protocol() -> None:
    unit = parse_unit(AGENT_UNIT)
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    assert unit["ExecStart"] == ["/usr/bin/tillsyn-agent run"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]  # the daemon reloads agent.yaml on SIGHUP
    assert unit["Restart"] == ["on-failure"]
    # READY=1 comes after the first round, where every collector runs at once: the start
    # timeout must outlast the slowest collector's timeout, as shipped and by default.
    slowest = max(
        c.timeout
        for config in (from_mapping({}, None), load(ROOT / "config" / "agent.yaml", required=True))
        for c in config.collectors.values()
    )
    assert seconds(unit["TimeoutStartSec"][0]) >= slowest + 30
    # The main loop also waits on the centre (30 s read timeout per request, delivery then heartbeat).
    assert seconds(unit["WatchdogSec"][0]) >= 2 * 30 + 30


def test_centre_state_is_its_own_and_the_agents_key_stays_out_of_reach() -> None:
    agent, centre = parse_unit(AGENT_UNIT), parse_unit(CENTRE_UNIT)
    sysusers = (PACKAGING / "sysusers.d" / "tillsyn-central.conf").read_text().split("\n")
    users = [line.split()[1] for line in sysusers if line.startswith("u ")]
    assert centre["User"] == users == ["tillsyn"]
    assert agent["StateDirectory"] == ["tillsyn"] and agent["User"] == ["root"]
    assert centre["StateDirectory"] == ["tillsyn/central"]
    # the unit's state directory is state_dir's default, and nothing in the unit overrides
    # central.yaml: the service and the admin commands run from a shell use one database
    assert Path(f"/var/lib/{centre['StateDirectory'][0]}") == DEFAULT_STATE
    assert not any("TILLSYN_" in line for line in centre.get("Environment", []))
    # The centre must traverse the agent's directory (0711) but not list or read it.
    assert agent["StateDirectoryMode"] == ["0711"] and centre["StateDirectoryMode"] == ["0700"]


def _install(root: Path, kind: str, name: str) -> None:
    target = root / "usr" / "lib" / kind
    target.mkdir(parents=True, exist_ok=True)
    (target / name).write_text((PACKAGING / kind / name).read_text())


def test_an_agent_only_host_gets_its_directories_without_the_centres_user(tmp_path: Path) -> None:
    # One shared tmpfiles file used to name the user tillsyn, which only the centre's package makes.
    require_root("systemd-tmpfiles creates root-owned directories")
    tmpfiles = require_tool("systemd-tmpfiles")
    _install(tmp_path, "tmpfiles.d", "tillsyn-agent.conf")
    (tmp_path / "etc").mkdir()
    created = subprocess.run(
        [tmpfiles, f"--root={tmp_path}", "--create", "tillsyn-agent.conf"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0 and created.stderr == "", created.stderr
    st = (tmp_path / "var/lib/tillsyn").stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o711, 0)
    assert not (tmp_path / "var/lib/tillsyn/central").exists()


def test_the_agent_starts_only_once_enrolled_and_the_centre_may_hold_many_connections() -> None:
    agent, centre = parse_unit(AGENT_UNIT), parse_unit(CENTRE_UNIT)
    # the enrolment file in the unit's own state directory, which `tillsyn-agent enroll` writes
    assert agent["ConditionPathExists"] == [f"/var/lib/{agent['StateDirectory'][0]}/{ENROLMENT_FILE}"]
    # the unit's own rule: above listen.max_connections (the default's) plus 100
    assert int(centre["LimitNOFILE"][0]) >= Listen().max_connections + 100


def test_sysusers_and_tmpfiles_create_the_user_and_directories(tmp_path: Path) -> None:
    require_root("systemd-tmpfiles chowns to the new user")
    sysusers, tmpfiles = require_tool("systemd-sysusers"), require_tool("systemd-tmpfiles")
    _install(tmp_path, "sysusers.d", "tillsyn-central.conf")
    for name in ("tillsyn-agent.conf", "tillsyn-central.conf"):  # a host with both packages
        _install(tmp_path, "tmpfiles.d", name)
    (tmp_path / "etc").mkdir()  # sysusers takes its lock there
    subprocess.run([sysusers, f"--root={tmp_path}"], check=True, capture_output=True, timeout=60)
    passwd = {line.split(":")[0]: line.split(":") for line in (tmp_path / "etc" / "passwd").read_text().splitlines()}
    user = passwd["tillsyn"]
    assert 0 < int(user[2]) < 1000, "a system user"
    assert user[6].endswith("nologin")
    assert "tillsyn:!" in (tmp_path / "etc" / "shadow").read_text(), "no password can log in"
    created = subprocess.run(
        [tmpfiles, f"--root={tmp_path}", "--create"], check=True, capture_output=True, text=True, timeout=60
    )
    assert created.stderr == "", "the two files agree where they overlap"
    expected = {
        "etc/tillsyn": (0o755, 0),
        "var/lib/tillsyn": (0o711, 0),
        "var/lib/tillsyn/central": (0o700, int(user[2])),
    }
    for path, (mode, uid) in expected.items():
        st = (tmp_path / path).stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid) == (mode, uid), path


def bounding_set(unit: Path) -> str:
    caps = parse_unit(unit)["CapabilityBoundingSet"][0].split()
    return "-all," + ",".join("+" + c.lower().removeprefix("cap_") for c in caps)


def owner_of_port(port: int, bounding: str) -> object:
    setpriv = require_tool("setpriv")
    result = subprocess.run(
        [
            setpriv,
            "--bounding-set",
            bounding,
            "--inh-caps",
            "-all",
            sys.executable,
            "-m",
            "agent.cli",
            "collect",
            "--only",
            "ports",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("TILLSYN_")},
    )
    sockets = json.loads(result.stdout)[0]["observed"]["sockets"]
    (entry,) = [s for s in sockets if s["port"] == port and s["protocol"] == "tcp"]
    return entry["process"]


def test_the_agents_capabilities_still_name_another_users_listening_process() -> None:
    require_root("drops capabilities from root with setpriv")
    setpriv = require_tool("setpriv")
    port = free_port()
    listener = subprocess.Popen(
        [
            setpriv,
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            f"import socket, time; s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); "
            "print('up', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert listener.stdout is not None and listener.stdout.readline() == "up\n"
        unit_caps = bounding_set(AGENT_UNIT)
        assert unit_caps == "-all,+dac_read_search,+sys_ptrace"
        process = owner_of_port(port, unit_caps)
        assert isinstance(process, dict) and process["pid"] == listener.pid and process["user"] == "nobody"
        # Without CAP_SYS_PTRACE root cannot read /proc/<pid>/fd of another user: the owner is lost.
        assert owner_of_port(port, "-all,+dac_read_search") is None
    finally:
        listener.kill()
        listener.wait(10)
