"""Captured sysfs/proc trees of real machines and a runner that answers commands from fixture files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Mapping, Sequence

from collectors import settings as settings_mod
from collectors.base import Context
from collectors.disk_encryption import SPEC
from collectors.runner import CommandResult

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "disk_encryption"

TREES = FIX / "trees"


class FixtureRunner:
    """Answers commands from fixture files and records what was run."""

    def __init__(self, outputs: Mapping[str, str]) -> None:
        self.outputs = outputs
        self.calls: List[Sequence[str]] = []

    def __call__(self, argv: Sequence[str], **kwargs: Any) -> CommandResult:
        assert "timeout" in kwargs
        self.calls.append(list(argv))
        name = argv[0]
        if name not in self.outputs:
            return CommandResult(argv, None, b"", b"", "not found")
        return CommandResult(argv, 0, (FIX / self.outputs[name]).read_bytes(), b"")


def run(tree: str, euid: int = 1000, outputs: Mapping[str, str] = (), **settings: Any) -> tuple:
    runner = FixtureRunner(dict(outputs))
    valid = settings_mod.validate(settings, SPEC.settings, "collectors.disk_encryption")
    ctx = Context(root=TREES / tree, settings=valid, run=runner, euid=euid)
    return SPEC.collect(ctx), runner
