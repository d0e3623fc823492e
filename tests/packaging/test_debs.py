"""The .deb packages, built by scripts/package.sh and installed as a sysadmin would: apt-get in a
clean Debian 12 root (``debootstrap --variant=minbase``, cached outside the repository), the
dependencies coming from Debian.  Inside it the centre migrates and serves, a node enrols and
delivers a report the centre stores, ``check`` judges with the shipped policy; an upgrade keeps an
edited configuration and the enrolment; a purge leaves what packaging/README.md says.  The agent
alone is installed in a clean Debian 13 root too.

There is no systemd as PID 1 in a chroot: the commands a unit would run are run directly, and what
only an init can show (enable, start, stop) is read from the maintainer scripts.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import requests

from tests.centre_process import ROOT, free_port
from tests.conftest import require_root, require_tool
from tests.packaging.debroot import Chroot, tarball

VERSION = "0.1.0"
NEWER = VERSION + "+1"
LOCK = (ROOT / "packaging" / "lock" / "central.txt").read_text()
LOCKED = [line.split("==")[0] for line in LOCK.splitlines() if "==" in line]


def package(dist: Path, *, version: str = VERSION, only: str = "") -> None:
    env = {**os.environ, "TILLSYN_DIST": str(dist), "TILLSYN_VERSION": version, "TILLSYN_DEB_ONLY": only}
    built = subprocess.run(
        [str(ROOT / "scripts" / "package.sh"), "deb"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert built.returncode == 0, built.stderr[-4000:]


@pytest.fixture(scope="session")
def debs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_root("dpkg-buildpackage and chroot")
    for tool in ("dpkg-buildpackage", "dh", "debootstrap", "lintian"):
        require_tool(tool)
    dist = tmp_path_factory.mktemp("debs")
    package(dist)
    return dist


@pytest.fixture(scope="module")
def bookworm(debs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chroot]:
    root = Chroot(tmp_path_factory.mktemp("bookworm") / "root", tarball("bookworm"))
    try:
        (root.path / "tmp" / "debs").mkdir()
        for deb in debs.glob("*.deb"):
            (root.path / "tmp" / "debs" / deb.name).write_bytes(deb.read_bytes())
        root.run("apt-get", "update", "-qq")
        root.run(
            "apt-get", "install", "-y", "-qq", "--no-install-recommends",
            f"/tmp/debs/tillsyn-agent_{VERSION}_all.deb", f"/tmp/debs/tillsyn-central_{VERSION}_amd64.deb",
        )  # fmt: skip
        yield root
    finally:
        root.close()


def control(deb: Path, tmp_path: Path) -> Dict[str, str]:
    """The maintainer scripts of a .deb, by name."""
    out = tmp_path / deb.name
    subprocess.run(["dpkg-deb", "-e", str(deb), str(out)], check=True, timeout=60)
    return {p.name: p.read_text() for p in out.iterdir() if p.is_file()}


def test_install_does_not_start_or_enable_an_unenrolled_agent_and_remove_stops_it(debs: Path, tmp_path: Path) -> None:
    agent = control(debs / f"tillsyn-agent_{VERSION}_all.deb", tmp_path)
    assert "deb-systemd-invoke start" not in agent["postinst"]
    # on a fresh install no unit is enabled (in the root below: no wants link); after an upgrade
    # debhelper keeps the sysadmin's choice
    assert "was-enabled defaults to true" not in agent["postinst"]
    assert "try-restart tillsyn-agent.service" in agent["postinst"]  # an upgrade restarts a running agent
    assert "deb-systemd-invoke stop tillsyn-agent.service" in agent["prerm"]
    assert "/etc/tillsyn/agent.yaml" in agent["conffiles"] and "/etc/tillsyn/policy.yaml" in agent["conffiles"]
    centre = control(debs / f"tillsyn-central_{VERSION}_amd64.deb", tmp_path)
    # the schema is migrated before the service is restarted after an upgrade
    migrate = centre["postinst"].index("tillsyn-central db upgrade")
    assert migrate < centre["postinst"].index("_dh_action=restart")
    assert "deb-systemd-invoke stop 'tillsyn-central.service'" in centre["prerm"]
    assert centre["conffiles"].split() == ["/etc/tillsyn/central.yaml"]


def test_nothing_of_ours_is_a_top_level_python_package(debs: Path) -> None:
    listing = subprocess.run(
        ["dpkg-deb", "-c", str(debs / f"tillsyn-agent_{VERSION}_all.deb")], capture_output=True, text=True, check=True
    ).stdout
    paths = [line.split()[-1] for line in listing.splitlines()]
    assert not [p for p in paths if "-packages/" in p]
    assert "./usr/share/tillsyn/agent/cli.py" in paths and "./usr/share/tillsyn/evidence/defaults/policy.yaml" in paths
    assert not [p for p in paths if p.startswith("./usr/share/tillsyn/central")]
    assert "./usr/share/man/man1/tillsyn-agent.1.gz" in paths


def test_the_centres_environment_runs_on_the_python3_minor_it_depends_on(debs: Path) -> None:
    """Its interpreter link names python3.X itself: a distribution upgrade that changes the default
    python3 leaves the environment on the interpreter its extension modules were built for."""
    deb = debs / f"tillsyn-central_{VERSION}_amd64.deb"
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    links = {line.split()[-3]: line.split()[-1] for line in listing.splitlines() if " -> " in line}
    depends = subprocess.run(["dpkg-deb", "-f", str(deb), "Depends"], capture_output=True, text=True, check=True)
    minors = set(re.findall(r"python3\.\d+", depends.stdout))
    assert len(minors) == 1, depends.stdout
    minor = minors.pop()
    path = "./usr/lib/tillsyn-central/bin/python"
    while path in links:  # python -> python3.X -> /usr/bin/python3.X (as a relative link)
        target = links[path]
        beside = target.lstrip("/") if target.startswith("/") else os.path.join(os.path.dirname(path), target)
        path = "./" + os.path.normpath(beside)
    assert path == f"./usr/bin/{minor}"


@pytest.mark.parametrize("name", ["tillsyn-agent_{v}_all.deb", "tillsyn-central_{v}_amd64.deb"])
def test_lintian_finds_nothing_unexplained(debs: Path, name: str) -> None:
    found = subprocess.run(
        ["lintian", "--fail-on", "error,warning", str(debs / name.format(v=VERSION))],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    tags = [line for line in found.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert found.returncode == 0 and not tags, found.stdout[-4000:]


def dep5_paragraphs(text: str) -> List[Dict[str, str]]:
    """The paragraphs of a DEP-5 copyright file, each field's lines joined (continuations unindented)."""
    found = []
    for block in text.split("\n\n"):
        fields: Dict[str, str] = {}
        name = ""
        for line in block.splitlines():
            if line[:1] in (" ", "\t"):
                fields[name] += "\n" + line[1:]
            elif line.strip():
                name, _, value = line.partition(":")
                fields[name] = value.strip()
        found.append(fields)
    return found


