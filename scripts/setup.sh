#!/usr/bin/env bash
# Set up a development machine: the Python environment, and with --test the Debian
# packages the tests use. Idempotent: a second run does nothing and takes about a second.
source "$(dirname "$0")/lib.sh"
mode="${1:-run}"
# venv itself is in Python's standard library; what Debian splits off into python3-venv is
# ensurepip, without which `python3 -m venv` leaves an environment with no pip
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    install_debs <(echo python3-venv)
fi
if [[ "$mode" == "--test" ]]; then
    install_debs "$ROOT/packaging/test-deps.txt"
fi
ensure_venv
if [[ "$mode" == "--test" ]] && ! "$VENV/bin/python" -c 'import systemd.journal' 2>/dev/null; then
    # python-systemd (optional at run time) is built against libsystemd-dev from test-deps.txt;
    # the journald tests use it.  The version the lock pins.
    say "installing systemd-python into $VENV"
    quiet "$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes \
        -r "$ROOT/packaging/lock/systemd.txt"
fi
