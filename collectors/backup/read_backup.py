"""The thin I/O half: run restic/borg/veeamconfig or read a marker for one configured backup.

Every failure becomes a per-backup ``status``/``reason`` plus a :class:`Gap`, never an exception.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from collectors.backup import parse_borg, parse_restic, parse_veeam
from collectors.backup.location import classify, scrub, separation
from collectors.backup.parse_markers import parse_marker, parse_restore_test
from collectors.backup.settings import Backup, config_problem
from collectors.base import Context, describe_os_error
from collectors.mounts import MountEntry
from collectors.runner import CommandResult
from evidence.model import Gap, utc_iso

MountLoader = Callable[[], Tuple[Optional[List[MountEntry]], str]]
"""The mount table, or None and why it could not be read."""
Entry = Dict[str, Any]

# Non-interactive borg: never prompt, never show the passphrase, refuse a relocated repository
# (an operator should confirm that), accept reading an unencrypted one so that "not encrypted"
# can be reported as a fact (borg docs, "Environment Variables").
_BORG_ENV = {
    "BORG_DISPLAY_PASSPHRASE": "no",
    "BORG_RELOCATED_REPO_ACCESS_IS_OK": "no",
    "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
    "BORG_CHECK_I_KNOW_WHAT_I_AM_DOING": "NO",
    "BORG_DELETE_I_KNOW_WHAT_I_AM_DOING": "NO",
    "TZ": "UTC",
}


def new_entry(backup: Backup) -> Entry:
    """The per-backup record with every field present; unknown ones stay None."""
    return {
        "name": backup.name,
        "type": backup.type,
        "status": "ok",
        "reason": None,
        "repository": scrub(backup.repository) if backup.repository else None,
        "separate": None,
        "separate_reason": None,
        "encrypted": None,
        "encryption": None,
        "last_success_at": None,
        "last_backup": None,
        "restore_test": None,
        "restore_test_path": backup.restore_test,
    }


@dataclass
class _Probe:
    """One backup being probed: where its facts and gaps accumulate."""

    ctx: Context
    backup: Backup
    settings: Dict[str, Any]
    entry: Entry
    gaps: List[Gap] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"backup {self.backup.name}"


def probe(ctx: Context, backup: Backup, settings: Dict[str, Any], mounts: MountLoader) -> Tuple[Entry, List[Gap]]:
    """Everything Tillsyn can see of one backup, and a gap for each thing it cannot."""
    run = _Probe(ctx, backup, settings, new_entry(backup))
    problem = config_problem(backup)
    if problem:
        _fail(run, "error", problem)
    else:
        {"restic": _restic, "borg": _borg, "veeam": _veeam, "marker": _marker}[backup.type](run)
    _separation(run, mounts)
    _restore_test(run)
    return run.entry, run.gaps


def _fail(run: _Probe, status: str, reason: str) -> None:
    run.entry["status"], run.entry["reason"] = status, reason
    run.gaps.append(Gap(f"{run.label}: last backup and encryption", reason))


def _command_failed(result: CommandResult, tool: str, setting: str, binary: str) -> Optional[Tuple[str, str]]:
    """(status, reason) when the command did not run at all, else None."""
    if result.error == "not found":
        return "not_present", f"{tool} is not installed ({setting} {binary!r} not found)"
    if result.error is not None:
        return "error", result.describe_failure()
    return None


def _restic(run: _Probe) -> None:
    ctx, backup, settings, entry, gaps, label = run.ctx, run.backup, run.settings, run.entry, run.gaps, run.label
    assert backup.repository and backup.password_file
    binary = settings.get("restic_binary") or "restic"
    # --no-lock: read-only, works on append-only repositories; --no-cache: no state on this node.
    # --latest 1 lists the newest snapshot per (host, paths) group; without a host filter another
    # node's fresh snapshot in a shared repository would stand in for this node's stopped backups.
    host = backup.host or ctx.hostname
    argv = [binary, "snapshots", "--json", "--no-lock", "--no-cache", "--latest", "1", "--host", host]
    env = dict(backup.env)
    env.update({"RESTIC_REPOSITORY": backup.repository, "RESTIC_PASSWORD_FILE": backup.password_file})
    result = ctx.command(argv, timeout=backup.timeout, env=env)
    failed = _command_failed(result, "restic", "restic_binary", binary)
    if failed:
        _fail(run, *failed)
        return
    repo = entry["repository"] or ""
    if not result.ok:
        stderr = scrub(result.stderr.decode("utf-8", errors="replace")).replace(backup.repository, repo)
        _fail(run, "error", parse_restic.explain_failure(stderr, result.returncode, repo, backup.password_file))
        return
    try:
        listing = parse_restic.parse_snapshots(result.text)
    except ValueError as err:
        _fail(run, "error", f"malformed restic output: {err}")
        return
    entry["encrypted"], entry["encryption"] = True, "restic (always encrypted)"
    latest = listing.latest
    if latest is None:
        gaps.append(Gap(f"{label}: last backup", f"no snapshots in {repo} for host {host}"))
        return
    entry["last_success_at"] = utc_iso(latest.time)
    entry["last_backup"] = {
        "id": latest.id,
        "short_id": latest.short_id,
        "hostname": latest.hostname,
        "paths": latest.paths,
    }


def borg_base_dir(
    configured: Optional[str], environ: Mapping[str, str], state_dir: Optional[Path] = None
) -> Optional[str]:
    """Where borg keeps its cache and security files: ``borg_base_dir``, else ``borg`` in the
    agent's state directory (``--state-dir``, else the service's $STATE_DIRECTORY: the home
    directory is read-only under the shipped unit), else borg's own default (the user's home)."""
    if configured:
        return configured
    if state_dir is not None:
        return str(state_dir / "borg")
    state = environ.get("STATE_DIRECTORY", "").split(":")[0]
    return os.path.join(state, "borg") if state else None


def _borg(run: _Probe) -> None:
    ctx, backup, settings, entry, gaps, label = run.ctx, run.backup, run.settings, run.entry, run.gaps, run.label
    assert backup.repository
    binary = settings.get("borg_binary") or "borg"
    env = dict(backup.env)
    env.update(_BORG_ENV)
    env["BORG_REPO"] = backup.repository
    if backup.password_file:
        env["BORG_PASSCOMMAND"] = "cat " + shlex.quote(backup.password_file)
    else:
        env["BORG_PASSPHRASE"] = ""  # an unencrypted repository: never fall back to a prompt
    base = borg_base_dir(settings.get("borg_base_dir"), os.environ, ctx.state_dir)
    if base:
        env["BORG_BASE_DIR"] = base
    # --bypass-lock: listing is read-only, and a repository this node may only read (a read-only
    # share, or ProtectSystem= under systemd) has no room for borg's lock file
    command = [binary, "list", "--bypass-lock", "--json", "--last", "1"]
    result = ctx.command(command, timeout=backup.timeout, env=env)
    failed = _command_failed(result, "borg", "borg_binary", binary)
    if failed:
        _fail(run, *failed)
        return
    repo = entry["repository"] or ""
    if not result.ok:
        stderr = scrub(result.stderr.decode("utf-8", errors="replace")).replace(backup.repository, repo)
        reason = parse_borg.explain_failure(stderr, result.returncode, repo, backup.password_file or "(none)")
        _fail(run, "error", reason)
        return
    try:
        listing = parse_borg.parse_list(result.text)
    except ValueError as err:
        _fail(run, "error", f"malformed borg output: {err}")
        return
    entry["encrypted"], entry["encryption"] = listing.encrypted, listing.encryption_mode
    if listing.encrypted is None:
        gaps.append(Gap(f"{label}: encryption", "borg list did not report an encryption mode"))
    if listing.latest is None:
        gaps.append(Gap(f"{label}: last backup", f"no archives in {repo}"))
        return
    entry["last_success_at"] = utc_iso(listing.latest.time)
    entry["last_backup"] = {"archive": listing.latest.name, "id": listing.latest.id}


def _veeam(run: _Probe) -> None:
    ctx, backup, settings, entry, gaps, label = run.ctx, run.backup, run.settings, run.entry, run.gaps, run.label
    binary = settings.get("veeamconfig_binary") or "veeamconfig"
    result = ctx.command([binary, "session", "list"], timeout=backup.timeout, env=dict(backup.env))
    failed = _command_failed(result, "Veeam Agent for Linux", "veeamconfig_binary", binary)
    if failed or not result.ok:
        _fail(run, *(failed or ("error", result.describe_failure())))
        return
    try:
        sessions = parse_veeam.backup_sessions(parse_veeam.parse_session_list(result.text), backup.job)
    except ValueError as err:
        _fail(run, "error", f"malformed veeamconfig output: {err}")
        return
    gaps.append(Gap(f"{label}: encryption", "veeamconfig session list does not show whether the job encrypts"))
    success = parse_veeam.last_success(sessions)
    if sessions:
        last = sessions[-1]
        entry["last_backup"] = {
            "job": last.job,
            "session_id": last.id,
            "state": last.state,
            "started_at": utc_iso(last.started_at),
            "finished_at": utc_iso(last.finished_at) if last.finished_at else None,
        }
    if success is None:
        job = f" of job {backup.job}" if backup.job else ""
        gaps.append(Gap(f"{label}: last backup", f"no successful Veeam backup session{job} listed"))
        return
    assert success.finished_at is not None
    entry["last_success_at"] = utc_iso(success.finished_at)


def _marker(run: _Probe) -> None:
    ctx, backup, entry, gaps, label = run.ctx, run.backup, run.entry, run.gaps, run.label
    assert backup.marker
    path = ctx.path(backup.marker)
    try:
        mtime = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
        with open(path, "rb") as handle:
            data = handle.read(64 * 1024)
    except FileNotFoundError:
        _fail(run, "error", f"marker file {backup.marker} does not exist (the backup job has not written it)")
        return
    except OSError as err:
        _fail(run, "error", describe_os_error(err, f"marker file {backup.marker}"))
        return
    try:
        marker = parse_marker(data, mtime)
    except ValueError as err:
        _fail(run, "error", f"malformed marker file {backup.marker}: {err}")
        return
    entry["last_backup"] = {
        "result": marker.result,
        "finished_at": utc_iso(marker.finished_at),
        "source": marker.source,
    }
    if marker.last_success_at is not None:
        entry["last_success_at"] = utc_iso(marker.last_success_at)
    else:
        gaps.append(
            Gap(f"{label}: last backup", "the last run failed and the marker does not say when the last success was")
        )
    if marker.repository and not entry["repository"]:
        entry["repository"] = scrub(marker.repository)
    entry["encrypted"] = marker.encrypted
    if marker.encrypted is None:
        gaps.append(Gap(f"{label}: encryption", f"marker file {backup.marker} has no 'encrypted' field"))


def _separation(run: _Probe, mounts: MountLoader) -> None:
    entry, gaps, label = run.entry, run.gaps, run.label
    repository = entry["repository"]
    if not repository:
        gaps.append(Gap(f"{label}: separation", "repository location unknown: not configured and not reported"))
        return
    location = classify(repository, shares=run.backup.type in ("veeam", "marker"))
    loaded, unreadable = mounts() if location.kind == "local" else (None, "")
    entry["separate"], entry["separate_reason"] = separation(location, loaded, unreadable, run.ctx.hostname)
    if entry["separate"] is None:
        why = entry["separate_reason"]
        if loaded is None:
            why = f"cannot read /proc/self/mountinfo to see where the path lives: {unreadable}"
        gaps.append(Gap(f"{label}: separation", why))


def _restore_test(run: _Probe) -> None:
    ctx, backup, entry, gaps, label = run.ctx, run.backup, run.entry, run.gaps, run.label
    try:
        with open(ctx.path(backup.restore_test), "rb") as handle:
            data = handle.read(64 * 1024)
    except FileNotFoundError:
        gaps.append(Gap(f"{label}: restore test", f"no restore test recorded: {backup.restore_test} does not exist"))
        return
    except OSError as err:
        gaps.append(Gap(f"{label}: restore test", describe_os_error(err, backup.restore_test)))
        return
    try:
        record = parse_restore_test(data)
    except ValueError as err:
        gaps.append(Gap(f"{label}: restore test", f"{backup.restore_test}: {err}"))
        return
    entry["restore_test"] = {
        "tested_at": utc_iso(record.tested_at),
        "result": record.result,
        "snapshot": record.snapshot,
        "files_checked": record.files_checked,
        "detail": record.detail,
    }
