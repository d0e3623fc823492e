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
