"""Where a backup repository lives, and whether that is separate from this node (pure).

Decided from the repository string alone, then, for a local path, from the mount table:

* a URL or scp-style location is **remote** (restic backends ``sftp: rest: s3: b2: azure: gs:
  swift: rclone:``, restic design doc; borg ``ssh://`` and ``[user@]host:path``, borg docs
  "Repository URLs");
* a local path on a network filesystem mount (:data:`collectors.mounts.NETWORK_FSTYPES`: NFS,
  CIFS/SMB, sshfs, CephFS, AFS …) is **separate**: its data is stored on another machine;
* a local path on a VM host's share into this guest (9p, virtiofs) is **unknown**: outside the
  guest, but possibly on the same hardware; so is a path no mount holds, or one whose mount
  table cannot be read;
* any other local path is **not separate**: it is on this node's own disks.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import List, Optional, Tuple
from urllib.parse import urlsplit

from collectors.mounts import NETWORK_FSTYPES, VM_HOST_FSTYPES, MountEntry, mount_holding

RESTIC_REMOTE = ("sftp", "rest", "s3", "b2", "azure", "gs", "swift", "rclone")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):(.*)$")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://")
_SCP = re.compile(r"^(?:[^@/:]+@)?(\[[^\]]+\]|[^@/:]+):(.*)$")
_USERINFO_PASSWORD = re.compile(r"(://[^/@:\s]+):[^@/\s]+@")


@dataclass(frozen=True)
class Location:
    """A repository location as Tillsyn reads it."""

    kind: str
    """"remote" or "local"."""
    scheme: Optional[str]
    host: Optional[str]
    path: Optional[str]


def scrub(text: str) -> str:
    """Hide a password given in a URL's user info (``rest:https://user:secret@host/``)."""
    return _USERINFO_PASSWORD.sub(r"\1:***@", text)


def _host_of(url: str) -> Optional[str]:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _remote(scheme: str, rest: str) -> Location:
    """A restic remote backend ``scheme:rest``; the host is best effort."""
    host: Optional[str] = None
    if "://" in rest:
        host = _host_of(rest)
    elif scheme == "sftp":
        scp = _SCP.match(rest)
        host = scp.group(1).strip("[]") if scp else None
    elif scheme == "s3":
        host = rest.split("/", 1)[0] or None
    return Location("remote", scheme, host, None)


def classify(repository: str) -> Location:
    """Classify a restic or borg repository string."""
    repo = repository.strip()
    for prefix, scheme in (("file://", "file"), ("local:", "local")):
        if repo.startswith(prefix):
            return Location("local", scheme, None, posixpath.normpath(repo[len(prefix) :] or "/"))
    if repo.startswith("/"):
        return Location("local", None, None, posixpath.normpath(repo))
    if _URL.match(repo):
        parts = urlsplit(repo)
        return Location("remote", parts.scheme, parts.hostname, parts.path or None)
    match = _SCHEME.match(repo)
    if match and match.group(1) in RESTIC_REMOTE:
        return _remote(match.group(1), match.group(2))
    scp = _SCP.match(repo)
    if scp:
        return Location("remote", "ssh", scp.group(1).strip("[]"), scp.group(2) or None)
    return Location("local", None, None, repo)


def separation(
    location: Location, mounts: Optional[List[MountEntry]], unreadable: str = ""
) -> Tuple[Optional[bool], str]:
    """Whether the repository is separate from this node, and why.  None when it cannot be told.

    ``mounts`` is None when the mount table could not be read; ``unreadable`` then says why.
    """
    if location.kind == "remote":
        where = f" on {location.host}" if location.host else ""
        return True, f"remote repository ({location.scheme}){where}"
    path = location.path or ""
    if not path.startswith("/"):
        return False, f"relative local path {path!r}: on this node"
    if mounts is None:
        return None, f"mount table unreadable: {unreadable}" if unreadable else "mount table unreadable"
    mount = mount_holding(path, mounts)
    if mount is None:  # every Linux system mounts "/": the table is empty or not this system's
        return None, f"local path {path}: no mount in the mount table holds it"
    if mount.fstype in NETWORK_FSTYPES:
        return True, f"local path {path} is on a {mount.fstype} mount of {mount.source}: stored on another machine"
    if mount.fstype in VM_HOST_FSTYPES:
        return None, (
            f"local path {path} is on a {mount.fstype} mount of {mount.source}: a directory of this virtual "
            "machine's host, outside this guest but possibly on the same hardware"
        )
    return False, f"local path {path} is on {mount.fstype} {mount.source} mounted at {mount.mountpoint}: on this node"
