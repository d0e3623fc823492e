"""The .rpms, built by scripts/package.sh rpm and read with rpm's own queries and rpmlint.

There is no RHEL, Rocky, Alma or Fedora root here (packaging/README.md): the packages are checked
for what they hold, what they require and what their scripts do, not installed with dnf. The
centre's is also unpacked with rpm2cpio and its environment run from there: its interpreter link
names this machine's /usr/bin/python3.X, which the package was built with (and requires).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest

from tests.centre_process import ROOT, await_healthz, free_port
from tests.conftest import require_tool

VERSION = "0.1.0"
VENV = "usr/lib/tillsyn-central"


@pytest.fixture(scope="module")
def rpms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("rpmbuild")
    dist = tmp_path_factory.mktemp("rpm")
    built = subprocess.run(
        [str(ROOT / "scripts" / "package.sh"), "rpm"],
        env={**os.environ, "TILLSYN_DIST": str(dist)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return dist


@pytest.fixture(scope="module")
def rpm(rpms: Path) -> Path:
    return rpms / f"tillsyn-agent-{VERSION}-1.noarch.rpm"


def build_python() -> str:
    """python3.X of the build machine's /usr/bin/python3, which the centre's spec builds with."""
    version = subprocess.run(
        ["/usr/bin/python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return f"python{version.stdout.strip()}"


@pytest.fixture(scope="module")
def central_rpm(rpms: Path) -> Path:
    (found,) = rpms.glob(f"tillsyn-central-{VERSION}-1.*.rpm")
    return found


def query(rpm: Path, *args: str) -> List[str]:
    out = subprocess.run(["rpm", "-qp", *args, str(rpm)], capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.splitlines()


def test_files_are_private_with_launcher_unit_and_man_page(rpm: Path) -> None:
    files = query(rpm, "-l")
    assert "/usr/share/tillsyn/agent/cli.py" in files
    assert "/usr/share/tillsyn/evidence/defaults/policy.yaml" in files
    assert not [f for f in files if "-packages/" in f or f.startswith("/usr/share/tillsyn/central")]
    for path in (
        "/usr/bin/tillsyn-agent",
        "/usr/lib/systemd/system/tillsyn-agent.service",
        "/usr/lib/tmpfiles.d/tillsyn-agent.conf",
        "/var/lib/tillsyn",
    ):
        assert path in files
    assert [f for f in files if f.startswith("/usr/share/man/man1/tillsyn-agent.1")]


def test_configuration_files_are_never_replaced(rpm: Path) -> None:
    assert query(rpm, "-c") == ["/etc/tillsyn/agent.yaml", "/etc/tillsyn/policy.yaml"]
    flags = subprocess.run(
        ["rpm", "-qp", "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]", str(rpm)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "cn /etc/tillsyn/agent.yaml" in flags  # c: config, n: noreplace


def test_requires_the_distributions_libraries_at_the_tested_floors(rpm: Path) -> None:
    requires = set(query(rpm, "--requires"))
    assert {
        "python3 >= 3.9",
        "python3-psutil >= 5.9.4",
        "python3-watchdog >= 2.2.1",
        "python3-cryptography >= 38",
        "python3-requests >= 2.28",
        "python3-pyyaml >= 6.0",
    } <= requires
    assert "python3-systemd" in query(rpm, "--recommends")


def test_scripts_neither_enable_nor_start_and_restart_on_upgrade(rpm: Path) -> None:
    scripts = "\n".join(query(rpm, "--scripts"))
    assert "systemctl enable" not in scripts and "systemctl start" not in scripts
    assert "try-restart tillsyn-agent.service" in scripts
    assert "disable --now tillsyn-agent.service" in scripts  # erase stops it


@pytest.mark.parametrize("name", ["tillsyn-agent", "tillsyn-central"])
def test_rpmlint_finds_no_errors(rpms: Path, name: str) -> None:
    rpmlint = require_tool("rpmlint")
    (rpm,) = rpms.glob(f"{name}-{VERSION}-1.*.rpm")
    found = subprocess.run(
        [rpmlint, "-r", str(ROOT / "packaging" / "rpm" / f"{name}.rpmlintrc"), str(rpm)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert found.returncode == 0 and " 0 errors" in found.stdout, found.stdout


def test_the_centre_is_a_private_environment_for_one_interpreter(central_rpm: Path) -> None:
    python = build_python()
    files = query(central_rpm, "-l")
    assert f"/{VENV}/bin/tillsyn-central" in files and "/usr/bin/tillsyn-central" in files
    assert f"/{VENV}/lib/{python}/site-packages/central/cli/commands.py" in files
    assert not [f for f in files if f.startswith(("/usr/lib/python", "/usr/lib64/python", "/usr/lib/.build-id"))]
    for path in (
        "/usr/lib/systemd/system/tillsyn-central.service",
        "/usr/lib/sysusers.d/tillsyn-central.conf",
        "/usr/lib/tmpfiles.d/tillsyn-central.conf",
        f"/usr/share/licenses/tillsyn-central-{VERSION}/LICENSES.dep5",
    ):
        assert path in files
    assert [f for f in files if f.startswith("/usr/share/man/man1/tillsyn-central.1")]
    requires = query(central_rpm, "--requires")
    assert f"/usr/bin/{python}" in requires  # the interpreter its environment links to
    # its own distributions and their bundled libraries are neither asked of nor offered to the system
    assert not [r for r in requires if "dist(" in r or re.search(r"-[0-9a-f]{8}\.so", r)], requires
    assert [p.split()[0] for p in query(central_rpm, "--provides")] == [
        "config(tillsyn-central)", "tillsyn-central", "tillsyn-central(x86-64)",
    ]  # fmt: skip


def test_the_centres_configuration_is_kept_and_readable_by_its_group_only(central_rpm: Path) -> None:
    assert query(central_rpm, "-c") == ["/etc/tillsyn/central.yaml"]
    modes = query(
        central_rpm, "--qf", "[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]"
    )
    assert "-rw-r----- root:tillsyn cn /etc/tillsyn/central.yaml" in modes
    assert "drwxr-x--- root:tillsyn  /etc/tillsyn/secrets" in modes
    assert "drwx------ tillsyn:tillsyn  /var/lib/tillsyn/central" in modes


def test_the_centres_scripts_make_the_user_migrate_and_restart(central_rpm: Path) -> None:
    scripts = "\n".join(query(central_rpm, "--scripts"))
    # the user is made before the files owned by it, with the line of sysusers.d/tillsyn-central.conf
    sysusers = (ROOT / "packaging" / "sysusers.d" / "tillsyn-central.conf").read_text()
    (line,) = [" ".join(x.split()) for x in sysusers.splitlines() if x.strip() and not x.startswith("#")]
    pre = scripts.split("preinstall scriptlet")[1].split("scriptlet (using")[0]
    assert line in " ".join(pre.split()) and "systemd-sysusers" in pre
    post = scripts.split("postinstall scriptlet")[1]
    # the schema is migrated before a running centre is restarted after an upgrade
    assert post.index("tillsyn-central db upgrade") < post.index("try-restart tillsyn-central.service")
    assert "preset tillsyn-central.service" in post
    assert "disable --now tillsyn-central.service" in scripts.split("preuninstall scriptlet")[1]


def test_the_centres_licence_names_every_licence_of_its_environment(central_rpm: Path, tmp_path: Path) -> None:
    unpacked = unpack(central_rpm, tmp_path)
    listed = (unpacked / f"usr/share/licenses/tillsyn-central-{VERSION}/LICENSES.dep5").read_text()
    (site,) = (unpacked / VENV / "lib").glob("python3.*/site-packages")
    for dist_info in site.glob("*.dist-info"):
        assert f"/site-packages/{dist_info.name}/*" in listed, dist_info.name
    dep5 = {"Expat": "MIT", "LGPL-3": "LGPL-3.0-only"}
    named = set()
    for licence in re.findall(r"^License: (.+)$", listed, re.MULTILINE):
        named |= {dep5.get(n, n) for n in re.split(r",? (?:and|or) ", licence)}
    tag = query(central_rpm, "--qf", "%{LICENSE}")[0]
    assert named == set(tag.split(" AND ")), f"the spec's License: {tag}; the environment's: {sorted(named)}"


def unpack(rpm: Path, into: Path) -> Path:
    root = into / "root"
    root.mkdir()
    cpio = subprocess.run(["rpm2cpio", str(rpm)], capture_output=True, check=True, timeout=120).stdout
    subprocess.run(["cpio", "-idm", "--quiet"], input=cpio, cwd=root, check=True, timeout=300)
    return root


def test_the_centre_unpacked_from_its_rpm_migrates_and_serves(central_rpm: Path, tmp_path: Path) -> None:
    """Its environment run where rpm2cpio unpacked it: the venv's python (a link to this machine's
    python3.X) finds its own pyvenv.cfg and site-packages there; the launcher's absolute
    #!/usr/lib/tillsyn-central/bin/python is replaced by that same interpreter from the unpacked root."""
    require_tool("rpm2cpio")
    root = unpack(central_rpm, tmp_path)
    python = root / VENV / "bin" / "python"
    assert os.readlink(root / VENV / "bin" / build_python()) == f"/usr/bin/{build_python()}"
    launcher = root / VENV / "bin" / "tillsyn-central"
    assert launcher.read_text().startswith(f"#!/{VENV}/bin/python\n")
    port = free_port()
    config = tmp_path / "central.yaml"
    shipped = (root / "etc/tillsyn/central.yaml").read_text()
    config.write_text(
        shipped.replace("state_dir: /var/lib/tillsyn/central", f"state_dir: {tmp_path / 'state'}")
        .replace("port: 8443", f"port: {port}")
    )  # fmt: skip
    env: Dict[str, str] = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(tmp_path)}
    env["TILLSYN_CENTRAL_CONFIG"] = str(config)

    def central(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(python), "-I", str(launcher), *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert central("--version").stdout.strip() == f"tillsyn-central {VERSION}"
    upgraded = central("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert (tmp_path / "state").is_dir()
    with open(tmp_path / "serve.log", "wb") as log:
        serve = subprocess.Popen(
            [str(python), "-I", str(launcher), "serve"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        health = await_healthz(serve, f"http://127.0.0.1:{port}", tmp_path / "serve.log")
        assert health.status_code == 200, health.text
    finally:
        serve.terminate()
        serve.wait(timeout=30)
    # the code that ran is the package's, not this checkout's
    where = subprocess.run(
        [str(python), "-I", "-c", "import central; print(central.__file__)"], capture_output=True, text=True, check=True
    )
    assert where.stdout.startswith(str(root / VENV)), where.stdout
