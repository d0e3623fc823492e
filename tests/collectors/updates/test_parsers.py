"""The updates parsers over captured output (apt 2.6.1 on Debian 12, here) and fuzzed input."""

from __future__ import annotations

import contextlib
from typing import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.updates import parse_apt, parse_dnf, parse_kernel
from tests.conftest import FIXTURES

FIX = FIXTURES / "updates"
APT = "apt-get-s-dist-upgrade_debian-12_apt-2.6.1_pending.txt"


def read(name: str) -> str:
    return (FIX / name).read_text()


def test_apt_simulation_captured_on_debian_12() -> None:
    packages = parse_apt.parse_simulation(read(APT))
    assert len(packages) == 120
    assert sum(p["security"] for p in packages) == 81
    bash = next(p for p in packages if p["name"] == "bash")
    assert bash == {
        "name": "bash",
        "architecture": "amd64",
        "current": "5.2.15-2+b8",
        "candidate": "5.2.15-2+b13",
        "releases": ["Debian:12.15/oldstable"],
        "security": False,
    }
    assert all(p["current"] for p in packages)  # an upgrade: every package was installed before


@pytest.mark.parametrize(
    ("line", "current", "security"),
    [
        ("Inst libc6 [2.36-9] (2.36-9+deb12u9 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64])",
         "2.36-9", True),
        ("Inst linux-image-6.1.0-41-amd64 (6.1.0-41 Debian-Security:12/oldstable-security [amd64])", None, True),
        ("Inst openssl [3.0.2-0ubuntu1.15] (3.0.2-0ubuntu1.18 Ubuntu:22.04/jammy-updates, "
         "Ubuntu:22.04/jammy-security [amd64])", "3.0.2-0ubuntu1.15", True),
        ("Inst vim [2:9.0] (2:9.0.1 Ubuntu:22.04/jammy-updates [amd64]) []", "2:9.0", False),
    ],
)  # fmt: skip
def test_apt_inst_lines(line: str, current: str, security: bool) -> None:
    (package,) = parse_apt.parse_simulation(line)
    assert (package["current"], package["security"]) == (current, security)


def test_apt_malformed_inst_line_is_refused() -> None:
    with pytest.raises(parse_apt.AptFormatError, match="line 2"):
        parse_apt.parse_simulation("Reading package lists...\nInst broken line without parentheses\n")


def test_apt_held_back() -> None:
    text = (
        "The following packages have been kept back:\n  linux-image-amd64 linux-headers-amd64\n"
        "0 upgraded, 0 newly installed, 0 to remove and 2 not upgraded.\n"
    )
    assert parse_apt.held_back(text) == ["linux-image-amd64", "linux-headers-amd64"]


def test_dnf_check_update_and_updateinfo() -> None:
    updates = parse_dnf.parse_check_update(read("dnf-check-update_rocky-9_dnf-4.14_updates.txt"))
    assert [u["name"] for u in updates] == ["kernel", "kernel-core", "openssl-libs", "vim-minimal"]
    assert updates[2]["candidate"] == "1:3.0.7-27.el9" and updates[0]["repository"] == "baseos"
    security = parse_dnf.parse_updateinfo(read("dnf-updateinfo-list-security_rocky-9_dnf-4.14_updates.txt"))
    assert security == {"kernel", "openssl-libs"}
    with pytest.raises(parse_dnf.DnfFormatError):
        parse_dnf.parse_check_update("Error: Failed to download metadata for repo 'baseos'\n")


def test_dnf_captured_here() -> None:
    updates = parse_dnf.parse_check_update(read("dnf-check-update_debian-12_dnf-4.14.0_local-repo.txt"))
    assert updates == [
        {"name": "tillsyn-demo", "architecture": "noarch", "candidate": "1.1-1", "repository": "tillsyn-test"},
        {"name": "tillsyn-tool", "architecture": "noarch", "candidate": "2.0-1", "repository": "tillsyn-test"},
    ]
    security = parse_dnf.parse_updateinfo(read("dnf-updateinfo-list-security_debian-12_dnf-4.14.0_local-repo.txt"))
    assert security == {"tillsyn-demo"}


def test_kernel_ordering_and_boot_files() -> None:
    assert parse_kernel.newest(["6.1.0-9-amd64", "6.1.0-28-amd64", "5.10.0-30-amd64"]) == "6.1.0-28-amd64"
    files = ["vmlinuz-5.14.0-362.8.1.el9_3.x86_64", "vmlinuz-0-rescue-0123abcd", "config-x", "vmlinuz-", "initrd.img"]
    assert parse_kernel.kernel_files(files) == ["5.14.0-362.8.1.el9_3.x86_64"]
    assert parse_kernel.parse_reboot_packages("linux-base\nlibc6\nlinux-base\n\n") == ["linux-base", "libc6"]


# ---------------------------------------------------------------- fuzzing
PARSERS: dict[str, tuple[Callable[[str], object], tuple[type[Exception], ...], str]] = {
    "apt": (parse_apt.parse_simulation, (parse_apt.AptFormatError,), APT),
    "held_back": (parse_apt.held_back, (), APT),
    "check-update": (parse_dnf.parse_check_update, (parse_dnf.DnfFormatError,),
                     "dnf-check-update_rocky-9_dnf-4.14_updates.txt"),
    "updateinfo": (parse_dnf.parse_updateinfo, (parse_dnf.DnfFormatError,),
                   "dnf-updateinfo-list-security_rocky-9_dnf-4.14_updates.txt"),
    "kernel_files": (lambda text: parse_kernel.kernel_files(text.split()), (), APT),
    "reboot_packages": (parse_kernel.parse_reboot_packages, (), APT),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(PARSERS))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_parsers_never_raise_anything_but_their_format_error(kind: str, data: st.DataObject) -> None:
    parse, errors, sample = PARSERS[kind]
    text = data.draw(st.one_of(st.text(max_size=300), st.just(read(sample)[:4000])))
    lines = text.splitlines(keepends=True)
    for _ in range(data.draw(st.integers(0, 6))):
        if not lines:
            break
        at = data.draw(st.integers(0, len(lines) - 1))
        cut = data.draw(st.integers(0, len(lines[at])))
        junk = data.draw(st.text(alphabet="[]():/, -+.~\n0123456789abInstConf\x00é", max_size=12))
        lines[at] = lines[at][:cut] + junk + lines[at][cut + data.draw(st.integers(0, 5)) :]
    with contextlib.suppress(*errors):
        parse("".join(lines))
