"""The agent's state directory: identity, enrolment, sequence counters (files, written atomically)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

from collectors.atomic_file import write_atomic

DEFAULT_STATE_DIR = Path("/var/lib/tillsyn")


def state_dir(flag: Optional[str], env: Mapping[str, str]) -> Path:
    return Path(flag or env.get("TILLSYN_STATE_DIR") or DEFAULT_STATE_DIR)


def read_json(path: Path) -> Optional[Dict[str, Any]]:
    """The JSON object in ``path``, None when there is no such file; ValueError naming the file otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as err:  # not UTF-8, not JSON (a file cut short, a disk error)
        raise ValueError(f"{path}: not readable JSON ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def read_state(path: Path) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """``read_json`` for files the agent can rebuild: (data, None), or (None, why it cannot be read).

    (None, None) means there is no such file.
    """
    try:
        return read_json(path), None
    except (OSError, ValueError) as err:
        return None, str(err) if str(path) in str(err) else f"{path}: {err}"


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True).encode("utf-8"))


def os_reason(err: OSError) -> str:
    """ "no space left on device": the system's words for an OSError, without the file name."""
    return (err.strerror or type(err).__name__).lower()
