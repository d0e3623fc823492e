#!/usr/bin/env bash
# Set up (if needed) and run every check: lint, types, Python 3.9 compatibility,
# the test suite with real components, and the agent's tests against the oldest
# library versions Debian 12 ships. Extra arguments go to the main pytest run.
source "$(dirname "$0")/lib.sh"
"$ROOT/scripts/setup.sh" --test
cd "$ROOT"
AGENT_CODE=(agent collectors evidence)

say "ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
say "mypy (strict on agent, collectors, evidence, central)"
"$VENV/bin/mypy" "${AGENT_CODE[@]}" central
say "vermin: agent code must run on Python 3.9"
"$VENV/bin/vermin" -q --no-tips --violations --target=3.9- "${AGENT_CODE[@]}"

say "pytest"
"$VENV/bin/python" -m pytest "$@"

say "agent tests on the oldest Debian 12 libraries"
"$ROOT/scripts/test-oldest.sh"
