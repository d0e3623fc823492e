"""``tillsyn-central export report|verify`` and ``tillsyn-central retention run``.

Exit codes as elsewhere: 0 done (or the export verified), 1 the export does not match,
2 a usage or configuration error (nothing written), or an export nothing of which can be checked.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from central.config import CentralConfig, ConfigError

COMMANDS = ("export", "retention")
EXIT_PROBLEM = 1
EXIT_UNUSABLE = 2


def add_parsers(sub: Any) -> None:
    export = sub.add_parser("export", help="the auditor's export, and checking one").add_subparsers(
        dest="action", required=True
    )
    report = export.add_parser("report", help="every control per node at a time or over a period")
    who = report.add_mutually_exclusive_group(required=True)
    who.add_argument("--tenant", help="only this tenant's nodes")
    who.add_argument("--all-tenants", action="store_true", help="every node of every tenant")
    report.add_argument("--at", help="a point in time, e.g. 2026-11-27T22:00:00Z (default: now)")
    report.add_argument("--from", dest="start", help="start of a period (with --to)")
    report.add_argument("--to", dest="end", help="end of a period (with --from)")
    report.add_argument("--format", choices=("json", "csv", "html", "pdf"), default="json")
    report.add_argument("--with-evidence", action="store_true", help="include each cited report's signed body")
    report.add_argument("-o", "--output", type=Path, help="file to write (default: standard output; needed for pdf)")
    report.add_argument("--chromium", help="the browser that prints PDFs (default: /usr/bin/chromium)")
    check = export.add_parser("verify", help="check a JSON export against the ledger (or alone: --offline)")
    check.add_argument("file", type=Path)
    check.add_argument("--offline", action="store_true", help="without the database (needs --with-evidence)")

    retention = sub.add_parser("retention", help="retention (M08)").add_subparsers(dest="action", required=True)
    retention.add_parser("run", help="delete what is older than central.yaml's retention periods, now")


def _request(args: argparse.Namespace) -> Any:
    from central.clock import utcnow
    from central.export.model import Request, parse_time

    if args.at and (args.start or args.end):
        raise ConfigError("give either --at or --from/--to, not both")
    if bool(args.start) != bool(args.end):
        raise ConfigError("a period needs both --from and --to")
    tenant = None if args.all_tenants else args.tenant
    if args.start:
        return Request(parse_time(args.end, "--to"), parse_time(args.start, "--from"), tenant, args.with_evidence)
    end = parse_time(args.at, "--at") if args.at else utcnow()
    return Request(end, None, tenant, args.with_evidence)


def _settle(conn: Any, req: Any, args: argparse.Namespace) -> Any:
    """The request, ending before the reports the centre has not judged yet: "now" is moved back
    to just before the oldest of them; a time the user gave is refused (docs/audit-export.md)."""
    from central.export import settled
    from central.export.model import iso

    waiting = settled.pending(conn, req.tenant)
    given = "--at" if args.at else "--to" if args.end else None
    settled_req = settled.settle(req, waiting, given)
    if settled_req is not req:
        print(f"{waiting.why()}: the export is as of {iso(settled_req.end)}, just before it", file=sys.stderr)
    return settled_req


def _report(config: CentralConfig, args: argparse.Namespace) -> int:
    from central.db.engine import snapshot_tx
    from central.export import html, pdf, render
    from central.export.build import build
    from central.runtime.service import open_centre

    if args.format == "pdf" and args.output is None:
        raise ConfigError("a PDF needs --output FILE")
    req = _request(args)
    if args.format == "pdf":
        pdf.find_chromium(args.chromium)  # fail before any work when the browser is missing
    centre = open_centre(config)
    try:
        with snapshot_tx(centre.engine) as conn:
            data = build(conn, _settle(conn, req, args), centre.policy.policy, config.retention)
    finally:
        centre.stop()
    if args.format == "pdf":
        output: Any = pdf.html_to_pdf(html.to_html(data), args.chromium)
    else:
        output = {"json": render.to_json, "csv": render.to_csv, "html": html.to_html}[args.format](data)
    if args.output is None:
        sys.stdout.write(output)
    else:
        (args.output.write_bytes if isinstance(output, bytes) else args.output.write_text)(output)
        print(f"{args.output}: {len(data['nodes'])} node(s), {args.format}", file=sys.stderr)
    return 0


def _verify(config: CentralConfig, args: argparse.Namespace) -> int:
    from central.export import check_export

    export = check_export.load(args.file)
    alone: Optional[check_export.Offline] = None
    if args.offline:
        alone = check_export.offline(export)
        problems: List[Any] = alone.problems
        what = f"offline: {alone.tally()}"
    else:
        from central.db import migrate
        from central.db.engine import make_engine, snapshot_tx

        engine = make_engine(config.db_url)
        try:
            if migrate.current(engine) is None:
                raise ConfigError("no Tillsyn schema in this database; check database_url / TILLSYN_DATABASE_URL")
            with snapshot_tx(engine) as conn:
                problems = check_export.against_store(conn, export, config.retention)
        finally:
            engine.dispose()
        what = "against the ledger"
    for problem in problems[:100]:
        print(problem)
    if len(problems) > 100:
        print(f"... and {len(problems) - 100} more")
    bad = [p for p in problems if not p.note]
    notes = len(problems) - len(bad)
    unproven = alone is not None and alone.proves_nothing
    if bad:
        verdict = f"{len(bad)} mismatch(es)"
    elif unproven:
        verdict = "nothing in it could be checked"
    else:
        verdict = "matches" + (f" where checkable ({notes} NOTE(s))" if notes else "")
    print(f"{args.file}: {len(export.get('nodes', []))} node(s) checked {what}: {verdict}")
    if bad:
        return EXIT_PROBLEM
    return EXIT_UNUSABLE if unproven else 0


def _retention(config: CentralConfig) -> int:
    from central.clock import utcnow
    from central.db.engine import write_tx
    from central.retention import sweep
    from central.runtime.service import open_centre

    centre = open_centre(config)
    total: Dict[str, int] = {}
    try:
        while True:  # rounds of bounded size, each its own transaction, until nothing old is left
            with write_tx(centre.engine) as conn:
                done = sweep.run(conn, config.retention, utcnow(), source="cli")
            if not done.ran:
                print("another centre process is running retention now; nothing done here")
                return 0
            for key, value in done.counts().items():
                total[key] = total.get(key, 0) + value
            if not done.more:
                break
    finally:
        centre.stop()
    print("deleted: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in total.items()))
    return 0


def run(config: CentralConfig, args: argparse.Namespace) -> int:
    from central.export.model import ExportError

    try:
        if args.command == "retention":
            return _retention(config)
        return _report(config, args) if args.action == "report" else _verify(config, args)
    except ExportError as err:
        raise ConfigError(str(err)) from err
