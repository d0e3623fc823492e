"""``tillsyn-agent``: the command sysadmins run on a node.

Exit codes: 0 done, 2 a usage or configuration error (nothing was changed),
3 the centre could not be reached or refused (a report stays in the spool).
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
from agent.collect_table import render
from agent.config import ConfigError, load, resolve_path
from agent.state import state_dir

EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


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
    parser.add_argument("--state-dir", help="state directory (default: $TILLSYN_STATE_DIR or /var/lib/tillsyn)")
    enroll = sub.add_parser("enroll", help="create this node's key and register it with the centre")
    enroll.add_argument("--server", required=True, help="the centre, e.g. https://tillsyn.example.net:8443")
    enroll.add_argument("--token", required=True, help="an enrolment token from: tillsyn-central token create")
    enroll.add_argument("--ca", help="CA certificate file that signed the centre's certificate (pinned)")
    run = sub.add_parser("run", help="collect, spool and deliver reports")
    run.add_argument("--once", action="store_true", help="one collection, deliver, and exit (no daemon)")
    run.add_argument("--root", default=os.environ.get("TILLSYN_ROOT", "/"), help=argparse.SUPPRESS)
    status = sub.add_parser(
        "status", help="identity, server, last delivery, spool depth, last run of each collector, the centre's health"
    )
    status.add_argument("--offline", action="store_true", help="do not ask the centre for its health")
    check = sub.add_parser(
        "check", help="evaluate fresh evidence of this machine against the policy (exit 1 unless all pass)"
    )
    check.add_argument("--policy", help="policy file (default: /etc/tillsyn/policy.yaml, else the shipped policy)")
    check.add_argument("--json", action="store_true", help="print every verdict as JSON")
    check.add_argument("--root", default=os.environ.get("TILLSYN_ROOT", "/"), help=argparse.SUPPRESS)
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
    records = run_collectors(config, only=only, root=Path(args.root), state_dir=state_dir(args.state_dir, os.environ))
    if args.json:
        json.dump([r.to_dict() for r in records], sys.stdout, indent=2, sort_keys=False)
        sys.stdout.write("\n")
    else:
        width = shutil.get_terminal_size((100, 24)).columns
        sys.stdout.write(render(records, REGISTRY, width=width))
        if os.geteuid() != 0:
            sys.stdout.write("\nRunning without root: some evidence cannot be seen (listed above).\n")
    return 0


def _enroll(args: argparse.Namespace) -> int:
    from agent.enrolling import enroll

    enrolment = enroll(state_dir(args.state_dir, os.environ), args.server, args.token, args.ca)
    print(f"enrolled as {enrolment.agent_id} with {enrolment.server}")
    # the packaged unit starts only once this file exists (ConditionPathExists=)
    print("start the agent now and at every boot with: systemctl enable --now tillsyn-agent")
    return 0


def _run_once(args: argparse.Namespace) -> int:
    import time
    from datetime import datetime, timezone

    from agent import status
    from agent.identity import load_enrolment, load_key, privacy_setting, pseudonym_key
    from agent.pseudonymise import Pseudonymiser, pseudonymised
    from agent.spool import Spool
    from agent.uplink.deliver_reports import deliver
    from agent.uplink.signed_http import Client

    state = state_dir(args.state_dir, os.environ)
    enrolment = load_enrolment(state)
    key = load_key(state)
    path, required = resolve_path(args.config, os.environ)
    config = load(path, required=required)
    collected_at = datetime.now(timezone.utc)
    records = run_collectors(config, root=Path(args.root), state_dir=state, keep_state=True)
    if config.pseudonymise:
        pseudonymiser = Pseudonymiser(pseudonym_key(state))
        records = [pseudonymised(r, pseudonymiser) for r in records]
    spool = Spool(state / "spool")
    privacy = privacy_setting(state, config.pseudonymise)
    spooled = spool.add(key, enrolment.agent_id, __version__, collected_at, records, privacy)
    spool.enforce_bounds(config.spool_max_bytes, config.spool_max_age, time.time())
    client = Client(enrolment.server, key, enrolment.agent_id, enrolment.ca_file)
    info = status.load(state)
    info.setdefault("collectors", {}).update(
        {
            r.collector: {
                "last_run": collected_at.isoformat().replace("+00:00", "Z"),
                "status": r.status.value,
                "duration_ms": round(r.duration_ms, 1),
                "error": r.error,
            }
            for r in records
        }
    )
    try:
        result = deliver(spool, client)
        info["last_delivery_at"] = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    finally:
        client.close()
        status.save(state, info)
    print(f"report {spooled.seq} spooled; delivered {result.sent}, {result.pending} waiting in the spool")
    if result.damaged:
        print(f"{result.damaged} damaged spool file(s) moved to spool/rejected")
    if result.rejected:
        print(f"{result.rejected} report(s) refused by the centre for good, kept in spool/rejected")
        return EXIT_UNREACHABLE
    return 0


def _status(args: argparse.Namespace) -> int:
    from agent import status
    from agent.identity import load_enrolment
    from agent.spool import Spool

    state = state_dir(args.state_dir, os.environ)
    enrolment = load_enrolment(state)
    spool = Spool(state / "spool")
    info = status.load(state)
    print(f"agent id:       {enrolment.agent_id}\nserver:         {enrolment.server}\nstate:          {state}")
    dropped = spool.dropped()
    aside = f"; refused ones deleted: {dropped['rejected']}" if dropped.get("rejected") else ""
    print(f"spool depth:    {spool.depth()} (dropped at the bound: {dropped.get('count', 0)}{aside})")
    print(f"last delivery:  {info.get('last_delivery_at', 'never')}")
    if info.get("last_delivery_error"):
        print(f"delivery error: {info['last_delivery_error']}")
    print(f"last heartbeat: {info.get('last_heartbeat_at', 'never')}")
    if not args.offline:
        from agent.centre_health import ask

        print(f"centre health:  {ask(enrolment.server, enrolment.ca_file)}")
    for name, run in sorted(info.get("collectors", {}).items()):
        error = f" ({run['error']})" if run.get("error") else ""
        print(f"  {name:<16} {run['status']:<12} {run['last_run']} {run['duration_ms']} ms{error}")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.once:
        return _run_once(args)
    import signal

    # Until the daemon installs its own handlers, a stop request still ends the agent cleanly.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(0))
    from agent import logsetup
    from agent.daemon import Daemon
    from agent.identity import load_enrolment

    state = state_dir(args.state_dir, os.environ)
    logsetup.setup(load_enrolment(state).agent_id)
    path, required = resolve_path(args.config, os.environ)
    return Daemon(state, path, required, root=Path(args.root)).run()


def _check(args: argparse.Namespace) -> int:
    from agent.check import run_check

    path, required = resolve_path(args.config, os.environ)
    config = load(path, required=required)
    return run_check(
        config, args.policy, Path(args.root), as_json=args.json, state_dir=state_dir(args.state_dir, os.environ)
    )


COMMANDS = {"collect": _collect, "enroll": _enroll, "status": _status, "run": _run, "check": _check}


def main(argv: Optional[Sequence[str]] = None) -> int:
    from agent.errors import IdentityError, TransportError

    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, IdentityError) as err:
        print(f"tillsyn-agent: {err}", file=sys.stderr)
        return EXIT_USAGE
    except TransportError as err:
        print(f"tillsyn-agent: {err}", file=sys.stderr)
        return EXIT_UNREACHABLE


if __name__ == "__main__":
    sys.exit(main())
