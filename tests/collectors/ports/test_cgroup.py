"""parse_cgroup over captured and published /proc/<pid>/cgroup files."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pytest

from collectors.ports.parse_cgroup import CgroupMembership, parse_cgroup, unit_from_path

CASES = [
    (
        "cgroup_debian-12_systemd-252_ssh-service.txt",
        CgroupMembership("/system.slice/ssh.service", "ssh.service", "v2"),
    ),
    (
        "cgroup_debian-12_systemd-252_user-service.txt",
        CgroupMembership(
            "/user.slice/user-1000.slice/user@1000.service/app.slice/app-foo.service", "user@1000.service", "v2"
        ),
    ),
    (
        "cgroup_ubuntu-16.04_systemd-229_session-scope.txt",
        CgroupMembership("/user.slice/user-0.slice/session-1.scope", "session-1.scope", "name=systemd"),
    ),
    ("cgroup_hybrid_atop-pr284_init-scope.txt", CgroupMembership("/init.scope", "init.scope", "name=systemd")),
    # Inside docker on a hybrid host: systemd's own hierarchy shows the container, no unit.
    (
        "cgroup_debian-10_docker_in-container.txt",
        CgroupMembership(
            "/docker/a2ffe0e97ac22657a2a023ad628e9df837c38a03b1ebc904d3f6d644eb1a1a81", None, "name=systemd"
        ),
    ),
    ("cgroup_debian-12_container-no-systemd_postgres.txt", CgroupMembership("/", None, "name=systemd")),
    ("cgroup_empty.txt", None),
]


@pytest.mark.parametrize(("name", "expected"), CASES, ids=[c[0] for c in CASES])
def test_parse_cgroup_fixtures(fixtures: Path, name: str, expected: Optional[CgroupMembership]) -> None:
    assert parse_cgroup((fixtures / "ports" / name).read_text()) == expected


def test_malformed_cgroup_names_the_line(fixtures: Path) -> None:
    with pytest.raises(ValueError, match="line 2 is not"):
        parse_cgroup((fixtures / "ports" / "cgroup_malformed_truncated.txt").read_text())


@pytest.mark.parametrize(
    ("path", "unit"),
    [
        ("/system.slice/system-getty.slice/getty@tty1.service", "getty@tty1.service"),
        ("/system.slice/docker-0123abcd.scope", "docker-0123abcd.scope"),
        ("/system.slice", None),
        ("/lxc/web1", None),
        ("/", None),
    ],
)
def test_unit_from_path(path: str, unit: Optional[str]) -> None:
    assert unit_from_path(path) == unit
