"""``tillsyn-central incident|window|waiver|audit``: on-call and compliance work from the shell.

Every change is recorded in the audit trail as ``cli:<user>`` (``--by`` names someone else,
e.g. the person on whose behalf it is done).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import datetime, timedelta
from typing import Any, Optional

from central.config import CentralConfig, ConfigError

COMMANDS = ("incident", "window", "waiver", "audit")


def _time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: use e.g. 2026-11-27T22:00:00Z") from err
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a zone, e.g. Z or +01:00")
    return moment


def _duration(text: str) -> timedelta:
    from evidence.rules import parse_duration

    try:
        return timedelta(seconds=parse_duration(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def _scope(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agent", help="one node (agent id)")
    parser.add_argument("--group", help="every node of a group")
    parser.add_argument("--tenant", help="every node of a tenant")
    parser.add_argument("--by", help="who does this (default: cli:<your user name>)")


def add_parsers(sub: Any) -> None:
    incident = sub.add_parser("incident", help="incidents: list, show, acknowledge").add_subparsers(
        dest="action", required=True
    )
    listing = incident.add_parser("list", help="incidents, newest first")
    listing.add_argument("--status", choices=("open", "resolved"))
    show = incident.add_parser("show", help="one incident with its timeline")
    show.add_argument("id", type=int)
    ack = incident.add_parser("ack", help="acknowledge an incident (stops reminders)")
    ack.add_argument("id", type=int)
    ack.add_argument("--note")
    ack.add_argument("--by")

    window = sub.add_parser("window", help="maintenance windows").add_subparsers(dest="action", required=True)
    create = window.add_parser("create", help="declare a window: holds the nodes' alerts, allows named rules")
    _scope(create)
    create.add_argument("--start", type=_time, help="default: now")
    end = create.add_mutually_exclusive_group(required=True)
    end.add_argument("--end", type=_time)
    end.add_argument("--for", dest="length", type=_duration, help="e.g. 2h")
    create.add_argument("--reason", required=True)
    create.add_argument(
        "--allows",
        action="append",
        default=[],
        metavar="RULE",
        help="a rule allowed to deviate during the window (repeatable)",
    )
    window.add_parser("list")
    cancel = window.add_parser("cancel", help="end a window now")
    cancel.add_argument("id")
    cancel.add_argument("--by")

    waiver = sub.add_parser("waiver", help="waivers: accepted deviations").add_subparsers(dest="action", required=True)
    grant = waiver.add_parser("create", help="accept a deviation until a date")
    _scope(grant)
    grant.add_argument("--rule", required=True)
    grant.add_argument("--justification", required=True)
    grant.add_argument("--approver", required=True)
    until = grant.add_mutually_exclusive_group(required=True)
    until.add_argument("--expires", type=_time)
    until.add_argument("--for", dest="length", type=_duration, help="e.g. 30d")
    waiver.add_parser("list")
    revoke = waiver.add_parser("revoke", help="withdraw a waiver now")
    revoke.add_argument("id")
    revoke.add_argument("--by")

    audit = sub.add_parser("audit", help="the audit trail, newest first")
    audit.add_argument("--limit", type=int, default=100)


def _print(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def run(config: CentralConfig, args: argparse.Namespace) -> int:
    from central import audit
    from central.alerting import manage
    from central.clock import utcnow
    from central.db.engine import read_tx, write_tx
    from central.identifiers import ROW_MAX
    from central.runtime.service import open_centre

    centre = open_centre(config)
    now = utcnow()
    actor = getattr(args, "by", None) or f"cli:{getpass.getuser()}"
    try:
        if args.command == "audit":
            with read_tx(centre.engine) as conn:
                _print(audit.entries(conn, args.limit))
            return 0
        if args.action in ("list", "show"):
            with read_tx(centre.engine) as conn:
                if args.command == "incident" and args.action == "list":
                    _print(manage.list_incidents(conn, args.status))
                elif args.command == "incident":
                    found = manage.get_incident(conn, args.id) if 0 < args.id <= ROW_MAX else None
                    if found is None:
                        raise ConfigError(f"no incident {args.id}")
                    _print(found)
                elif args.command == "window":
                    _print(manage.list_windows(conn))
                else:
                    _print(manage.list_waivers(conn))
            return 0
        with write_tx(centre.engine) as conn:
            created = _change(conn, now, actor, args, manage)
        if created:
            print(created)
        return 0
    except manage.ManageError as err:
        raise ConfigError(str(err)) from err
    finally:
        centre.stop()


def _change(conn: Any, now: datetime, actor: str, args: argparse.Namespace, manage: Any) -> Optional[str]:
    source = "cli"
    if args.command == "incident":
        manage.ack(conn, now, actor, args.id, args.note, source)
        return None
    if args.action in ("cancel", "revoke"):
        (manage.cancel_window if args.command == "window" else manage.revoke_waiver)(conn, now, actor, args.id, source)
        return None
    scope = manage.Scope(args.agent, args.group, args.tenant)
    if args.command == "window":
        start = args.start or now
        end = args.end or start + args.length
        return str(manage.create_window(conn, now, actor, scope, start, end, args.reason, args.allows, source))
    expires = args.expires or now + args.length
    return str(
        manage.create_waiver(conn, now, actor, scope, args.rule, args.justification, args.approver, expires, source)
    )
