#!/usr/bin/env bash
# The agent's tests in their own environment, against the oldest library versions that
# Debian 12 ships, on Python 3.9 where one is installed (else the default python3):
# catches API differences such as psutil's Process.connections vs net_connections.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
py=""
for candidate in python3.9 "$(command -v pyenv >/dev/null && echo "$(pyenv root)/versions/$(pyenv versions --bare | grep -m1 '^3\.9\.')/bin/python3.9")"; do
    if [[ -n "$candidate" ]] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 9)' 2>/dev/null; then
        py="$candidate"; break
    fi
done
if [[ -z "$py" ]]; then
    say "no Python 3.9 here: using $(python3 --version) (vermin still checks the 3.9 syntax and APIs)"
    py=python3
fi
reqs="$ROOT/packaging/oldest-deps.txt"
stamp="$OLDEST_VENV/.tillsyn-stamp"
want="$(cat "$reqs" "$ROOT/pyproject.toml" "$ROOT/setup.py" | sha256sum | cut -c1-16)-$("$py" --version)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    say "setting up $OLDEST_VENV with $("$py" --version)"
    rm -rf "$OLDEST_VENV"
    "$py" -m venv "$OLDEST_VENV"
    log="$(mktemp)"
    if ! { "$OLDEST_VENV/bin/python" -m pip install --disable-pip-version-check -r "$reqs" &&
           "$OLDEST_VENV/bin/python" -m pip install --disable-pip-version-check --no-deps -e "$ROOT"; } >"$log" 2>&1; then
        cat "$log" >&2
        exit 1
    fi
    rm -f "$log"
    echo "$want" >"$stamp"
fi
"$OLDEST_VENV/bin/python" -c 'import sys, psutil, watchdog.version as w, cryptography, requests, yaml; print("python", sys.version.split()[0], "psutil", psutil.__version__, "watchdog", w.VERSION_STRING, "cryptography", cryptography.__version__, "requests", requests.__version__, "PyYAML", yaml.__version__)'
TILLSYN_TEST_CENTRAL_PYTHON="$VENV/bin/python" "$OLDEST_VENV/bin/python" -m pytest -q -p no:cacheprovider tests/agent tests/collectors tests/evidence
