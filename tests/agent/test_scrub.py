from __future__ import annotations

import pytest

from agent.scrub import scrub


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rest:https://user:s3cret@backup.example/repo", "rest:https://user:***@backup.example/repo"),
        ("Password=abc123 rest", "Password=*** rest"),
        ("passphrase: hunter2", "passphrase: ***"),
        ("api_key=XYZ token=abc", "api_key=*** token=***"),
        ("nothing secret here", "nothing secret here"),
    ],
)
def test_scrub(text: str, expected: str) -> None:
    assert scrub(text) == expected
