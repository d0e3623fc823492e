"""HTML to PDF with headless Chromium (Debian's ``chromium`` package): the browser prints the
same document people see, so the PDF and the HTML never disagree."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

from central.export.model import ExportError

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")


def find_chromium(explicit: Optional[str] = None) -> str:
    for name in (explicit,) if explicit else CANDIDATES:
        found = shutil.which(name) if name else None
        if found:
            return found
    raise ExportError(
        "PDF needs headless Chromium and none was found"
        + (f" at {explicit!r}" if explicit else " (looked for: " + ", ".join(CANDIDATES) + ")")
        + "; install it (apt install chromium) or export --format html and print that"
    )


def html_to_pdf(html: str, chromium: Optional[str] = None, timeout_s: float = 120.0) -> bytes:
    """The PDF bytes of ``html``, printed by Chromium from a private temporary profile."""
    browser = find_chromium(chromium)
    with tempfile.TemporaryDirectory(prefix="tillsyn-pdf-") as tmp:
        page, out = Path(tmp) / "export.html", Path(tmp) / "export.pdf"
        page.write_text(html, encoding="utf-8")
        argv = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--user-data-dir={Path(tmp) / 'profile'}",
            f"--print-to-pdf={out}",
            page.as_uri(),
        ]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=timeout_s, check=False, cwd=tmp)  # noqa: S603
        except subprocess.TimeoutExpired as err:
            raise ExportError(f"{browser} did not finish printing the PDF within {timeout_s:g} s") from err
        if not out.exists() or out.stat().st_size == 0:
            detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
            raise ExportError(f"{browser} made no PDF (exit {done.returncode}): {' / '.join(detail)}")
        return out.read_bytes()
