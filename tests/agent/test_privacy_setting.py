"""The agent reports its pseudonymisation setting (M13) in every report it spools: on with the
key's id (the first 12 hex digits of the key's SHA-256, never the key), or off."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timezone
from pathlib import Path

from agent.identity import privacy_setting, pseudonym_key
from agent.spool import Spool
from evidence.signing import new_private_key
from evidence.wire import Privacy, parse_report


def test_on_names_the_key_by_its_hash_and_off_names_none(tmp_path: Path) -> None:
    on = privacy_setting(tmp_path, True)
    assert on == Privacy(True, hashlib.sha256(pseudonym_key(tmp_path)).hexdigest()[:12])
    assert privacy_setting(tmp_path, False) == Privacy(False, None)


def test_two_nodes_with_the_same_key_file_report_the_same_id(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "pseudonym.key").write_bytes(b"k" * 32)
    (tmp_path / "b" / "pseudonym.key").write_bytes(b"k" * 32)
    assert privacy_setting(tmp_path / "a", True) == privacy_setting(tmp_path / "b", True)
    assert privacy_setting(tmp_path / "a", True).key_id != hashlib.sha256(b"x" * 32).hexdigest()[:12]


def test_a_spooled_report_carries_the_setting_under_its_signature(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spooled = spool.add(new_private_key(), "agent-0001", "t", datetime.now(timezone.utc), [], Privacy(False, None))
    body = base64.b64decode(spooled.load()["body"])
    assert parse_report(body).privacy == Privacy(False, None)
