"""The thin I/O part: psutil's socket table and the owner of a socket.

psutil is imported on first use so that loading the collector costs nothing.
psutil reads ``/proc`` itself (``/proc/net/{tcp,tcp6,udp,udp6}`` and every
``/proc/<pid>/fd`` to map socket inodes to processes); the cgroup file goes
through the context so tests can move the root.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Tuple, TypeVar

from collectors.base import Context, describe_os_error
from collectors.ports.model import ProcessInfo
from collectors.ports.parse_cgroup import parse_cgroup
from evidence.model import Gap

T = TypeVar("T")


def read_connections() -> Tuple[Optional[List[Any]], Optional[str]]:
    """Every inet socket with its owner pid (``None`` when unmappable), or why there are none."""
    try:
        import psutil  # deferred: keeps the collector cheap to import
    except ImportError:
        return None, "psutil is not installed (Debian package python3-psutil)"
    try:
        return list(psutil.net_connections(kind="inet")), None
    except psutil.AccessDenied:
        # Linux does not raise this (unmappable sockets get pid None); other kernels do.
        return None, "permission denied listing sockets (psutil.AccessDenied); run as root"
    except OSError as err:
        return None, describe_os_error(err, "/proc/net")


def connections(ctx: Context) -> Tuple[Optional[List[Any]], Optional[str]]:
    """:func:`read_connections`, read once per round (ports, firewall and service_access all ask)."""
    read, why = ctx.once("inet sockets", read_connections)
    return (None if read is None else list(read)), why


def _field(pid: int, what: str, read: Callable[[], T], gaps: List[Gap]) -> Optional[T]:
    """One process attribute, or ``None`` with a gap saying why."""
    import psutil

    try:
        return read()
    except psutil.NoSuchProcess:
        raise
    except psutil.AccessDenied:
        gaps.append(Gap(f"{what} of process {pid}", "permission denied (not root)"))
    except (psutil.Error, OSError) as err:
        gaps.append(Gap(f"{what} of process {pid}", f"cannot read: {err}"))
    return None


def lookup_process(ctx: Context, pid: int) -> Tuple[ProcessInfo, List[Gap]]:
    """Name, executable, user and systemd unit of ``pid``; gaps for whatever could not be read.

    Read once per round: ports, firewall and service_access all ask about the same socket owners.
    """
    info, gaps = ctx.once(f"process {pid}", lambda: _lookup_process(ctx, pid))
    return info, list(gaps)


def _lookup_process(ctx: Context, pid: int) -> Tuple[ProcessInfo, List[Gap]]:
    import psutil

    gaps: List[Gap] = []
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            name = _field(pid, "name", proc.name, gaps)
            exe = _field(pid, "executable", proc.exe, gaps)
            user = _field(pid, "user", proc.username, gaps)
        if exe == "":  # psutil's answer when /proc/<pid>/exe has no target (kernel thread, zombie)
            exe = None
            gaps.append(Gap(f"executable of process {pid}", f"/proc/{pid}/exe has no target"))
    except psutil.NoSuchProcess:
        return ProcessInfo(pid), [Gap(f"process {pid}", "exited while its sockets were being read")]
    unit: Optional[str] = None
    path: Optional[str] = None
    source = f"/proc/{pid}/cgroup"
    try:
        membership = parse_cgroup(ctx.read_text(source))
    except OSError as err:
        gaps.append(Gap(f"systemd unit of process {pid}", describe_os_error(err, source)))
    except ValueError as err:
        gaps.append(Gap(f"systemd unit of process {pid}", f"unreadable {source}: {err}"))
    else:
        if membership is None:
            gaps.append(Gap(f"systemd unit of process {pid}", f"{source} lists no cgroup hierarchy"))
        else:
            unit, path = membership.unit, membership.path
    return ProcessInfo(pid, name, exe, user, unit, path), gaps
