#!/usr/bin/env bash
# Set up (if needed) and run Tillsyn on this machine: the centre on embedded SQLite on
# loopback, and the agent daemon enrolled with it, reporting this machine continuously.
# Everything lives under ./run/ (delete it to start afresh). Ctrl-C stops both.
#
#   TILLSYN_PORT=8443   port of the centre (127.0.0.1 only)
source "$(dirname "$0")/lib.sh"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
PORT="${TILLSYN_PORT:-8443}"
URL="http://127.0.0.1:$PORT"
RUN="$ROOT/run"
mkdir -p "$RUN"
chmod 700 "$RUN"
export TILLSYN_CENTRAL_CONFIG="$RUN/central.yaml"
cat >"$TILLSYN_CENTRAL_CONFIG" <<YAML
state_dir: $RUN/central
listen: {host: 127.0.0.1, port: $PORT}
# plain http on loopback only: browsers send Secure cookies over https alone
sessions: {secure_cookie: false}
YAML
AGENT=(.venv/bin/tillsyn-agent --config config/agent.yaml --state-dir run/agent)
CENTRAL=.venv/bin/tillsyn-central

if "$VENV/bin/python" -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $PORT)) != 0)"; then
    say "port $PORT is taken (another Tillsyn centre?); stop it or set TILLSYN_PORT"
    exit 1
fi
say "starting the centre on $URL (state and log in run/)"
"$CENTRAL" serve >"$RUN/central.log" 2>&1 &
centre=$!
agent=""
stop() {
    [[ -n "$agent" ]] && kill "$agent" 2>/dev/null && wait "$agent" 2>/dev/null
    kill "$centre" 2>/dev/null
    wait "$centre" 2>/dev/null
}
trap stop EXIT INT TERM
for _ in $(seq 100); do
    curl -fs "$URL/livez" >/dev/null 2>&1 && break
    kill -0 "$centre" 2>/dev/null || { cat "$RUN/central.log" >&2; exit 1; }
    sleep 0.1
done

if [[ ! -f "$RUN/agent/enrolment.json" ]]; then
    say "enrolling this machine"
    token="$(quiet "$CENTRAL" token create --ttl 10m --uses 1 --note "scripts/run.sh")"
    "${AGENT[@]}" enroll --server "$URL" --token "$token"
fi
if [[ ! -s "$RUN/admin-password" ]]; then
    (umask 077 && "$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(18))' >"$RUN/admin-password")
    "$CENTRAL" user create admin --role admin --tenant '*' --password-file "$RUN/admin-password" >/dev/null
fi
if [[ ! -s "$RUN/api-key" ]]; then
    (umask 077 && quiet "$CENTRAL" apikey create "scripts/run.sh" >"$RUN/api-key")
fi
say "starting the agent daemon (log in run/agent.log)"
"${AGENT[@]}" run >"$RUN/agent.log" 2>&1 &
agent=$!
for _ in $(seq 300); do
    grep -q '"last_delivery_at"' "$RUN/agent/status.json" 2>/dev/null && break
    kill -0 "$agent" 2>/dev/null || { cat "$RUN/agent.log" >&2; exit 1; }
    sleep 0.1
done
"${AGENT[@]}" status

cat <<TEXT

Tillsyn is running.
  Dashboard:   $URL/   (user admin, password in run/admin-password)
  Centre:      $URL   (API documentation: $URL/docs, metrics: $URL/metrics)
  This node:   curl -s -H "Authorization: Bearer \$(cat run/api-key)" $URL/api/v1/nodes
  Findings:    curl -s -H "Authorization: Bearer \$(cat run/api-key)" "$URL/api/v1/findings?status=failing"
  Agent:       ${AGENT[*]} status   (log: run/agent.log)
  Check:       ${AGENT[*]} check    (this machine against the policy)
  Export:      TILLSYN_CENTRAL_CONFIG=run/central.yaml $CENTRAL export report --tenant default --format html -o run/audit.html
               (this node is in the tenant "default": default_tenant in central.yaml)
  Centre log:  run/central.log
Press Ctrl-C to stop the agent and the centre.
TEXT
wait "$centre" "$agent"
