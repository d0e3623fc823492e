#!/usr/bin/env bash
# Make the lock files again (after changing a dependency in pyproject.toml): exact versions with
# their hashes, from pip-tools' pip-compile, for Python 3.11 (Debian 12's python3, which the
# centre's package is built for).
#   packaging/lock/central.txt  the centre's environment (the centre's package and its tests)
#   packaging/lock/dev.txt      the centre plus the development and test tools (scripts/setup.sh)
#   packaging/lock/systemd.txt  systemd-python for the journald tests (setup.sh --test)
# The later files are constrained by the earlier ones, so a package has one version in all three.
# Add --upgrade to take the newest versions allowed.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
PIP_TOOLS="pip-tools==7.7.0"
tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools"
quiet "$tools/bin/python" -m pip install -q --disable-pip-version-check "$PIP_TOOLS"
compile() {
    local out="$1"
    shift
    say "locking $out"
    quiet "$tools/bin/pip-compile" -q --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
        --no-emit-find-links "$@" -o "$out" pyproject.toml
}
compile packaging/lock/central.txt --extra central "${@}"
compile packaging/lock/dev.txt --extra central --extra dev -c packaging/lock/central.txt "${@}"
compile packaging/lock/systemd.txt --extra systemd -c packaging/lock/dev.txt "${@}"
