"""``tillsyn-agent``: the command sysadmins run on a node.

Exit codes: 0 done, 2 a usage or configuration error (nothing was changed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from agent import __version__
from agent.collect import run_collectors
from agent.config import ConfigError, load, resolve_path
from agent.table import render

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tillsyn-agent", description="Tillsyn node agent")
    parser.add_argument("--version", action="version", version=f"tillsyn-agent {__version__}")
    parser.add_argument(
        "--config",
        help="agent configuration file (default: $TILLSYN_AGENT_CONFIG or /etc/tillsyn/agent.yaml)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    collect = sub.add_parser("collect", help="collect evidence of this machine and print it (no centre needed)")
    collect.add_argument("--json", action="store_true", help="print the evidence records as JSON")
    collect.add_argument(
        "--only", action="append", metavar="NAME", help="run only this collector (repeatable, or comma-separated)"
    )
    collect.add_argument(
        "--root",
        default=os.environ.get("TILLSYN_ROOT", "/"),
        help="filesystem root the collectors read below (default: $TILLSYN_ROOT or /); for tests and captured trees",
    )
    return parser


def _only(values: Optional[List[str]], known: Sequence[str]) -> Optional[List[str]]:
    if not values:
        return None
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"--only {unknown[0]}: no such collector (known: {', '.join(sorted(known))})")
    return list(dict.fromkeys(names))


def _collect(args: argparse.Namespace) -> int:
    from collectors import REGISTRY

    path, required = resolve_path(args.config, os.environ)
    config = load(path, required=required)
    only = _only(args.only, list(REGISTRY))
    records = run_collectors(config, only=only, root=Path(args.root))
    if args.json:
        json.dump([r.to_dict() for r in records], sys.stdout, indent=2, sort_keys=False)
        sys.stdout.write("\n")
    else:
        width = shutil.get_terminal_size((100, 24)).columns
        sys.stdout.write(render(records, REGISTRY, width=width))
        if os.geteuid() != 0:
            sys.stdout.write("\nRunning without root: some evidence cannot be seen (listed above).\n")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "collect":
            return _collect(args)
    except ConfigError as err:
        print(f"tillsyn-agent: {err}", file=sys.stderr)
        return EXIT_USAGE
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
