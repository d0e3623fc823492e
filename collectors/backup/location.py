"""Where a backup repository lives, and whether that is separate from this node (pure).

Decided from the repository string alone, then, for a local path, from the mount table:

* a URL or scp-style location is **remote** (restic backends ``sftp: rest: s3: b2: azure: gs:
  swift: rclone:``, restic design doc; borg ``ssh://`` and ``[user@]host:path``, borg docs
  "Repository URLs"), and so is an SMB share ``//host/share`` named as a Veeam or marker
  repository; a remote location on a loopback host (``localhost``, 127.0.0.0/8, ``::1``) is this
  node (**not separate**), and one on this node's own hostname is **unknown**;
* a local path on a network filesystem mount (:data:`collectors.mounts.NETWORK_FSTYPES`: NFS,
  CIFS/SMB, sshfs, CephFS, AFS …) is **separate**: its data is stored on another machine;
* a local path on a VM host's share into this guest (9p, virtiofs) is **unknown**: outside the
  guest, but possibly on the same hardware; so is a path no mount holds, or one whose mount
  table cannot be read;
* any other local path is **not separate**: it is on this node's own disks.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import socket
from dataclasses import dataclass
from typing import List, Optional, Tuple, Union
from urllib.parse import urlsplit

from collectors.mounts import NETWORK_FSTYPES, VM_HOST_FSTYPES, MountEntry, mount_holding

RESTIC_REMOTE = ("sftp", "rest", "s3", "b2", "azure", "gs", "swift", "rclone")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):(.*)$")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://")
_SCP = re.compile(r"^(?:[^@/:]+@)?(\[[^\]]+\]|[^@/:]+):(.*)$")
_USERINFO_PASSWORD = re.compile(r"(://[^/@:\s]+):[^@/\s]+@")
_UNC = re.compile(r"^(?://|\\\\)([^/\\]+)[/\\]?(.*)$")
# Names that resolve to this node itself: RFC 6761 (localhost and *.localhost), Debian's /etc/hosts.
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


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


def _local_path(path: str) -> str:
    """Normalised, with one leading slash: Linux reads ``//srv/x`` as ``/srv/x`` (POSIX leaves two open)."""
    normal = posixpath.normpath(path or "/")
    return "/" + normal.lstrip("/") if normal.startswith("/") else normal


def classify(repository: str, shares: bool = False) -> Location:
    """Classify a restic or borg repository string.

    ``shares``: the string names where a tool we do not drive writes (Veeam, a marker file), so
    ``//host/share`` (or ``\\\\host\\share``) is an SMB share; restic and borg would open it
    as a local path, and so does Tillsyn for them.
    """
    repo = repository.strip()
    unc = _UNC.match(repo) if shares else None
    if unc:
        return Location("remote", "smb", unc.group(1), unc.group(2) or None)
    for prefix, scheme in (("file://", "file"), ("local:", "local")):
        if repo.startswith(prefix):
            return Location("local", scheme, None, _local_path(repo[len(prefix) :]))
    if repo.startswith("/"):
        return Location("local", None, None, _local_path(repo))
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


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 (also as ``127.1``), ``::1``, ``::ffff:127.x``, or the wildcard
    address, which also reaches this node."""
    name = host.strip("[]").rstrip(".").lower()
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        address: Union[ipaddress.IPv4Address, ipaddress.IPv6Address] = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        if not re.fullmatch(r"[0-9a-fx.]+", name):
            return False
        try:  # the inet_aton(3) forms a resolver also accepts: 127.1, 0x7f.1, 2130706433
            address = ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _same_name(host: str, hostname: str) -> bool:
    """``web01`` and ``web01.example.net`` may name the same machine: compare the first labels."""
    first = host.rstrip(".").lower().split(".", 1)[0]
    return bool(hostname) and first == hostname.rstrip(".").lower().split(".", 1)[0]


def separation(
    location: Location, mounts: Optional[List[MountEntry]], unreadable: str = "", hostname: str = ""
) -> Tuple[Optional[bool], str]:
    """Whether the repository is separate from this node, and why.  None when it cannot be told.

    ``mounts`` is None when the mount table could not be read; ``unreadable`` then says why.
    ``hostname`` is this node's name: a remote location by that name may be this node.
    """
    if location.kind == "remote":
        host = location.host or ""
        where = f" on {host}" if host else ""
        if host and is_loopback(host):
            return False, f"repository ({location.scheme}){where}: a loopback address, this node itself"
        if host and _same_name(host, hostname):
            return None, f"repository ({location.scheme}){where}: this node's own name ({hostname}), so maybe this node"
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
