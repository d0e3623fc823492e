"""A real centre process, real signed nodes over HTTP, people made with the CLI, and headless Chromium."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
import yaml

from tests.central.conftest import database_url, pg_server  # noqa: F401  (fixtures)
from tests.centre_process import CENTRAL_PYTHON, ROOT, CentreProcess
from tests.conftest import require_tool
from tests.e2e.alert_helpers import centre_yaml

PASSWORD = "correct horse battery staple 42"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# Screenshots go to a scratch directory; to refresh the ones in docs/, run the browser tests with
# TILLSYN_SCREENSHOTS=docs/screenshots (a test run must not change tracked files).
SCREENSHOTS = Path(os.environ.get("TILLSYN_SCREENSHOTS") or Path(tempfile.gettempdir()) / "tillsyn-screenshots")
SCREENSHOTS.mkdir(parents=True, exist_ok=True)


def _yaml() -> str:
    """Short duty rhythm, alerting with no channels (incidents still open), cookies over loopback http."""
    text = centre_yaml({}, [], duty_interval_s=1)
    return text + yaml.safe_dump({"sessions": {"secure_cookie": False}})


def started(tmp_path: Path, url: Optional[str] = None) -> Iterator[CentreProcess]:
    process = CentreProcess(tmp_path / "centre", extra_yaml=_yaml(), database_url=url).start()
    yield process
    process.stop()


@pytest.fixture
def centre_process(tmp_path: Path) -> Iterator[CentreProcess]:
    """A centre process on SQLite; test_dashboard.py runs its tests on PostgreSQL too (``centre_on_both``)."""
    yield from started(tmp_path)


@pytest.fixture
def centre_on_both(tmp_path: Path, database_url: str) -> Iterator[CentreProcess]:  # noqa: F811
    """A centre process on SQLite, then on a fresh PostgreSQL database (``database_url``)."""
    yield from started(tmp_path, database_url)


def make_user(centre_process: CentreProcess, name: str, role: str, *tenants: str) -> None:
    """``tillsyn-central user create NAME --role ROLE --tenant T --password-stdin``, as an admin would."""
    args = ["user", "create", name, "--role", role, "--password-stdin"]
    for tenant in tenants:
        args += ["--tenant", tenant]
    done = subprocess.run(
        [CENTRAL_PYTHON, "-m", "central.cli", *args],
        check=False,
        input=PASSWORD + "\n",
        env=centre_process.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium = require_tool("chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as play:
        launched = play.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Dialogs:
    """Every JavaScript dialog (alert/confirm/prompt) a page tries to open: must stay empty."""

    def __init__(self) -> None:
        self.seen: List[str] = []

    def __call__(self, dialog: Any) -> None:
        self.seen.append(dialog.message)
        dialog.dismiss()


def login(browser: Any, centre_process: CentreProcess, name: str, password: str = PASSWORD) -> Dict[str, Any]:
    """A fresh browser context logged in as ``name``; dialogs recorded, console errors kept."""
    context = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
    page = context.new_page()
    dialogs = Dialogs()
    page.on("dialog", dialogs)
    errors: List[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(centre_process.url + "/")
    assert page.url.startswith(centre_process.url + "/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(centre_process.url + "/")
    return {"context": context, "page": page, "dialogs": dialogs, "errors": errors}
