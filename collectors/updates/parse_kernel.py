"""Kernel releases: which installed one is newest, and the reboot-required marker (pure)."""

from __future__ import annotations

import re
from typing import List, Optional, Sequence, Tuple, Union

_PART = re.compile(r"\d+|[^\d]+")


def release_key(release: str) -> Tuple[Tuple[int, Union[int, str]], ...]:
    """Order ``6.1.0-9-amd64`` before ``6.1.0-28-amd64``: digit runs compare as numbers."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in _PART.findall(release))


def newest(releases: Sequence[str]) -> Optional[str]:
    return max(releases, key=release_key) if releases else None


def kernel_files(names: Sequence[str]) -> List[str]:
    """Kernel releases from ``/boot`` file names (``vmlinuz-<release>``), rescue images left out."""
    found = []
    for name in names:
        if name.startswith("vmlinuz-") and "rescue" not in name:
            release = name[len("vmlinuz-") :]
            if release:
                found.append(release)
    return sorted(set(found), key=release_key)


def parse_reboot_packages(text: str) -> List[str]:
    """``/run/reboot-required.pkgs``: one package name per line, in the order written, once each."""
    seen: List[str] = []
    for line in text.splitlines():
        name = line.strip()
        if name and name not in seen:
            seen.append(name)
    return seen
