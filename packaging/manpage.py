"""Write the man page of ``tillsyn-agent`` or ``tillsyn-central`` from the command's own argparse parser.

The packages run this at build time, so the page lists exactly the subcommands, options and help
texts the installed command has; it cannot drift from the code.  Usage::

    python3 packaging/manpage.py agent.cli OUT.1 [--version V] [--date YYYY-MM-DD]

The module's docstring (exit codes and so on) becomes the page's DESCRIPTION after the parser's.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import inspect
import sys
from typing import Iterator, List, Optional, Sequence, Tuple

FILES = {
    "tillsyn-agent": [
        ("/etc/tillsyn/agent.yaml", "the agent's configuration"),
        ("/etc/tillsyn/policy.yaml", "the policy tillsyn-agent check judges this machine by"),
        ("/var/lib/tillsyn/", "the node's key, enrolment, spool and status"),
    ],
    "tillsyn-central": [
        ("/etc/tillsyn/central.yaml", "the centre's configuration"),
        ("/etc/tillsyn/policy.yaml", "the policy the centre judges every node by"),
        ("/var/lib/tillsyn/central/", "the centre's state (the SQLite database by default)"),
    ],
}


def escape(text: str) -> str:
    """Text as roff shows it: backslashes and hyphens literal, no line taken for a request."""
    out = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line for line in out.splitlines())


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[Tuple[str, str, argparse.ArgumentParser]]:
    """(name, help, parser) of each subcommand, depth first, in the order they were added."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, str(helps.get(name, "")), sub
                for child, text, grandchild in _subcommands(sub):
                    yield f"{name} {child}", text, grandchild


def _options(parser: argparse.ArgumentParser) -> List[str]:
    lines: List[str] = []
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        if isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            names = ", ".join(action.option_strings)
            if action.nargs != 0:
                names += " " + (action.metavar or action.dest.upper())  # type: ignore[operator]
        else:
            names = str(action.metavar or action.dest)
        lines += [".TP", f"\\fB{escape(names)}\\fR", escape(action.help or "")]
    return lines


def _usage(parser: argparse.ArgumentParser) -> str:
    return " ".join(parser.format_usage().split()).removeprefix("usage: ")


def render(parser: argparse.ArgumentParser, doc: str, version: str, date: str) -> str:
    prog = parser.prog
    lines = [
        f'.TH {prog.upper()} 1 "{date}" "Tillsyn {version}" "Tillsyn manual"',
        ".SH NAME",
        f"{escape(prog)} \\- {escape(parser.description or '')}",
        ".SH SYNOPSIS",
        escape(_usage(parser)),
        ".SH DESCRIPTION",
        escape(parser.description or "") + ".",
    ]
    for paragraph in inspect.cleandoc(doc).split("\n\n")[1:]:
        lines += [".PP", escape(" ".join(paragraph.split()))]
    lines += [".SH OPTIONS", *_options(parser), ".SH COMMANDS"]
    for name, text, sub in _subcommands(parser):
        lines += [f".SS {escape(name)}", escape(text) + ("." if text and not text.endswith(".") else "")]
        lines += [".PP", f"\\fB{escape(_usage(sub))}\\fR", *_options(sub)]
    if prog in FILES:
        lines.append(".SH FILES")
        for path, text in FILES[prog]:
            lines += [".TP", f"\\fI{escape(path)}\\fR", escape(text)]
    lines += [".SH SEE ALSO", "The project's README and docs/ (installed under /usr/share/doc)."]
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("module", help="agent.cli or central.cli.commands (the module with _parser)")
    args.add_argument("output", help="the .1 file to write")
    args.add_argument("--date", default="", help="the page's date (the package's changelog date)")
    args.add_argument("--version", help="the version the page names (default: the installed tillsyn's)")
    opts = args.parse_args(argv)
    module = importlib.import_module(opts.module)
    parser = module._parser()
    version = opts.version or importlib.metadata.version("tillsyn")
    with open(opts.output, "w", encoding="utf-8") as out:
        out.write(render(parser, module.__doc__ or "", version, opts.date))
    return 0


if __name__ == "__main__":
    sys.exit(main())
