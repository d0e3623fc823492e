"""``tillsyn-central``: run the centre and administer it.

Exit codes: 0 done, 1 a check found a problem (verify, policy check), 2 a usage or
configuration error (nothing was changed), 75 the database could not be reached (try again:
systemd restarts the centre then, but not after a 2).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from datetime import datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from central.cli import alerting, export, node, users
from central.config import CentralConfig, ConfigError, load

EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_TEMPFAIL = 75  # sysexits.h EX_TEMPFAIL: the database is down or unreachable, not misconfigured


def _labels(values: Optional[List[str]]) -> Dict[str, str]:
    out = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--label {item!r}: use KEY=VALUE")
        out[key] = value
    return out


def _duration(text: str) -> timedelta:
    from evidence.rules import parse_duration

    try:
        return timedelta(seconds=parse_duration(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def _version() -> str:
    """The installed distribution's version (the centre always runs installed: a package, a venv)."""
    try:
        return metadata.version("tillsyn")
    except metadata.PackageNotFoundError:
        return "not installed as a distribution"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tillsyn-central", description="Tillsyn centre")
    p.add_argument("--version", action="version", version=f"tillsyn-central {_version()}")
    p.add_argument("--config", help="central.yaml (default: $TILLSYN_CENTRAL_CONFIG or /etc/tillsyn/central.yaml)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the centre (HTTP API, background duties)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--no-duties", action="store_true", help="do not run background duties in this process")

    token = sub.add_parser("token", help="enrolment tokens").add_subparsers(dest="action", required=True)
    create = token.add_parser("create", help="create a token (shown once)")
    create.add_argument("--ttl", type=_duration, default=timedelta(hours=24), help="valid for (default 24h)")
    create.add_argument("--uses", type=int, help="how many nodes may enrol with it (default: unlimited)")
    create.add_argument("--tenant")
    create.add_argument("--group")
    create.add_argument("--label", action="append", metavar="KEY=VALUE")
    create.add_argument("--note")
    token.add_parser("list", help="list tokens (never their secrets)")
    revoke = token.add_parser("revoke", help="revoke a token")
    revoke.add_argument("id")

    agent = sub.add_parser("agent", help="enrolled nodes").add_subparsers(dest="action", required=True)
    agent.add_parser("list", help="list nodes with their state")
    agent_revoke = agent.add_parser("revoke", help="revoke a node (its reports are refused from now on)")
    agent_revoke.add_argument("id")
    agent.add_parser("conflicts", help="enrolments that look like cloned machines")

    key = sub.add_parser("apikey", help="API keys for the read API").add_subparsers(dest="action", required=True)
    key_create = key.add_parser("create", help="create a key (shown once)")
    key_create.add_argument("name")
    key_create.add_argument(
        "--user",
        help="the person the key acts as (their role and tenants); "
        "without: an administrator's key that sees every tenant",
    )
    key.add_parser("list")
    key_revoke = key.add_parser("revoke")
    key_revoke.add_argument("id")

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", help="migrate to the newest schema")
    db.add_parser("current", help="show the schema revision")
    down = db.add_parser("downgrade", help="take the schema back to an earlier revision (every replica stopped)")
    down.add_argument("revision", help="the revision to go back to, e.g. 0014")

    verify = sub.add_parser("verify", help="check every node's evidence hash chain and signatures")
    verify.add_argument("--agent", help="only this node")

    alerting.add_parsers(sub)
    export.add_parsers(sub)
    users.add_parsers(sub)
    node.add_parsers(sub)

    pol = sub.add_parser("policy", help="policy files").add_subparsers(dest="action", required=True)
    check = pol.add_parser("check", help="check a policy file without loading it")
    check.add_argument("file", nargs="?")
    return p


