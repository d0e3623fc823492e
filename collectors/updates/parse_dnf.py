"""``dnf -C check-update``, ``dnf -C updateinfo list --security`` and ``needs-restarting -r`` (pure).

check-update (dnf(8)): one line per available update, ``name.arch  version-release  repository``,
exit status 100 when there are updates, 0 when none; an ``Obsoleting Packages`` block may follow.
updateinfo list: ``ADVISORY  type/severity  name-version-release.arch`` per affected package.
needs-restarting -r (dnf-utils): exit status 1 when a reboot is needed, 0 when not.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Set

_NEVRA_ARCHES = ("noarch", "x86_64", "aarch64", "i686", "ppc64le", "s390x", "src", "armv7hl")
_ADVISORY = re.compile(r"^(\S+)\s+(\S+)\s+(\S+)$")


class DnfFormatError(ValueError):
    """The output does not have the documented shape."""


def parse_check_update(text: str) -> List[Dict[str, Any]]:
    """The updates check-update lists (before any ``Obsoleting Packages`` block)."""
    updates = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith(("Obsoleting Packages", "Security:")):
            break
        if line.startswith(("Last metadata expiration check", "Loaded plugins", " * ")):
            continue
        parts = line.split()
        if len(parts) != 3 or "." not in parts[0]:
            raise DnfFormatError(f"not a check-update line: {line[:100]!r}")
        name, _, arch = parts[0].rpartition(".")
        updates.append({"name": name, "architecture": arch, "candidate": parts[1], "repository": parts[2]})
    return updates


def _name_of(nevra: str) -> str:
    """``kernel-5.14.0-362.24.1.el9_3.x86_64`` -> ``kernel`` (name, then version-release.arch)."""
    base = nevra
    for arch in _NEVRA_ARCHES:
        if base.endswith("." + arch):
            base = base[: -len(arch) - 1]
            break
    parts = base.rsplit("-", 2)
    if len(parts) != 3 or not parts[0]:
        raise DnfFormatError(f"not a package name-version-release: {nevra[:80]!r}")
    return parts[0]


def parse_updateinfo(text: str) -> Set[str]:
    """Names of the packages that security advisories in ``updateinfo list --security`` update."""
    names = set()
    for line in text.splitlines():
        if not line.strip() or line.startswith(("Last metadata expiration check", "Loaded plugins", "updateinfo list")):
            continue
        match = _ADVISORY.match(line.strip())
        if not match:
            raise DnfFormatError(f"not an updateinfo line: {line[:100]!r}")
        names.add(_name_of(match.group(3)))
    return names