def test_the_centres_copyright_names_every_distribution_of_its_environment(debs: Path, tmp_path: Path) -> None:
    subprocess.run(["dpkg-deb", "-x", str(debs / f"tillsyn-central_{VERSION}_amd64.deb"), str(tmp_path)], check=True)
    paragraphs = dep5_paragraphs((tmp_path / "usr/share/doc/tillsyn-central/copyright").read_text())
    assert paragraphs[0]["Format"] == "https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    (site,) = (tmp_path / "usr/lib/tillsyn-central/lib").glob("python3.*/site-packages")
    installed = sorted(p.name for p in site.glob("*.dist-info"))
    assert len(installed) == len(LOCKED) + 1  # the lock file's and tillsyn itself
    licences = {}
    for dist_info in installed:
        pattern = f"{site.relative_to(tmp_path)}/{dist_info}/*"
        (stanza,) = [p for p in paragraphs if pattern in p.get("Files", "").split()]
        licence, *text = stanza["License"].split("\n")
        assert licence and "UNKNOWN" not in licence.upper(), stanza
        assert stanza["Copyright"], stanza
        # every path it names is in the package
        assert all((tmp_path / f.rstrip("*")).exists() for f in stanza["Files"].split()), stanza["Files"]
        # the licence's text, or the file of /usr/share/common-licenses that holds it
        assert len("\n".join(text)) > 300 or "/usr/share/common-licenses/" in stanza["License"], stanza
        licences[dist_info.split("-")[0]] = licence
    assert licences["orjson"] == "Apache-2.0 or Expat, and MPL-2.0"  # its License-Expression in DEP-5's words
    assert licences["jinja2"] == "BSD-3-Clause"  # its classifier says BSD, its licence text which one
    assert licences["psycopg"] == "LGPL-3" and licences["tillsyn"] == "Apache-2.0"


