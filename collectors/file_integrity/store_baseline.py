"""The hash baseline in the agent's state directory (``file_integrity/baseline.json``).

Written by the daemon's runs only (``Context.keep_state``), atomically (a temporary file renamed
over the old one, then fsync of file and directory), so a crash leaves the old or the new
baseline, never a torn one.  ``collect`` and ``check`` read it and leave it alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from collectors.atomic_file import write_atomic

FORMAT = 1
NAME = Path("file_integrity") / "baseline.json"


def load(state_dir: Optional[Path]) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """(baseline, None); (None, None) when there is none yet; (None, why) when it cannot be used."""
    if state_dir is None:
        return None, "no state directory given: only the daemon keeps a baseline"
    path = state_dir / NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as err:
        return None, f"{path}: cannot be read ({err}); a new baseline is made"
    files = data.get("files") if isinstance(data, dict) else None
    if (
        not isinstance(data, dict)
        or data.get("format") != FORMAT
        or not isinstance(files, dict)
        or not all(isinstance(entry, dict) for entry in files.values())
        or not isinstance(data.get("roots", []), list)
    ):  # valid JSON but not what this module writes: comparing with it would fail every run
        return None, f"{path}: not a baseline of format {FORMAT}; a new baseline is made"
    return data, None


def save(state_dir: Path, data: Dict[str, Any]) -> None:
    """Write the baseline atomically; raises OSError (a full disk) for the caller to report."""
    write_atomic(state_dir / NAME, json.dumps(data, separators=(",", ":"), sort_keys=True).encode("utf-8"))
