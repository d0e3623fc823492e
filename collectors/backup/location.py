"""Where a backup repository lives, and whether that is separate from this node (pure).

Decided from the repository string alone, then, for a local path, from the mount table:

* a URL or scp-style location is **remote** (restic backends ``sftp: rest: s3: b2: azure: gs:
  swift: rclone:``, restic design doc; borg ``ssh://`` and ``[user@]host:path``, borg docs
  "Repository URLs");
* a local path on a network filesystem mount (NFS, CIFS/SMB, sshfs, CephFS, GlusterFS) is
  **separate**: its data is stored on another machine;
* any other local path is **not separate**: it is on this node's own disks.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import List, Optional, Tuple
from urllib.parse import urlsplit

RESTIC_REMOTE = ("sftp", "rest", "s3", "b2", "azure", "gs", "swift", "rclone")
NETWORK_FS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ceph",
        "glusterfs",
        "fuse.glusterfs",
        "fuse.sshfs",
        "sshfs",
        "fuse.s3fs",
        "fuse.rclone",
        "davfs",
        "fuse.davfs2",
    }
)
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


@dataclass(frozen=True)
class Mount:
    """One line of /proc/self/mountinfo, the fields this module needs."""

    mount_point: str
    fstype: str
    source: str


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


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal (proc(5)).
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> List[Mount]:
    """Parse /proc/self/mountinfo (proc(5)): mount point is field 5, after " - " fstype and source."""
    mounts = []
    for line in text.splitlines():
        head, sep, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if not sep or len(fields) < 5 or len(rest) < 2:
            continue
        mounts.append(Mount(_unescape(fields[4]), rest[0], _unescape(rest[1])))
    return mounts


def mount_of(path: str, mounts: List[Mount]) -> Optional[Mount]:
    """The mount holding ``path``: the longest mount point that is a prefix (the last one wins)."""
    best: Optional[Mount] = None
    for mount in mounts:
        point = mount.mount_point.rstrip("/") or "/"
        inside = point in ("/", path) or path.startswith(point + "/")
        if inside and (best is None or len(point) >= len(best.mount_point.rstrip("/") or "/")):
            best = mount
    return best


def separation(location: Location, mounts: Optional[List[Mount]]) -> Tuple[Optional[bool], str]:
    """Whether the repository is separate from this node, and why.  None when it cannot be told."""
    if location.kind == "remote":
        where = f" on {location.host}" if location.host else ""
        return True, f"remote repository ({location.scheme}){where}"
    path = location.path or ""
    if not path.startswith("/"):
        return False, f"relative local path {path!r}: on this node"
    if mounts is None:
        return None, "mount table unreadable"
    mount = mount_of(path, mounts)
    if mount is None:
        return False, f"local path {path}: on this node (no mount found)"
    if mount.fstype in NETWORK_FS:
        return True, f"local path {path} is on a {mount.fstype} mount of {mount.source}: stored on another machine"
    return False, f"local path {path} is on {mount.fstype} {mount.source} mounted at {mount.mount_point}: on this node"
