"""Settings of the sshd collector."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from collectors.settings import Field, Schema

MATCH_CONTEXT: Schema = {
    "user": Field(str, "root", "user name of the connection"),
    "host": Field(str, "unknown", "client host name (as reverse DNS would give it)"),
    "address": Field(str, "203.0.113.10", "client address (the default is a documentation address: 'anyone')"),
}

SETTINGS: Schema = {
    "config_file": Field(str, "/etc/ssh/sshd_config", "sshd's main configuration file"),
    "sshd_binary": Field(str, "/usr/sbin/sshd", "the sshd to ask for its effective configuration (sshd -T)"),
    "use_sshd_t": Field(bool, True, "ask sshd -T; false: always parse the files"),
    "match_contexts": Field(
        list,
        [{"user": "root", "host": "unknown", "address": "203.0.113.10"}],
        "connections to evaluate the Match blocks for (sshd -T -C), when the configuration has any",
        items=MATCH_CONTEXT,
    ),
}


def watch_paths(settings: Mapping[str, Any], state_dir: Optional[Path] = None) -> Sequence[str]:
    """The main file and its usual drop-in directory: a change re-reads the configuration at once."""
    main = str(settings.get("config_file", "/etc/ssh/sshd_config"))
    return [main, main + ".d"]