def test_centre_and_agent_installed_from_the_debs_work_together(bookworm: Chroot, tmp_path: Path) -> None:
    root = bookworm
    # apt brought Debian's own libraries for the agent, and the centre's environment its own
    assert "python3-psutil" in root.run("dpkg-query", "-W", "-f", "${Package}\n").stdout
    assert root.run("stat", "-c", "%U:%G %a", "/etc/tillsyn/central.yaml").stdout.split() == ["root:tillsyn", "640"]
    assert root.run("stat", "-c", "%U %a", "/var/lib/tillsyn/central").stdout.split() == ["tillsyn", "700"]
    wants = root.path / "etc/systemd/system/multi-user.target.wants"
    assert (wants / "tillsyn-central.service").is_symlink(), "the centre is enabled at install"
    assert not (wants / "tillsyn-agent.service").exists(), "the agent waits for enrolment"
    port = free_port()
    config = root.path / "etc/tillsyn/central.yaml"
    config.write_text(config.read_text().replace("port: 8443", f"port: {port}"))
    as_centre = ["setpriv", "--reuid=tillsyn", "--regid=tillsyn", "--init-groups", "--"]
    root.run(*as_centre, "tillsyn-central", "db", "upgrade")
    serve = root.popen(*as_centre, "tillsyn-central", "serve", log=tmp_path / "serve.log")
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert serve.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                health = requests.get(url + "/healthz", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the installed centre did not answer in 90 s"
                time.sleep(0.5)
        assert health.status_code == 200, health.text
        token = root.run(*as_centre, "tillsyn-central", "token", "create", "--ttl", "10m").stdout.strip()
        enrolled = root.run("tillsyn-agent", "enroll", "--server", url, "--token", token)
        assert "systemctl enable --now tillsyn-agent" in enrolled.stdout
        assert root.run("stat", "-c", "%a", "/var/lib/tillsyn/agent.key").stdout.strip() == "600"
        ran = root.run("tillsyn-agent", "run", "--once")
        assert "delivered 1, 0 waiting in the spool" in ran.stdout
        key = root.run(*as_centre, "tillsyn-central", "apikey", "create", "test").stdout.strip()
        nodes = requests.get(url + "/api/v1/nodes", headers={"Authorization": f"Bearer {key}"}, timeout=10).json()
        assert len(nodes) == 1 and nodes[0]["ledger_length"] == 1
        check = root.run("tillsyn-agent", "check", check=False)
        assert check.returncode in (0, 1), check.stderr
        assert "A UPS protects this node" in check.stdout  # the policy in /etc/tillsyn, as shipped
    finally:
        serve.terminate()
        serve.wait(timeout=60)


def test_an_upgrade_keeps_the_edited_configuration_and_the_enrolment(
    bookworm: Chroot, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = bookworm
    config = root.path / "etc/tillsyn/agent.yaml"
    edited = config.read_text() + "\n# edited by the sysadmin\n"
    config.write_text(edited)
    state = root.path / "var/lib/tillsyn"
    if not (state / "enrolment.json").exists():
        pytest.fail("needs the enrolment made by the test before")
    identity = {n: hashlib.sha256((state / n).read_bytes()).hexdigest() for n in ("agent.key", "enrolment.json")}
    newer = tmp_path_factory.mktemp("newer")
    package(newer, version=NEWER, only="agent")
    (root.path / "tmp" / "debs" / f"tillsyn-agent_{NEWER}_all.deb").write_bytes(
        (newer / f"tillsyn-agent_{NEWER}_all.deb").read_bytes()
    )
    root.run("apt-get", "install", "-y", "-qq", f"/tmp/debs/tillsyn-agent_{NEWER}_all.deb")
    assert root.run("dpkg-query", "-W", "-f", "${Version}", "tillsyn-agent").stdout == NEWER
    assert config.read_text() == edited
    assert identity == {n: hashlib.sha256((state / n).read_bytes()).hexdigest() for n in identity}
    assert "agent id:" in root.run("tillsyn-agent", "status").stdout


def test_purge_leaves_only_the_system_user(bookworm: Chroot) -> None:
    root = bookworm
    root.run("apt-get", "purge", "-y", "-qq", "tillsyn-agent", "tillsyn-central")
    gone_paths = (
        "etc/tillsyn",
        "var/lib/tillsyn",
        "usr/share/tillsyn",
        "usr/lib/tillsyn-central",
        "usr/bin/tillsyn-agent",
    )
    for gone in gone_paths:
        assert not (root.path / gone).exists(), gone
    # documented in packaging/README.md: Debian leaves system users in place
    assert "tillsyn:" in (root.path / "etc/passwd").read_text()


def test_the_agent_installs_and_collects_on_debian_13(debs: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    root = Chroot(tmp_path_factory.mktemp("trixie") / "root", tarball("trixie"))
    try:
        (root.path / "tmp" / f"tillsyn-agent_{VERSION}_all.deb").write_bytes(
            (debs / f"tillsyn-agent_{VERSION}_all.deb").read_bytes()
        )
        root.run("apt-get", "update", "-qq")
        root.run("apt-get", "install", "-y", "-qq", "--no-install-recommends", f"/tmp/tillsyn-agent_{VERSION}_all.deb")
        collected = root.run("tillsyn-agent", "collect", "--json")
        assert '"collector": "ports"' in collected.stdout
    finally:
        root.close()
