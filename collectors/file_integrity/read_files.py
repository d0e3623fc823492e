"""The state of the watched paths now: per file its SHA-256, owner, group, mode, size and time.

I/O through the Context (paths below its root).  A directory is walked (not following symbolic
links); a symbolic link is recorded with its target, not hashed.  Unreadable files are recorded
with the reason, so a change to what the agent cannot read is still seen by its metadata.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from typing import Any, Dict, List

from collectors.base import Context, describe_os_error

CHUNK = 1024 * 1024


@dataclass
class Scan:
    files: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    missing_roots: List[str] = field(default_factory=list)
    """Configured paths that do not exist (not an error: /etc/gshadow on some systems)."""
    problems: List[str] = field(default_factory=list)
    truncated: bool = False


def _hash(path: str, limit: int) -> Dict[str, Any]:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        read = 0
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                break
            read += len(chunk)
            if read > limit:
                return {"sha256": None, "unhashed": f"larger than {limit} bytes"}
            digest.update(chunk)
    return {"sha256": digest.hexdigest()}


def entry(ctx: Context, absolute: str, info: os.stat_result, limit: int) -> Dict[str, Any]:
    """One file's record (``absolute`` as on the node, ``info`` its lstat)."""
    record: Dict[str, Any] = {
        "type": "symlink" if stat.S_ISLNK(info.st_mode) else "file" if stat.S_ISREG(info.st_mode) else "other",
        "uid": info.st_uid,
        "gid": info.st_gid,
        "mode": f"{stat.S_IMODE(info.st_mode):04o}",
        "size": info.st_size,
        "mtime": info.st_mtime,
        "inode": info.st_ino,
    }
    real = str(ctx.path(absolute))
    if record["type"] == "symlink":
        try:
            record["target"] = os.readlink(real)
        except OSError as err:
            record["unhashed"] = describe_os_error(err, absolute)
        return record
    if record["type"] == "file":
        try:
            record.update(_hash(real, limit))
        except OSError as err:
            record["sha256"] = None
            record["unhashed"] = describe_os_error(err, absolute)
    return record


def scan(ctx: Context, paths: List[str], max_files: int, limit: int) -> Scan:
    result = Scan()
    for configured in paths:
        absolute = "/" + configured.strip("/")
        try:
            info = os.lstat(ctx.path(absolute))
        except FileNotFoundError:
            result.missing_roots.append(absolute)
            continue
        except OSError as err:
            result.problems.append(describe_os_error(err, absolute))
            continue
        if not stat.S_ISDIR(info.st_mode):
            result.files[absolute] = entry(ctx, absolute, info, limit)
            continue
        for here, dirs, names in os.walk(ctx.path(absolute), onerror=lambda e: result.problems.append(str(e))):
            dirs.sort()
            relative = os.path.relpath(here, ctx.root)
            inside = "/" if relative == "." else "/" + relative
            for name in sorted(names):
                if len(result.files) >= max_files:
                    result.truncated = True
                    return result
                node_path = f"{inside.rstrip('/')}/{name}"
                try:
                    info = os.lstat(ctx.path(node_path))
                except OSError as err:
                    result.problems.append(describe_os_error(err, node_path))
                    continue
                result.files[node_path] = entry(ctx, node_path, info, limit)
    return result
