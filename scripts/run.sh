#!/usr/bin/env bash
# Set up (if needed) and run Tillsyn on this machine.
# For now: collect evidence of this machine and print it. Extra arguments go to `collect`
# (e.g. --json, --only power).
source "$(dirname "$0")/lib.sh"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
config="${TILLSYN_AGENT_CONFIG:-$ROOT/config/agent.yaml}"
say "tillsyn-agent collect (config: ${config#"$ROOT"/})"
exec "$VENV/bin/tillsyn-agent" --config "$config" collect "$@"
