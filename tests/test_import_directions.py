"""Imports only point down (docs/architecture.md): agent -> collectors, evidence; collectors -> evidence;
central -> evidence; evidence -> nothing of ours.  Read from the source with ``ast``, so an import
inside a function or under ``TYPE_CHECKING`` counts too."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

ROOT = Path(__file__).resolve().parents[1]
OURS = ("agent", "collectors", "evidence", "central")
ALLOWED: Dict[str, Set[str]] = {
    "agent": {"agent", "collectors", "evidence"},
    "collectors": {"collectors", "evidence"},
    "evidence": {"evidence"},
    "central": {"central", "evidence"},
}


def imported(tree: ast.AST) -> Iterator[Tuple[int, str]]:
    """(line, dotted module) of every absolute import in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def wrong_edges(package: str, source: str, where: str) -> List[str]:
    found = []
    for line, module in imported(ast.parse(source)):
        top = module.split(".")[0]
        if top in OURS and top not in ALLOWED[package]:
            found.append(f"{where}:{line}: {package} imports {module}")
    return found


def test_every_import_points_down() -> None:
    wrong: List[str] = []
    checked = 0
    for package in OURS:
        for path in sorted((ROOT / package).rglob("*.py")):
            wrong += wrong_edges(package, path.read_text(), str(path.relative_to(ROOT)))
            checked += 1
    assert checked > 100  # the tree was found
    assert wrong == []


def test_the_check_sees_an_upward_or_sideways_import() -> None:
    source = "import central.db\nfrom agent.config import load\ndef f():\n    from collectors import REGISTRY\n"
    assert wrong_edges("collectors", source, "x.py") == [
        "x.py:1: collectors imports central.db",
        "x.py:2: collectors imports agent.config",
    ]
    assert wrong_edges("central", source, "x.py") == [
        "x.py:2: central imports agent.config",
        "x.py:4: central imports collectors",
    ]
    assert wrong_edges("evidence", "from evidence import model\nimport yaml\n", "x.py") == []


def test_the_dashboard_and_the_api_share_through_auth_not_through_each_other() -> None:
    """web/ imports nothing of api/ (shared authorisation lives in central/auth/), and only the
    application (api/app.py) includes the dashboard."""
    wrong: List[str] = []
    for path in sorted((ROOT / "central").rglob("*.py")):
        where = str(path.relative_to(ROOT))
        for line, module in imported(ast.parse(path.read_text())):
            if where.startswith("central/web/") and module.startswith("central.api"):
                wrong.append(f"{where}:{line}: imports {module}")
            if where.startswith("central/api/") and module.startswith("central.web") and where != "central/api/app.py":
                wrong.append(f"{where}:{line}: imports {module}")
    assert wrong == []


def imported_test_modules(tree: ast.AST) -> Iterator[Tuple[int, str]]:
    """(line, module) of every test module (``tests/**/test_*.py``) that ``tree`` imports."""
    for line, module in imported(tree):
        if module.startswith("tests.") and module.split(".")[-1].startswith("test_"):
            yield line, module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tests":
            yield from ((node.lineno, f"{node.module}.{a.name}") for a in node.names if a.name.startswith("test_"))


def test_tests_share_helpers_never_test_modules() -> None:
    """Helpers live in conftest.py or helper modules of the mirrored tree, not in another test module."""
    wrong: List[str] = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        where = path.relative_to(ROOT)
        wrong += [
            f"{where}:{line}: imports {module}" for line, module in imported_test_modules(ast.parse(path.read_text()))
        ]
    assert wrong == []
    sample = "from tests.agent.test_daemon import centre\nfrom tests.agent import test_daemon, daemon_helpers\n"
    assert [m for _, m in imported_test_modules(ast.parse(sample))] == [
        "tests.agent.test_daemon",
        "tests.agent.test_daemon",
    ]
