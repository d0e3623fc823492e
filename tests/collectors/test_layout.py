"""Every registered collector has the one shape docs/adding-a-collector.md describes, and every
place a collector touches outside its package: a docs page, its keys in config/agent.yaml, and at
least one rule in config/policy.yaml."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Iterator, List, Set

import pytest
import yaml

from agent.config import COMMON
from collectors import REGISTRY
from collectors.base import CollectorSpec

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ROOT / "collectors"
NAMES = sorted(REGISTRY)
REQUIRED_FILES = ("__init__.py", "settings.py", "collect.py")
# The modules that may read or change the machine; every other module of a collector is pure.
IO_STEMS = ("collect", "quick")
IO_PREFIXES = ("read_", "store_")

# What a pure module (``parse_*.py`` and every module other than collect, quick, read_* and
# store_*) may not do: open files, run commands, use sockets or psutil, or take the Context that does.
IO_MODULES = {"subprocess", "psutil", "shutil", "select", "collectors.runner"}
IO_CALLS = {"open", "listdir", "scandir", "stat", "lstat", "read_text", "read_bytes", "iterdir", "glob", "readlink"}
SOCKET_CALLS = {"socket", "create_connection", "socketpair", "getaddrinfo"}


def _package(name: str) -> Path:
    return PACKAGES / name


def _modules(name: str) -> List[Path]:
    return sorted(_package(name).glob("*.py"))


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _io_uses(tree: ast.Module) -> Iterator[str]:
    """What in a module reads or talks to the machine."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (f"import {a.name}" for a in node.names if a.name in IO_MODULES)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module in IO_MODULES:
                yield f"from {node.module} import"
            if node.module == "collectors.base" and any(a.name == "Context" for a in node.names):
                yield "the Context"
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "open":
                yield "open()"
            elif isinstance(func, ast.Attribute):
                owner = func.value.id if isinstance(func.value, ast.Name) else ""
                if func.attr in IO_CALLS and owner not in {"re", "fnmatch", "posixpath"}:
                    yield f".{func.attr}()"
                if owner == "socket" and func.attr in SOCKET_CALLS:
                    yield f"socket.{func.attr}()"


@pytest.mark.parametrize("name", NAMES)
def test_the_package_has_the_one_layout(name: str) -> None:
    files = {p.name for p in _modules(name)}
    assert set(REQUIRED_FILES) <= files, f"collectors/{name} lacks {sorted(set(REQUIRED_FILES) - files)}"
    spec = REGISTRY[name]
    assert spec.name == name
    assert re.fullmatch(r"\d+\.\d+", spec.version), f"{name}: version {spec.version!r} is not MAJOR.MINOR"
    module = f"collectors.{name}"
    assert spec.collect.__module__ == f"{module}.collect"
    assert spec.summary.__module__ == f"{module}.collect", f"{name}: summary is not in collect.py"
    assert spec.watch_paths.__module__ in {f"{module}.settings", "collectors.base"}, name  # settings.py or none
    settings = __import__(f"{module}.settings", fromlist=["SETTINGS"])
    assert spec.settings is settings.SETTINGS
    if spec.quick_check is None:
        assert "quick.py" not in files, f"{name} has quick.py but no quick_check on its spec"
    else:
        assert spec.quick_check.__module__ == f"{module}.quick"
        assert spec.poll > 0, f"{name} has a quick check that never runs by default (poll 0)"
    assert spec.interval >= 10 and spec.timeout > 0


@pytest.mark.parametrize("name", NAMES)
def test_init_holds_only_the_spec_and_names_every_module(name: str) -> None:
    init = _package(name) / "__init__.py"
    tree = _tree(init)
    docstring = ast.get_docstring(tree) or ""
    assigned: Set[str] = set()
    for node in tree.body[1:]:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        assert isinstance(node, ast.Assign), f"{init}: line {node.lineno} is more than the spec"
        assigned |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    assert assigned <= {"SPEC", "__all__"} and "SPEC" in assigned
    unnamed = [p.stem for p in _modules(name) if p.stem != "__init__" and f"``{p.stem}``" not in docstring]
    assert unnamed == [], f"{init}: the docstring does not name {unnamed}"


