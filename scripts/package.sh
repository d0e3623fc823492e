#!/usr/bin/env bash
# Build the packages into dist/: scripts/package.sh [deb|rpm|all] (default: all).
#   deb  tillsyn-agent_<v>_all.deb and tillsyn-central_<v>_<arch>.deb (dpkg-buildpackage)
#   rpm  tillsyn-agent-<v>-1.noarch.rpm and tillsyn-central-<v>-1.<arch>.rpm (rpmbuild)
# TILLSYN_VERSION=0.1.0+1 builds a higher version of the same source (the upgrade test uses it);
# TILLSYN_DEB_ONLY=agent builds only the architecture-independent tillsyn-agent (quicker);
# TILLSYN_DIST=DIR writes there instead of dist/.
# The Debian tools are in packaging/test-deps.txt (scripts/setup.sh --test installs them).
# packaging/README.md says what each package holds.
source "$(dirname "$0")/lib.sh"
what="${1:-all}"
case "$what" in deb | rpm | all) ;; *) say "usage: scripts/package.sh [deb|rpm|all]"; exit 2 ;; esac
cd "$ROOT"
base="$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml)"
version="${TILLSYN_VERSION:-$base}"
DIST="${TILLSYN_DIST:-$ROOT/dist}"
mkdir -p "$DIST"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The source as committed plus what is changed in the work tree (untracked files too), never
# .venv, run/ or dist/.
tree="$work/tillsyn-$version"
mkdir -p "$tree"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [[ -e "$f" ]] && printf '%s\0' "$f"
done | xargs -0 cp --parents -t "$tree"

build_deb() {
    say "building the .deb packages $version"
    cp -r packaging/debian "$tree/debian"
    local pkg
    for pkg in tillsyn-agent tillsyn-central; do
        cp "packaging/systemd/$pkg.service" "$tree/debian/$pkg.service"
        cp "packaging/tmpfiles.d/$pkg.conf" "$tree/debian/$pkg.tmpfiles"
    done
    if [[ "$version" != "$base" ]]; then
        { printf 'tillsyn (%s) unstable; urgency=medium\n\n  * Rebuilt as %s.\n\n' "$version" "$version"
          printf ' -- Tillsyn maintainers <tillsyn@users.noreply.github.com>  %s\n\n' "$(date -R)"
          cat packaging/debian/changelog; } >"$tree/debian/changelog"
    fi
    local which=-b
    [[ "${TILLSYN_DEB_ONLY:-}" == agent ]] && which=-A
    (cd "$tree" && dpkg-buildpackage "$which" -us -uc >"$work/deb.log" 2>&1) || { tail -50 "$work/deb.log" >&2; exit 1; }
    mv "$work"/tillsyn-*_"$version"_*.deb "$DIST/"
    ls "$DIST"/tillsyn-*_"$version"_*.deb
}

build_rpm() {
    say "building the .rpm packages $version"
    local top="$work/rpm" spec
    mkdir -p "$top"/{SOURCES,SPECS,BUILD,RPMS,SRPMS}
    tar -C "$work" -czf "$top/SOURCES/tillsyn-$version.tar.gz" "tillsyn-$version"
    # TILLSYN_RPM_ONLY=agent builds only the noarch tillsyn-agent (quicker)
    for spec in tillsyn tillsyn-central; do
        [[ "$spec" == tillsyn-central && "${TILLSYN_RPM_ONLY:-}" == agent ]] && continue
        rpmbuild -bb --define "_topdir $top" --define "tillsyn_version $version" --nodeps \
            "packaging/rpm/$spec.spec" >"$work/rpm.log" 2>&1 || { tail -50 "$work/rpm.log" >&2; exit 1; }
    done
    mv "$top"/RPMS/*/tillsyn-*.rpm "$DIST/"
    ls "$DIST"/tillsyn-*"$version"*.rpm
}

case "$what" in
deb) build_deb ;;
rpm) build_rpm ;;
all) build_deb; build_rpm ;;
esac
