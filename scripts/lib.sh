# Shared by scripts/*.sh: paths, logging, idempotent installs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
OLDEST_VENV="$ROOT/.venv-oldest"
say() { printf '==> %s\n' "$*" >&2; }

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

# A virtual environment with the project installed (editable) and the given extras,
# rebuilt only when pyproject.toml changed since the last time.
ensure_venv() {
    local extras="$1" stamp="$VENV/.tillsyn-stamp" want
    want="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)-$extras"
    if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    say "setting up $VENV ($extras)"
    [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[$extras]"
    echo "$want" >"$stamp"
}