def _print(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _serve(config: CentralConfig, args: argparse.Namespace) -> int:
    import uvicorn

    from central.api.app import create_app
    from central.api.connections import ConnectionLimits
    from central.api.server import http_protocol, server_stack
    from central.runtime import one_server
    from central.runtime.service import open_centre

    held = one_server.claim(config.db_url)  # SQLite: this process's while it serves
    centre = open_centre(config)
    listen = config.listen
    ssl: Dict[str, Any] = {}
    if listen.tls_cert and listen.tls_key:
        ssl = {"ssl_certfile": str(listen.tls_cert), "ssl_keyfile": str(listen.tls_key)}
    app = create_app(centre, duties=not args.no_duties)
    # What start-up built lives as long as the process: keep it out of the collector's full passes,
    # which otherwise walk it every few seconds and hold every request up for tens of milliseconds.
    gc.collect()
    gc.freeze()
    stack = server_stack()
    limits = ConnectionLimits(listen.head_timeout_s, listen.body_timeout_s, listen.max_connections)
    print(
        f"tillsyn-central: serving with the {stack.loop} event loop and the {stack.http} HTTP parser",
        file=sys.stderr,
    )
    uvicorn.run(
        app,
        host=args.host or listen.host,
        port=listen.port if args.port is None else args.port,
        log_level="info",
        access_log=False,
        loop=stack.loop,
        http=http_protocol(stack, limits),
        limit_concurrency=listen.max_connections,  # requests at once, each answered 503 beyond
        **ssl,
    )
    if held is not None:
        held.close()
    return 0


def _database(config: CentralConfig) -> str:
    """The database URL for messages, password hidden; refuses a SQLite file that is not there
    (looking into it would create an empty one)."""
    from sqlalchemy.engine import make_url

    from central.db.engine import normalise_url

    url = make_url(normalise_url(config.db_url))
    shown = url.render_as_string(hide_password=True)
    local = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    if local and not Path(str(url.database)).exists():
        raise ConfigError(
            f"no database at {url.database}: check database_url / TILLSYN_DATABASE_URL "
            "(a new one is made by: tillsyn-central db upgrade)"
        )
    return shown


def _cli_actor() -> str:
    """How the audit trail names a change made on the centre's machine (as ``user`` does)."""
    import getpass

    return f"cli:{getpass.getuser()}"


def _admin(config: CentralConfig, args: argparse.Namespace) -> int:
    from central.clock import utcnow
    from central.db.engine import read_tx, write_tx
    from central.judging import read_queries
    from central.runtime.service import open_centre

    if args.command == "db":
        return _db(config, args)
    centre = open_centre(config)
    now = utcnow()
    with write_tx(centre.engine) as conn:
        if args.command == "token":
            _token(conn, args, now)
        elif args.command == "agent" and args.action == "revoke":
            from central import enrolment

            if not enrolment.revoke_agent(conn, args.id, now):
                raise ConfigError(f"no active node {args.id!r}")
        elif args.command == "apikey":
            _apikey(conn, args, now)
    if args.command == "agent" and args.action in ("list", "conflicts"):
        from central import enrolment

        with read_tx(centre.engine) as conn:
            _print(read_queries.list_nodes(conn) if args.action == "list" else enrolment.conflicts(conn))
    return 0


def _db(config: CentralConfig, args: argparse.Namespace) -> int:
    """``db upgrade|current|downgrade REVISION``."""
    from central.db import migrate
    from central.runtime.service import open_centre

    if args.action == "upgrade":
        centre = open_centre(config, upgrade=False)
        print(f"schema at revision {migrate.upgrade(centre.engine)}")
        return 0
    if args.action == "downgrade":
        return _downgrade(config, args.revision)
    shown = _database(config)
    centre = open_centre(config, upgrade=False)
    revision = migrate.current(centre.engine)
    if revision is None:
        print(f"{shown}: no schema yet (newest {migrate.head()}); run: tillsyn-central db upgrade")
    else:
        print(f"schema at revision {revision} (newest {migrate.head()})")
    return 0


def _downgrade(config: CentralConfig, revision: str) -> int:
    """``db downgrade REVISION``: only as far back as :data:`migrate.DOWNGRADE_FLOOR`."""
    from alembic.util import CommandError

    from central.db import migrate
    from central.runtime.service import open_centre

    known = migrate.revisions()
    allowed = known[known.index(migrate.DOWNGRADE_FLOOR) :]
    if revision not in allowed:
        said = (
            f"will not go back to revision {revision}: going back past {migrate.DOWNGRADE_FLOOR} would delete "
            "evidence the later revisions keep (the report pieces of 0011, the erasures of 0010, the sentences "
            "of 0014); restore the database backup taken before the upgrade instead, knowing that what the "
            "centre received since that backup is then lost"
            if revision in known
            else f"no schema revision {revision} to go back to"
        )
        print(f"tillsyn-central: {said}; it can go back to {', '.join(allowed)}", file=sys.stderr)
        return EXIT_USAGE
    centre = open_centre(config, upgrade=False)
    try:
        print(f"schema at revision {migrate.downgrade(centre.engine, revision)}")
    except (CommandError, migrate.CannotGoBack) as err:
        print(f"tillsyn-central: cannot go back to revision {revision}: {err}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def _token(conn: Any, args: argparse.Namespace, now: datetime) -> None:
    """``token create|list|revoke``."""
    from central import enrolment

    if args.action == "create":
        try:
            token = enrolment.create_token(
                conn,
                now,
                ttl=args.ttl,
                max_uses=args.uses,
                tenant=args.tenant,
                group=args.group,
                labels=_labels(args.label),
                note=args.note,
            )
        except ValueError as err:
            raise ConfigError(str(err)) from err
        print(token.secret)
        print(
            f"token {token.id} valid until {token.expires_at:%Y-%m-%d %H:%M} UTC; shown once, keep it safe",
            file=sys.stderr,
        )
    elif args.action == "list":
        _print(enrolment.list_tokens(conn))
    elif not enrolment.revoke_token(conn, args.id, now):
        raise ConfigError(f"no active token {args.id!r}")


def _apikey(conn: Any, args: argparse.Namespace, now: datetime) -> None:
    """``apikey create|list|revoke``."""
    from central.auth import apikeys

    if args.action == "create":
        try:
            user_id = None
            if args.user:
                from central.auth.users import user_id_of

                user_id = user_id_of(conn, args.user)
            key_id, secret = apikeys.create(conn, args.name, now, user_id, actor=_cli_actor(), source="cli")
        except ValueError as err:
            raise ConfigError(str(err)) from err
        print(secret)
        print(f"API key {key_id} for {args.name}; shown once, keep it safe", file=sys.stderr)
    elif args.action == "list":
        _print(apikeys.list_keys(conn))
    elif not apikeys.revoke(conn, args.id, now, actor=_cli_actor(), source="cli"):
        raise ConfigError(f"no active API key {args.id!r}")


def _verify(config: CentralConfig, args: argparse.Namespace) -> int:
    from central.db import migrate
    from central.db.engine import make_engine
    from central.ingest.ledger_check import verify_ledger

    # Only the database: a broken policy file must not stop an audit of the evidence.
    shown = _database(config)
    engine = make_engine(config.db_url)
    try:
        if migrate.current(engine) is None:
            raise ConfigError(f"{shown}: no Tillsyn schema here; check database_url / TILLSYN_DATABASE_URL")
        done = verify_ledger(engine, args.agent, config.retention)
    finally:
        engine.dispose()
    checked, problems = done.checked, done.problems
    if args.agent and not checked:
        raise ConfigError(f"no node {args.agent!r} (see: tillsyn-central agent list)")
    for judged in done.relied_on:
        print(judged.describe())
    for note in done.erased:
        print(note)
    for problem in problems:
        where = f" entry {problem.chain_index} (report {problem.report_id})" if problem.chain_index else ""
        print(f"BROKEN {problem.agent_id}{where}: {problem.problem}")
    print(f"verified {checked} node chain(s): {'all intact' if not problems else f'{len(problems)} problem(s)'}")
    return EXIT_PROBLEM if problems else 0


def _policy_check(config: CentralConfig, args: argparse.Namespace) -> int:
    from central.judging.policy_store import policy_path, read_policy
    from evidence.policy import PolicyError

    path = Path(args.file) if args.file else policy_path(config.policy)
    try:
        policy = read_policy(path)
    except PolicyError as err:
        print(f"tillsyn-central: {err}", file=sys.stderr)
        return EXIT_PROBLEM
    print(f"{path}: {len(policy.rules)} rules, {len(policy.overrides)} overrides: valid")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load(args.config, os.environ)
        if args.command == "serve":
            return _serve(config, args)
        if args.command == "verify":
            return _verify(config, args)
        if args.command == "policy":
            return _policy_check(config, args)
        if args.command in alerting.COMMANDS:
            return alerting.run(config, args)
        if args.command in export.COMMANDS:
            return export.run(config, args)
        if args.command in users.COMMANDS:
            return users.run(config, args)
        if args.command in node.COMMANDS:
            return node.run(config, args)
        return _admin(config, args)
    except ConfigError as err:
        print(f"tillsyn-central: {err}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as err:
        from sqlalchemy.exc import ArgumentError, OperationalError

        from central.db.engine import DatabaseURLError
        from central.db.migrate import SchemaNewer
        from evidence.policy import PolicyError

        if isinstance(err, PolicyError):
            print(f"tillsyn-central: policy: {err}", file=sys.stderr)
            return EXIT_USAGE
        if isinstance(err, SchemaNewer):
            print(f"tillsyn-central: {err}", file=sys.stderr)
            return EXIT_USAGE
        if isinstance(err, (DatabaseURLError, ArgumentError)):
            print(f"tillsyn-central: database_url: {err}", file=sys.stderr)
            return EXIT_USAGE
        if isinstance(err, OperationalError):
            print(f"tillsyn-central: cannot use the database: {str(err.orig or err).strip()}", file=sys.stderr)
            return EXIT_TEMPFAIL
        raise


if __name__ == "__main__":
    sys.exit(main())
