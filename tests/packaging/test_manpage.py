"""packaging/manpage.py: the man pages come from the commands' own parsers, so every subcommand
and option the command has is on its page, and groff reads the page without a warning."""

from __future__ import annotations

import argparse
import importlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator, Tuple

import pytest

from tests.centre_process import ROOT

sys.path.insert(0, str(ROOT / "packaging"))
import manpage


def _walk(parser: argparse.ArgumentParser, prefix: str = "") -> Iterator[Tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix}{name}", sub
                yield from _walk(sub, f"{prefix}{name} ")


@pytest.mark.parametrize("module", ["agent.cli", "central.cli.commands"])
def test_every_subcommand_and_option_is_on_the_page(module: str, tmp_path: Path) -> None:
    out = tmp_path / "page.1"
    assert manpage.main([module, str(out), "--date", "2026-01-01", "--version", "9.9"]) == 0
    page = out.read_text()
    parser = importlib.import_module(module)._parser()
    assert f'.TH {parser.prog.upper()} 1 "2026-01-01" "Tillsyn 9.9"' in page
    commands = list(_walk(parser))
    assert len(commands) >= 5
    for name, sub in commands:
        assert f".SS {manpage.escape(name)}\n" in page
        for action in sub._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help") and action.help != argparse.SUPPRESS:
                    assert manpage.escape(option) in page, (name, option)
    groff = shutil.which("groff")
    if groff:
        shown = subprocess.run(
            [groff, "-man", "-Tutf8", "-ww", str(out)], capture_output=True, text=True, timeout=60, check=True
        )
        assert shown.stderr == "", shown.stderr
        assert "tillsyn" in shown.stdout


def test_roff_requests_in_help_text_are_shown_as_text() -> None:
    assert manpage.escape(".SH not a section\n'quote") == "\\&.SH not a section\n\\&'quote"
    assert manpage.escape("a-b \\x") == "a\\-b \\ex"
