"""``tillsyn-central node erase NODE`` and ``node erase-request NODE``: erasure of a node's personal
data on request (M08, GDPR Art. 17).  Run on the centre's machine, which makes it an
administrator's act; each is recorded in the audit trail as ``cli:<user>``."""

from __future__ import annotations

import argparse
import getpass
from datetime import datetime
from typing import Any

from central.config import CentralConfig, ConfigError
from evidence.model import parse_utc

COMMANDS = ("node",)


def add_parsers(sub: Any) -> None:
    node = sub.add_parser("node", help="a node's data: erasure on request (M08)").add_subparsers(
        dest="action", required=True
    )
    erase = node.add_parser("erase", help="remove usernames, home paths and command lines from a node's evidence")
    erase.add_argument("node", help="agent id or hostname")
    erase.add_argument("--request", help="the request's reference (one recorded before, or a new one)")
    later = node.add_parser("erase-request", help="record a request to be carried out within three months")
    later.add_argument("node", help="agent id or hostname")
    later.add_argument("--request", required=True, help="the request's reference, e.g. the ticket number")
    later.add_argument("--requested-at", help="when the person asked, e.g. 2026-11-30T09:00:00Z (default: now)")


def _when(text: str) -> datetime:
    try:
        return parse_utc(text)
    except ValueError as err:
        raise ConfigError(f"--requested-at {text!r}: not a time with zone, e.g. 2026-11-30T09:00:00Z") from err


def run(config: CentralConfig, args: argparse.Namespace) -> int:
    from central.clock import utcnow
    from central.db.engine import write_tx
    from central.erasure import erase
    from central.runtime.service import open_centre

    centre = open_centre(config)
    actor = f"cli:{getpass.getuser()}"
    now = utcnow()
    try:
        with write_tx(centre.engine) as conn:
            if args.action == "erase-request":
                made = _when(args.requested_at) if args.requested_at else now
                done = erase.request(conn, args.node, args.request, made, actor, now, "cli")
                due = f"{done['due_at']:%Y-%m-%d}"
                print(f"erasure request {args.request} for node {done['agent_id']} recorded; due {due}")
                return 0
            result = erase.erase(conn, args.node, args.request, actor, now, "cli")
        print(
            f"node {result.hostname}: {result.values} personal value(s) erased from {result.reports} report(s), "
            f"its latest evidence, findings and incidents (request {result.reference}); "
            "the ledger still verifies: tillsyn-central verify"
        )
        return 0
    except erase.EraseError as err:
        raise ConfigError(str(err)) from err
    finally:
        centre.stop()
