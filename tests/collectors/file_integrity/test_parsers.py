"""The audit-log parser and the comparison on captured, absent, malformed, random and mutated
input (hypothesis): they never raise."""

from __future__ import annotations

from typing import Any, Dict

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.file_integrity import report
from collectors.file_integrity.compare import compare
from collectors.file_integrity.parse_audit import last_actors, parse_events
from tests.conftest import FIXTURES

AUDIT = (FIXTURES / "file_integrity" / "audit-log_auditbeat-8.0.0_kibana-siem-mock_openat-etc-passwd.log").read_text()
CUT = (FIXTURES / "file_integrity" / "audit-log_unnamed-distro_auditd_tail-cut-mid-event.log").read_text()


def test_captured_events() -> None:
    events, bad = parse_events(AUDIT)
    assert bad == 0 and len(events) == 1
    actors, _ = last_actors(AUDIT, ["/etc/passwd", "/etc/shadow"])
    assert set(actors) == {"/etc/passwd"}
    assert (actors["/etc/passwd"]["process"], actors["/etc/passwd"]["auid"]) == ("auditbeat", None)
    actors, _ = last_actors(CUT, ["/etc/passwd"])
    assert actors["/etc/passwd"]["process"] is None  # its SYSCALL line was before the tail


def test_absent_and_malformed() -> None:
    assert last_actors("", ["/etc/passwd"]) == ({}, 0)
    text = (
        "garbage\n"
        'type=PATH msg=audit(99999999999999999999.1:2): name="/etc/passwd"\n'
        'type=PATH msg=audit(1.0:3): name="x"\n'
    )
    actors, bad = last_actors(text, ["/etc/passwd"])
    assert actors == {} and bad == 2
    # a relative name is joined to the event's working directory
    relative = 'type=CWD msg=audit(5.0:9): cwd="/etc"\ntype=PATH msg=audit(5.0:9): item=0 name="shadow"\n'
    assert set(last_actors(relative, ["/etc/shadow"])[0]) == {"/etc/shadow"}
    assert report.names("root:x:0:0\nbad\nx:y:z\n") == {0: "root"}


def test_comparison_edges() -> None:
    old = {"/a": {"type": "file", "sha256": None, "size": 1, "mtime": 1.0, "uid": 0, "gid": 0, "mode": "0644"}}
    same = {"/a": dict(old["/a"])}
    assert compare(old, same, ["/a"]) == []
    grown = {"/a": {**old["/a"], "size": 2}}
    assert compare(old, grown, ["/a"])[0]["change"] == "modified"  # unhashed: by size and time
    assert compare(old, {}, ["/b"]) == []  # outside the roots watched both times


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=600))
def test_random_audit_text_never_raises(text: str) -> None:
    last_actors(text, ["/etc/passwd"])
    report.names(text)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_audit_log_never_raises(data: st.DataObject) -> None:
    for capture in (AUDIT, CUT):
        index = data.draw(st.integers(0, len(capture)))
        text = capture[:index] + data.draw(st.text(max_size=50)) + capture[index + data.draw(st.integers(0, 30)) :]
        last_actors(text, ["/etc/passwd"])


_VALUES = st.one_of(st.none(), st.integers(), st.text(max_size=8), st.floats(allow_nan=False))
_ENTRY = st.dictionaries(st.sampled_from(["type", "sha256", "size", "mtime", "uid", "gid", "mode", "target"]), _VALUES)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["/a", "/a/b", "/c"]), _ENTRY),
    st.dictionaries(st.sampled_from(["/a", "/a/b", "/c"]), _ENTRY),
)
def test_random_baselines_never_raise(old: Dict[str, Any], new: Dict[str, Any]) -> None:
    for change in compare(old, new, ["/a", "/c"]):
        report.describe(change, {0: "root"}, {}, None, None)
