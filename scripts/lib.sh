# Shared by scripts/*.sh: paths, logging, idempotent installs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
OLDEST_VENV="$ROOT/.venv-oldest"
say() { printf '==> %s\n' "$*" >&2; }
# Run a command whose stderr is chatter when it works, and shown when it fails.
quiet() {
    local err status=0
    err="$(mktemp)"
    "$@" 2>"$err" || status=$?
    ((status == 0)) || cat "$err" >&2
    rm -f "$err"
    return "$status"
}

# Debian packages from a list file, installing only what is missing.
install_debs() {
    local list="$1" missing=() pkg
    while read -r pkg; do
        [[ -z "$pkg" || "$pkg" == \#* ]] && continue
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done <"$list"
    ((${#missing[@]} == 0)) && return 0
    say "installing Debian packages: ${missing[*]}"
    local sudo=()
    [[ $(id -u) -ne 0 ]] && sudo=(sudo)
    # Services are not started from package scripts here: the tests start their own.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The virtual environment: the exact versions the lock file pins (checked against their hashes),
# then the project itself (editable, without dependencies), rebuilt only when pyproject.toml or the
# lock changed since last time (pip then moves each package to the version the lock pins).
LOCK="$ROOT/packaging/lock/dev.txt"
ensure_venv() {
    local stamp="$VENV/.tillsyn-stamp" want log
    want="$(cat "$ROOT/pyproject.toml" "$ROOT/setup.py" "$LOCK" "$ROOT/packaging/lock/systemd.txt" | sha256sum | cut -c1-16)"
    if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    say "setting up $VENV from ${LOCK#"$ROOT"/}"
    if [[ -x "$VENV/bin/python" ]] && ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        # what a `python3 -m venv` without ensurepip left behind: start again
        say "$VENV has no pip; making it again"
        rm -rf "$VENV"
    fi
    [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
    log="$(mktemp)"
    if ! { "$VENV/bin/python" -m pip install --disable-pip-version-check --require-hashes -r "$LOCK" &&
           "$VENV/bin/python" -m pip install --disable-pip-version-check --no-deps -e "$ROOT"; } >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
    echo "$want" >"$stamp"
}