@pytest.mark.parametrize("name", NAMES)
def test_modules_other_than_collect_quick_read_and_store_do_no_io(name: str) -> None:
    for path in _modules(name):
        stem = path.stem
        if stem in IO_STEMS or stem.startswith(IO_PREFIXES):
            continue
        uses = sorted(set(_io_uses(_tree(path))))
        assert uses == [], f"{path.relative_to(ROOT)} is meant to be pure but uses {uses}"


@pytest.mark.parametrize("name", NAMES)
def test_every_collector_has_a_docs_page(name: str) -> None:
    page = ROOT / "docs" / "collectors" / f"{name}.md"
    assert page.is_file(), f"docs/collectors/{name}.md is missing"
    text = page.read_text()
    missing = [key for key in REGISTRY[name].settings if not re.search(rf"\b{key}\b", text)]
    assert missing == [], f"docs/collectors/{name}.md does not describe {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_the_readme_lists_every_collector(name: str) -> None:
    readme = (ROOT / "README.md").read_text()
    assert f"| `{name}` |" in readme and f"(docs/collectors/{name}.md)" in readme, f"README has no row for {name}"


def test_the_policy_docs_list_every_shipped_rule() -> None:
    rules = yaml.safe_load((ROOT / "config" / "policy.yaml").read_text())["rules"]
    table = (ROOT / "docs" / "policy.md").read_text()
    assert [rule["id"] for rule in rules if f"\n| `{rule['id']}` |" not in table] == []


@pytest.mark.parametrize("name", NAMES)
def test_agent_yaml_names_every_key_of_every_collector(name: str) -> None:
    text = (ROOT / "config" / "agent.yaml").read_text()
    collectors = yaml.safe_load(text)["collectors"]
    assert name in collectors, f"config/agent.yaml has no collectors.{name} section"
    section = re.search(rf"^  {name}:\n((?:    .*\n|\s*\n|  +#.*\n)*)", text, re.MULTILINE)
    assert section is not None
    body = section.group(1)
    missing = [k for k in REGISTRY[name].settings if not re.search(rf"^[ #-]*{k}:", body, re.MULTILINE)]
    assert missing == [], f"config/agent.yaml's collectors.{name} does not name {missing}"
    assert not set(REGISTRY[name].settings) & set(COMMON)


@pytest.mark.parametrize("name", NAMES)
def test_the_shipped_policy_has_a_rule_for_every_collector(name: str) -> None:
    rules = yaml.safe_load((ROOT / "config" / "policy.yaml").read_text())["rules"]
    assert any(rule.get("collector") == name for rule in rules), f"config/policy.yaml has no rule for {name}"


def test_the_guide_describes_every_kind_of_module_the_layout_allows() -> None:
    """docs/adding-a-collector.md has a row for each file this test asks for or lets do I/O."""
    guide = (ROOT / "docs" / "adding-a-collector.md").read_text()
    kinds = [
        *REQUIRED_FILES,
        *(f"{stem}.py" for stem in IO_STEMS),
        *(f"{p}<what>.py" for p in IO_PREFIXES),
        "parse_<what>.py",
    ]
    assert [kind for kind in kinds if f"\n| `{kind}` |" not in guide] == []


def test_the_registry_lists_every_package_once() -> None:
    packages = sorted(p.name for p in PACKAGES.iterdir() if (p / "__init__.py").is_file())
    assert packages == NAMES
    assert all(isinstance(spec, CollectorSpec) for spec in REGISTRY.values())


def test_the_purity_check_sees_io() -> None:
    """The check above can fail: each kind of I/O it looks for is found in a sample."""
    sample = (
        "import subprocess\nfrom collectors.base import Context\n"
        "def f(p):\n    open(p)\n    p.read_text()\n    socket.create_connection(('h', 1))\n"
    )
    found = set(_io_uses(ast.parse(sample)))
    assert found == {"import subprocess", "the Context", "open()", ".read_text()", "socket.create_connection()"}
    assert list(_io_uses(ast.parse("import re\nre.compile('x').match('y')\n"))) == []
