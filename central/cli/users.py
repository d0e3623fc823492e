"""``tillsyn-central user``: personal accounts (the first administrator is created here)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any, Optional

from central.config import CentralConfig, ConfigError

COMMANDS = ("user",)


def add_parsers(sub: Any) -> None:
    user = sub.add_parser("user", help="personal accounts: create, list, change").add_subparsers(
        dest="action", required=True
    )
    create = user.add_parser("create", help="create an account (one person, never shared)")
    create.add_argument("username")
    create.add_argument("--role", choices=("viewer", "operator", "admin"), required=True)
    create.add_argument(
        "--tenant",
        action="append",
        default=[],
        metavar="TENANT",
        help="a tenant the person may see (repeatable); '*' for every tenant",
    )
    create.add_argument("--name", help="display name")
    _password_options(create)
    user.add_parser("list", help="accounts (never their password hashes)")
    change = user.add_parser("set", help="change role, tenants, password, or disable/enable")
    change.add_argument("username")
    change.add_argument("--role", choices=("viewer", "operator", "admin"))
    change.add_argument("--tenant", action="append", metavar="TENANT", help="replaces the granted tenants")
    change.add_argument("--disable", action="store_true")
    change.add_argument("--enable", action="store_true")
    change.add_argument("--new-password", action="store_true", help="set a new password (asked, or from a file)")
    _password_options(change)


def _password_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--password-file", type=Path, help="read the password from this file (first line)")
    parser.add_argument("--password-stdin", action="store_true", help="read the password from standard input")


def _password(args: argparse.Namespace) -> str:
    if args.password_file:
        try:
            return str(args.password_file.read_text(encoding="utf-8").splitlines()[0])
        except (OSError, IndexError) as err:
            raise ConfigError(f"--password-file {args.password_file}: cannot read a password from it") from err
    if args.password_stdin:
        return str(sys.stdin.readline()).rstrip("\n")
    if not sys.stdin.isatty():
        raise ConfigError("no terminal to ask for a password: use --password-file or --password-stdin")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        raise ConfigError("the two passwords differ")
    return first


def run(config: CentralConfig, args: argparse.Namespace) -> int:
    from central.auth import users
    from central.clock import utcnow
    from central.db.engine import read_tx, write_tx
    from central.runtime.service import open_centre

    centre = open_centre(config)
    actor = f"cli:{getpass.getuser()}"
    try:
        if args.action == "list":
            with read_tx(centre.engine) as conn:
                json.dump(users.list_users(conn), sys.stdout, indent=2, default=str)
                sys.stdout.write("\n")
            return 0
        password: Optional[str] = None
        if args.action == "create" or getattr(args, "new_password", False):
            password = _password(args)
        with write_tx(centre.engine) as conn:
            if args.action == "create":
                users.create(
                    conn, utcnow(), actor, args.username, password or "", args.role, args.tenant, args.name, "cli"
                )
                print(f"created {args.username} ({args.role})")
            else:
                disabled = True if args.disable else (False if args.enable else None)
                users.change(
                    conn,
                    utcnow(),
                    actor,
                    args.username,
                    role=args.role,
                    tenants=args.tenant,
                    password=password,
                    disabled=disabled,
                    source="cli",
                )
        return 0
    except users.UserError as err:
        raise ConfigError(str(err)) from err
    finally:
        centre.stop()
