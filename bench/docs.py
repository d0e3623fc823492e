"""Replace one marked section of a Markdown file, leaving the rest as it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Tuple, TypeVar

T = TypeVar("T")


def replace_section(path: Path, name: str, body: str) -> None:
    begin, end = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"
    text = path.read_text() if path.exists() else ""
    block = f"{begin}\n{body}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def command_line(module: str, options: Sequence[Tuple[str, Any, Any]], write: bool) -> str:
    """The command a section was made with, as a reader would type it: each ``(name, value, default)``
    option only where it differs from its default."""
    given = "".join(f" --{name} {value}" for name, value, default in options if value != default)
    return f".venv/bin/python -m {module}{given}" + (" --write" if write else "")


def on_databases(db: str, run: Callable[[str, Optional[str]], T]) -> List[T]:
    """``run("SQLite", None)`` and/or ``run("PostgreSQL", url)`` on a fresh database, by ``--db``."""
    from bench.load_server import pg_database

    runs = []
    if db in ("sqlite", "both"):
        runs.append(run("SQLite", None))
    if db in ("postgresql", "both"):
        with pg_database() as url:
            runs.append(run("PostgreSQL", url))
    return runs


def publish(name: str, body: str, write: bool) -> None:
    """Print a section; with ``--write`` also put it in docs/benchmarks.md."""
    print(body)
    if write:
        replace_section(Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md", name, body)
