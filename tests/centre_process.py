"""A real ``tillsyn-central serve`` process for end-to-end tests (loopback only)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import requests

ROOT = Path(__file__).resolve().parents[1]
# The centre needs Python 3.11 and its own libraries; the agent's tests on the oldest
# libraries (scripts/test-oldest.sh) point this at the main environment's interpreter.
CENTRAL_PYTHON = os.environ.get("TILLSYN_TEST_CENTRAL_PYTHON", sys.executable)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def await_healthz(serve: subprocess.Popen[bytes], url: str, log: Path, seconds: float = 60) -> requests.Response:
    """The first answer of ``url``/healthz from the centre ``serve`` starts (its log said if it exits)."""
    deadline = time.monotonic() + seconds
    while True:
        assert serve.poll() is None, log.read_text()[-3000:]
        try:
            return requests.get(f"{url}/healthz", timeout=2)
        except requests.ConnectionError:
            assert time.monotonic() < deadline, f"the centre did not answer in {seconds:g} s"
            time.sleep(0.2)


class CentreProcess:
    """Start, stop, kill and restart a centre with its own state directory and port."""

    def __init__(
        self,
        state: Path,
        port: Optional[int] = None,
        extra_yaml: str = "",
        database_url: Optional[str] = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.state = state
        self.host = host
        """Where it listens: loopback, or a test's own address (the host end of a veth pair)."""
        self.port = port or free_port()
        self.config = state / "central.yaml"
        state.mkdir(parents=True, exist_ok=True)
        self.config.write_text(f"state_dir: {state}\nlisten: {{host: {host}, port: {self.port}}}\n{extra_yaml}")
        self.env = {**os.environ, "TILLSYN_CENTRAL_CONFIG": str(self.config)}
        self.env.pop("TILLSYN_STATE_DIR", None)
        if database_url:
            self.env["TILLSYN_DATABASE_URL"] = database_url
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.scheme = "https" if "tls_cert" in extra_yaml else "http"
        self.ca: Optional[Path] = None
        """The certificate the test's own requests trust (a self-signed centre's), when set."""

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CENTRAL_PYTHON, "-m", "central.cli", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
        )

    def start(self, wait: float = 20.0, verify: object = False) -> CentreProcess:
        verify = str(self.ca) if self.ca else verify
        log = open(self.state / "central.log", "ab")  # noqa: SIM115  kept open for the process's life
        self.proc = subprocess.Popen(
            [CENTRAL_PYTHON, "-m", "central.cli", "serve"], env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"centre exited: {(self.state / 'central.log').read_text()[-2000:]}")
            try:
                requests.get(self.url + "/livez", timeout=1, verify=verify)  # type: ignore[arg-type]
                return self
            except requests.exceptions.RequestException:
                time.sleep(0.1)
        raise RuntimeError("centre did not start in time")

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers run, as in a crash."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None

    def token(self, *args: str) -> str:
        return self.cli("token", "create", *args).stdout.strip()

    def api_key(self) -> Dict[str, str]:
        return {"Authorization": "Bearer " + self.cli("apikey", "create", "tests").stdout.strip()}

    def get(self, path: str, headers: Dict[str, str]) -> List[Dict[str, object]]:
        response = requests.get(self.url + path, headers=headers, timeout=10, verify=str(self.ca) if self.ca else True)
        response.raise_for_status()
        data: List[Dict[str, object]] = response.json()
        return data
