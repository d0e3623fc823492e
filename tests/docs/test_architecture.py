"""docs/architecture.md and docs/adding-a-collector.md name modules that exist: a move or a rename
that leaves either behind fails here, and so does a package or top-level module of central/ that
architecture.md does not place."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
# each guide with the folder its short paths (``auth/tenants.py``, ``accounts/report.py``) are in
GUIDES = [(ARCHITECTURE, "central"), (ROOT / "docs" / "adding-a-collector.md", "collectors")]
TOPS = ("agent", "collectors", "evidence", "central", "tests", "config", "docs", "packaging")
# `central/ingest/receive.py` (`store_reports`, `parse_signed`): a module and what it defines
MODULE_AND_NAMES = re.compile(r"`([\w/]+\.py)` \(((?:`[\w.]+`(?:, )?)+)\)")


def named_paths(text: str, base: str) -> Iterator[str]:
    """Every repository path in backquotes; a short one (``auth/tenants.py``) is taken below ``base``."""
    for quoted in re.findall(r"`([\w./-]+)`", text):
        if "/" not in quoted or not re.search(r"\.py$|\.md$|\.txt$|\.yaml$|/$", quoted):
            continue
        yield quoted if quoted.split("/")[0] in TOPS else f"{base}/{quoted}"


def named_definitions(text: str) -> Iterator[Tuple[str, str]]:
    """(module path, name) for each ``module (`name`, ...)`` in the text."""
    for path, names in MODULE_AND_NAMES.findall(text):
        for name in re.findall(r"`([\w.]+)`", names):
            yield path, name.split(".")[-1]


@pytest.mark.parametrize(("doc", "base"), GUIDES, ids=lambda p: getattr(p, "name", ""))
def test_every_named_path_exists(doc: Path, base: str) -> None:
    paths = list(named_paths(doc.read_text(), base))
    assert len(paths) > 5  # the paths were found
    assert [p for p in paths if not (ROOT / p).exists()] == []


def test_every_named_function_is_defined_in_its_module() -> None:
    found = list(named_definitions(ARCHITECTURE.read_text()))
    assert ("central/ingest/receive.py", "store_reports") in found
    missing: List[str] = []
    for path, name in found:
        source = (ROOT / path).read_text()
        if not re.search(rf"^\s*(?:async def|def|class) {name}\b", source, re.MULTILINE):
            missing.append(f"{path}: {name}")
    assert missing == []


def test_architecture_places_every_package_and_top_level_module_of_central() -> None:
    text = ARCHITECTURE.read_text()
    central = ROOT / "central"
    parts = [f"{p.name}/" for p in central.iterdir() if (p / "__init__.py").is_file()]
    parts += [p.name for p in central.glob("*.py") if p.name != "__init__.py"]
    assert len(parts) > 10
    assert [p for p in sorted(parts) if f"`{p}`" not in text] == []


def test_the_checks_see_a_stale_name() -> None:
    text = "`central/writer.py` (`store`), `auth/tenants.py`, `central/ingest/receive.py` (`nothing_here`)"
    assert list(named_paths(text, "central")) == [
        "central/writer.py",
        "central/auth/tenants.py",
        "central/ingest/receive.py",
    ]
    assert list(named_definitions(text)) == [
        ("central/writer.py", "store"),
        ("central/ingest/receive.py", "nothing_here"),
    ]


def test_the_readme_layout_names_every_package_of_central() -> None:
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout") :]
    packages = [f"`central/{p.name}/`" for p in (ROOT / "central").iterdir() if (p / "__init__.py").is_file()]
    assert len(packages) > 5
    assert [p for p in sorted(packages) if p not in layout] == []
