"""``apt-get -s dist-upgrade`` (pure): the packages an upgrade would install, and from where.

apt's simulation prints one ``Inst`` line per package (apt-get(8), ``--simulate``)::

    Inst bash [5.2.15-2+b8] (5.2.15-2+b13 Debian:12.15/oldstable [amd64])
    Inst libc6 [2.36-9] (2.36-9+deb12u9 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64])
    Inst linux-image-6.1.0-41-amd64 (6.1.0-41 Debian-Security:12/oldstable-security [amd64])

``[installed]`` is absent for a new package; the parenthesis holds the candidate version, then every
release offering it as ``Label:Version/Archive`` (``Label:Archive`` when the Release file has no
version), then the architecture.  A release is a security release when its label says so
(``Debian-Security``) or its archive ends in ``-security`` (``Ubuntu:22.04/jammy-security``).
"""

from __future__ import annotations

import re
from typing import Any, Dict, List

_INST = re.compile(r"^Inst (\S+) (?:\[([^\]]*)\] )?\((\S+) (.*) \[([^\]]*)\]\)(?: \[.*\])?$")


class AptFormatError(ValueError):
    """A line of the simulation does not have the documented shape."""


def is_security(release: str) -> bool:
    label, _, rest = release.partition(":")
    archive = rest.rpartition("/")[2] if rest else ""
    return "security" in label.lower() or archive.endswith("-security")


def parse_simulation(text: str) -> List[Dict[str, Any]]:
    """One record per ``Inst`` line: name, current (null when new), candidate, releases, security."""
    packages = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.startswith("Inst "):
            continue
        match = _INST.match(line.rstrip())
        if not match:
            raise AptFormatError(f"line {number} is not an Inst line apt prints: {line[:100]!r}")
        name, current, candidate, releases_text, arch = match.groups()
        releases = [r.strip() for r in releases_text.split(", ") if r.strip()]
        if not releases:
            raise AptFormatError(f"line {number} names no release: {line[:100]!r}")
        packages.append(
            {
                "name": name,
                "architecture": arch,
                "current": current or None,
                "candidate": candidate,
                "releases": releases,
                "security": any(is_security(r) for r in releases),
            }
        )
    return packages


def held_back(text: str) -> List[str]:
    """Packages apt lists under "The following packages have been kept back:"."""
    names: List[str] = []
    collecting = False
    for line in text.splitlines():
        if line.startswith("The following packages have been kept back"):
            collecting = True
            continue
        if collecting:
            if not line.startswith(" "):
                break
            names.extend(line.split())
    return names
