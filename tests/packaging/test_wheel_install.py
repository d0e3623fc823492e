"""Tillsyn installed as a user would install it, away from the repository.

The wheel is built by Debian 12's own setuptools (66, without build isolation: what the packages
build with), from a copy of the source outside the repository; a fresh virtual environment in a
temporary directory gets the locked dependencies (hashes checked) and the wheel, and the commands
run from that directory: nothing can be found through the repository's layout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import requests

from tests.centre_process import ROOT, await_healthz, free_port
from tests.conftest import in_ci, require_tool

SOURCE = ("pyproject.toml", "setup.py", "README.md", "agent", "collectors", "evidence", "central", "config")
LOCK = ROOT / "packaging" / "lock" / "central.txt"


def missing(what: str) -> None:
    message = f"{what}; scripts/setup.sh --test installs them (packaging/test-deps.txt)"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def build_wheel(out: Path) -> Path:
    """The wheel, built by /usr/bin/python3 (Debian's setuptools) from a copy of the sources."""
    python = require_tool("/usr/bin/python3")
    if subprocess.run([python, "-c", "import build, setuptools"], check=False, capture_output=True).returncode != 0:
        missing("python3-build and python3-setuptools (Debian's) are not installed")
    src = out / "src"
    src.mkdir(parents=True)
    for name in SOURCE:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, src / name)
    subprocess.run(
        [python, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("tillsyn-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtual environment with the locked dependencies and the wheel; yields its bin/."""
    base = tmp_path_factory.mktemp("wheel-install")
    wheel = build_wheel(base / "wheel")
    venv = base / "venv"
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--require-hashes", "-r", str(LOCK)], check=True, capture_output=True, timeout=900)
    subprocess.run([*pip, "--no-deps", str(wheel)], check=True, capture_output=True, timeout=120)
    yield venv / "bin"


def _env(home: Path) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TILLSYN_", "PYTHON"))}
    env["HOME"] = str(home)
    return env


def _run(args: List[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=False, cwd=cwd, env=_env(cwd), capture_output=True, text=True, timeout=300)


def test_the_wheel_holds_our_four_packages_and_the_shipped_defaults(installed: Path) -> None:
    (wheel,) = installed.parents[1].glob("wheel/tillsyn-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"agent", "central", "collectors", "evidence", "tillsyn-0.1.0.dist-info"}
    for name in ("agent.yaml", "central.yaml", "policy.yaml"):
        assert f"evidence/defaults/{name}" in names
        assert zipfile.ZipFile(wheel).read(f"evidence/defaults/{name}") == (ROOT / "config" / name).read_bytes()
    for data in ("web/templates/login.html", "web/static/style.css", "db/migrations/script.py.mako"):
        assert f"central/{data}" in names


def test_collect_and_check_with_the_shipped_policy(installed: Path, tmp_path: Path) -> None:
    if Path("/etc/tillsyn/policy.yaml").exists():
        pytest.fail("/etc/tillsyn/policy.yaml exists on this machine: the shipped policy would not be used")
    state = ["--state-dir", str(tmp_path / "state")]
    collect = _run([str(installed / "tillsyn-agent"), *state, "collect", "--only", "ports"], tmp_path)
    assert collect.returncode == 0, collect.stderr
    assert "ports" in collect.stdout

    check = _run([str(installed / "tillsyn-agent"), *state, "check"], tmp_path)
    # 0 all pass, 1 some rule fails here; 2 would be the policy or config not found
    assert check.returncode in (0, 1), check.stderr
    # the shipped policy's rules, judged
    assert "A UPS protects this node" in check.stdout, check.stdout


def test_the_centre_migrates_serves_and_answers_healthz(installed: Path, tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "central.yaml"
    config.write_text(f"state_dir: {tmp_path / 'central'}\nlisten: {{host: 127.0.0.1, port: {port}}}\n")
    env = {**_env(tmp_path), "TILLSYN_CENTRAL_CONFIG": str(config)}
    upgrade = subprocess.run(
        [str(installed / "tillsyn-central"), "db", "upgrade"],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen(
            [str(installed / "tillsyn-central"), "serve"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        answer = await_healthz(proc, f"http://127.0.0.1:{port}", tmp_path / "serve.log")
        assert answer.status_code == 200, answer.text
        # the dashboard's templates came with the wheel
        login = requests.get(f"http://127.0.0.1:{port}/login", timeout=5)
        assert login.status_code == 200 and "<form" in login.text, login.text[:300]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_three_lock_files_pin_one_version_of_each_package() -> None:
    pins: Dict[str, Dict[str, str]] = {}
    for lock in sorted((ROOT / "packaging" / "lock").glob("*.txt")):
        for line in lock.read_text().splitlines():
            if "==" in line and not line.startswith((" ", "#")):
                name, version = line.split(" ")[0].split("==")
                pins.setdefault(name.lower(), {})[lock.name] = version
    assert {"fastapi", "uvicorn", "argon2-cffi", "pydantic", "pytest", "systemd-python"} <= set(pins)
    split = {name: seen for name, seen in pins.items() if len(set(seen.values())) > 1}
    assert not split, f"scripts/lock.sh keeps one version per package; these differ: {split}"
