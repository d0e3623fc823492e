"""The rule engine, table-driven: operators, expect modes, three-valued logic, staleness.

Unknown (a missing or null fact, a collector error) is never passing, and a
certain failure dominates unknown.  The last tests drive the shipped policy with
evidence produced by the real collectors from their captured fixtures.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import pytest

from evidence.model import utc_iso
from evidence.policy import parse_policy
from evidence.rules import OPERATORS, Check, Rule, Verdict, evaluate, evaluate_check, lookup, parse_duration
from evidence.rules import Test as ItemTest  # named Test*, pytest would try to collect it
from tests.evidence.shipped import SHIPPED, judge

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)


def ago(**delta: float) -> str:
    return utc_iso(NOW - timedelta(**delta))


@pytest.mark.parametrize(
    ("op", "actual", "expected", "verdict"),
    [
        ("eq", 3, 3, True),
        ("eq", 3, 4, False),
        ("eq", None, 3, None),
        ("eq", True, 1, None),  # a bool is not the number 1
        ("ne", "all", "loopback", True),
        ("ne", "loopback", "loopback", False),
        ("ne", None, "loopback", None),
        ("lt", 1, 2, True),
        ("lt", 2, 2, False),
        ("le", 2, 2, True),
        ("gt", 3, 2, True),
        ("ge", 1, 1, True),
        ("ge", 0, 1, False),
        ("ge", "1", 1, None),  # a string against a number: unknown, not an exception
        ("ge", True, 1, None),
        ("in", "clamav", ["clamav", "mdatp"], True),
        ("in", "eset", ["clamav", "mdatp"], False),
        ("not_in", "eset", ["clamav"], True),
        ("contains", ["OL", "LB"], "LB", True),
        ("contains", ["OL"], "LB", False),
        ("contains", None, "LB", None),
        ("contains", 5, "LB", None),
        ("not_contains", ["OL"], "LB", True),
        ("is_true", True, None, True),
        ("is_true", False, None, False),
        ("is_true", 1, None, None),  # only a real bool counts
        ("is_true", None, None, None),
        ("is_false", False, None, True),
        ("is_false", "false", None, None),
        ("not_null", 0, None, True),
        ("not_null", None, None, False),
        ("max_age", ago(hours=25), "26h", True),
        ("max_age", ago(hours=27), "26h", False),
        ("max_age", "2026-11-01", "31d", True),  # a bare date, as apcupsd reports its self-test
        ("max_age", "2026-10-01", "31d", False),
        ("max_age", "2026-11-20T10:00:00", "1d", None),  # no zone: unknown, never guessed
        ("max_age", "yesterday", "1d", None),
        ("max_age", 12345, "1d", None),
        ("max_age", ago(minutes=-9), "26h", True),  # ahead, within 10 min of clock skew
        ("max_age", ago(minutes=-11), "26h", None),  # further ahead: a wrong clock, never fresh
        ("max_age", "2036-11-20T03:12:44Z", "26h", None),
        ("max_age", "2036-11-20", "31d", None),
        # a list with a null member has members not seen: only one seen decides
        ("contains", ["plaintext_remote", "remote_service", None], "remote_service", True),
        ("contains", ["plaintext_remote", None], "database", None),
        ("contains", [None], "database", None),
        ("not_contains", ["database", None], "database", False),
        ("not_contains", [None], "database", None),
        ("contains", "a string with None", "None", True),
        ("matches", "OK (passed)", "pass|^OK", True),
        ("matches", "Done and passed", "pass|^OK", True),
        ("matches", "NO (no self-test result in the last 5 minutes)", "pass|^OK", False),
        ("matches", None, "pass", None),
    ],
)
def test_operators(op: str, actual: Any, expected: Any, verdict: Optional[bool]) -> None:
    assert OPERATORS[op](actual, expected, NOW) is verdict


def test_every_operator_is_covered_above() -> None:
    assert set(OPERATORS) == {
        "eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "contains", "not_contains",
        "is_true", "is_false", "not_null", "max_age", "matches",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90.0), ("90", 90.0), ("90s", 90.0), ("15m", 900.0), ("26h", 93600.0), ("31d", 2678400.0),
     ("2w", 1209600.0), (" 1.5h ", 5400.0)],
)  # fmt: skip
def test_durations(text: Any, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "h", "10y", "-5m", "1h30m", True, None])
def test_bad_durations_say_how_to_write_one(bad: Any) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(bad)


def test_lookup_nested_paths() -> None:
    data = {"a": {"b": {"c": 0}}, "l": [1]}
    assert (lookup(data, "a.b.c"), lookup(data, "a.x.c"), lookup(data, "l.0"), lookup(data, "")) == (
        0, None, None, data)  # fmt: skip


UPS = [
    {"name": "a", "on_line": True, "flags": ["OL"], "battery": {"pct": 100}},
    {"name": "b", "on_line": False, "flags": ["OB", "LB"], "battery": {"pct": 12}},
    {"name": "c", "on_line": None, "flags": None, "battery": {"pct": None}},
]
T_ON = ItemTest("on_line", "is_true")
W_LB = ItemTest("flags", "contains", "LB")


@pytest.mark.parametrize(
    ("check", "items", "verdict", "observed"),
    [
        # all: a failure dominates unknown; unknown alone is unknown; shown items projected
        (Check("ups", "all", T_ON, show=("name",)), UPS, False, [{"name": "b"}]),
        (Check("ups", "all", T_ON, show=("name",)), [UPS[0], UPS[2]], None, [{"name": "c"}]),
        (Check("ups", "all", T_ON), [UPS[0]], True, 1),
        (Check("ups", "all", T_ON, show=("name", "battery.pct")), [UPS[1]], False, [{"name": "b", "battery.pct": 12}]),
        # any: one pass is enough; otherwise unknown dominates failure
        (Check("ups", "any", T_ON, show=("name",)), UPS, True, [{"name": "a"}]),
        (Check("ups", "any", T_ON, show=("name",)), [UPS[1], UPS[2]], None, [{"name": "c"}]),
        (Check("ups", "any", T_ON, show=("name",)), [UPS[1]], False, [{"name": "b"}]),
        # none with where: a certain match fails, an undecided filter is unknown
        (Check("ups", "none", where=(W_LB,), show=("name",)), UPS, False, [{"name": "b"}]),
        (Check("ups", "none", where=(W_LB,), show=("name",)), [UPS[0], UPS[2]], None, [{"name": "c"}]),
        (Check("ups", "none", where=(W_LB,)), [UPS[0]], True, []),
        # count, with a filter that is undecided for some items
        (Check("ups", "count", ItemTest("", "ge", 1)), UPS, True, 3),
        (Check("ups", "count", ItemTest("", "eq", 0), where=(W_LB,)), [UPS[0]], True, 0),
        (Check("ups", "count", ItemTest("", "le", 0), where=(W_LB,)), UPS, False, 1),
        (Check("ups", "count", ItemTest("", "ge", 1), where=(W_LB,)), [UPS[0], UPS[2]], None, 0),
        (Check("ups", "count", ItemTest("", "le", 5), where=(W_LB,)), [UPS[0], UPS[2]], True, 0),
        # if_empty for all/any on an empty list (default: unknown, never passing)
        (Check("ups", "all", T_ON), [], None, []),
        (Check("ups", "all", T_ON, if_empty="pass"), [], True, []),
        (Check("ups", "any", T_ON, if_empty="fail"), [], False, []),
        # where-filter undecided for an item: it only matters if it could change the answer
        (Check("ups", "all", T_ON, where=(W_LB,), if_empty="pass"), [UPS[0], UPS[2]], None, [UPS[2]]),
        (Check("ups", "all", ItemTest("name", "ne", "z"), where=(W_LB,)), [UPS[1], UPS[2]], True, 1),
        (Check("ups", "any", ItemTest("name", "eq", "z"), where=(W_LB,)), [UPS[1], UPS[2]], False, [{**UPS[1]}]),
    ],
)
def test_expect_modes(check: Check, items: Any, verdict: Optional[bool], observed: Any) -> None:
    outcome, shown, message = evaluate_check(check, {"ups": items}, NOW)
    assert (outcome, shown) == (verdict, observed), message
    assert message


def test_unknown_messages_name_a_future_time_and_an_incomplete_list() -> None:
    future = {"backups": [{"name": "db", "last_success_at": "2036-11-20T03:12:44Z"}]}
    outcome, shown, message = evaluate_check(
        Check("backups", "all", ItemTest("last_success_at", "max_age", "26h"), show=("name",)), future, NOW
    )
    assert (outcome, shown) == (None, [{"name": "db"}])
    assert message == (
        "1 of 1 unknown for last_success_at max_age '26h': "
        "last_success_at: 2036-11-20T03:12:44Z is in the future, beyond 10 min of clock skew"
    )
    value = evaluate_check(Check("at", "value", ItemTest("", "max_age", "1h")), {"at": "2036-11-20"}, NOW)
    assert value[0] is None and value[2].endswith(": value: 2036-11-20 is in the future, beyond 10 min of clock skew")
    sockets = {"sockets": [{"exposure": "all", "tags": [None]}, {"exposure": "loopback", "tags": [None]}]}
    where = (ItemTest("exposure", "ne", "loopback"), ItemTest("tags", "contains", "database"))
    outcome, shown, message = evaluate_check(Check("sockets", "none", where=where), sockets, NOW)
    assert (outcome, message) == (None, "1 sockets undecided: tags: part of what decides it was not seen")


def test_value_and_list_checks_on_missing_or_wrong_shapes_are_unknown() -> None:
    assert evaluate_check(Check("ups_count", "value", ItemTest("", "ge", 1)), {}, NOW)[0] is None
    assert evaluate_check(Check("a.b", "value", ItemTest("", "eq", 2)), {"a": {"b": 2}}, NOW)[0] is True
    outcome, _observed, message = evaluate_check(Check("ups", "all", T_ON), {"ups": {"a": 1}}, NOW)
    assert (outcome, message) == (None, "ups was not reported as a list")


def rule(check: Check, max_age: str = "20m", when_not_present: str = "fail") -> Rule:
    return Rule("r", 1, "t", ("M01",), "high", "power", check, parse_duration(max_age),
                when_not_present=when_not_present)  # fmt: skip


def record(status: str = "complete", age_min: float = 1, **observed: Any) -> Dict[str, Any]:
    gaps = [{"what": "upsd", "reason": "refused"}] if status in ("partial", "not_present") else []
    return {"collected_at": ago(minutes=age_min), "status": status, "observed": observed, "gaps": gaps,
            "error": "timed out after 10 s" if status == "error" else None}  # fmt: skip


UPS_PRESENT = Check("ups_count", "value", ItemTest("", "ge", 1))


@pytest.mark.parametrize(
    ("the_rule", "the_record", "verdict", "message_part"),
    [
        (rule(UPS_PRESENT), None, Verdict.STALE, "no evidence from the power collector yet"),
        (
            rule(UPS_PRESENT),
            record(age_min=21, ups_count=1),
            Verdict.STALE,
            "evidence is 21 min old (evidence older than 20 min",
        ),
        (rule(UPS_PRESENT), record(age_min=19, ups_count=1), Verdict.PASSING, "t (observed: 1)"),
        (rule(UPS_PRESENT), record(ups_count=0), Verdict.FAILING, "t: not met (observed: 0)"),
        (rule(UPS_PRESENT), record("error"), Verdict.UNKNOWN, "power collector error: timed out after 10 s"),
        (rule(UPS_PRESENT), record("partial"), Verdict.UNKNOWN, "not seen: upsd: refused"),
        (rule(UPS_PRESENT), record("not_present"), Verdict.FAILING, "not present on this node: upsd: refused"),
        (rule(UPS_PRESENT, when_not_present="pass"), record("not_present"), Verdict.PASSING, "not applicable"),
        (rule(UPS_PRESENT, when_not_present="unknown"), record("not_present"), Verdict.UNKNOWN, "not present"),
    ],
)
def test_evaluate_verdicts(
    the_rule: Rule, the_record: Optional[Mapping[str, Any]], verdict: Verdict, message_part: str
) -> None:
    result = evaluate(the_rule, the_record, NOW)
    assert result.verdict is verdict
    assert message_part in result.message
    if verdict is Verdict.FAILING and the_record and the_record["status"] == "complete":
        assert result.observed == 0
    if the_record is not None:
        assert result.evidence_at is not None


def test_no_input_ever_yields_passing_from_missing_facts() -> None:
    """Every shipped rule on empty observed facts: unknown or failing, never passing."""
    policy = parse_policy(SHIPPED.read_text(), str(SHIPPED))
    for r in policy.rules:
        result = evaluate(r, {"collected_at": ago(minutes=1), "status": "complete", "observed": {}, "gaps": []}, NOW)
        assert result.verdict in (Verdict.UNKNOWN, Verdict.FAILING), (r.id, result.message)


# ---------------------------------------------------------------- real evidence shapes
ROOT = SHIPPED.parents[1]


def _fields(r: Rule) -> list[str]:
    """Every field a rule reads: the check path, and test/where/show fields inside its items."""
    check = r.check
    inner = [t.field for t in (check.test, *check.where) if t is not None and t.field] + list(check.show)
    if check.expect == "value":
        return [check.path + ("." + check.test.field if check.test and check.test.field else "")]
    return [check.path] + [f"{check.path}[].{f}" for f in inner]


def test_every_field_the_shipped_policy_reads_is_documented_by_its_collector() -> None:
    """A misspelt field would be unknown forever: each must appear in docs/collectors/<name>.md."""
    import re

    from collectors import REGISTRY

    policy = parse_policy(SHIPPED.read_text(), str(SHIPPED))
    missing = []
    for r in policy.rules:
        assert r.collector in REGISTRY, f"rule {r.id}: no collector {r.collector!r}"
        doc = (ROOT / "docs" / "collectors" / f"{r.collector}.md").read_text()
        section = doc[doc.index("## Observed fields") : doc.index("## Status")]
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*(?:\[\])?(?:\.[A-Za-z_][A-Za-z0-9_]*)*", section))
        for name in _fields(r):
            leaf = name.rpartition("[].")[2]
            # documented as `ups[].on_line`, or in the list's own table as `on_line`; a nested
            # `process.name` / `restore_test.tested_at` needs each part documented
            found = name in words or leaf in words or all(part in words for part in leaf.split("."))
            if not found:
                missing.append(f"{r.id}: {name}")
    assert missing == []


def _by_id(observed: Mapping[str, Any], collector: str, at: datetime = NOW) -> Dict[str, Any]:
    return judge(collector, {"status": "complete", "observed": observed, "gaps": []}, at)


def test_shipped_disk_rules_on_the_real_collector_output() -> None:
    from tests.collectors.disk_encryption.helpers import run

    outcome, _runner = run("debian-12_lvm-on-luks")
    results = _by_id(outcome.observed, "disk_encryption")
    # a standard Debian LUKS install: / encrypted, /boot and /boot/efi clear by design (boot: true)
    assert results["disk-mounts-encrypted"].verdict is Verdict.PASSING, results["disk-mounts-encrypted"].message
    assert results["disk-swap-encrypted"].verdict is Verdict.PASSING
    # the same machine judged with /boot as data (boot_mountpoints: []): the clear partitions fail
    strict, _runner = run("debian-12_lvm-on-luks", boot_mountpoints=[])
    mounts = _by_id(strict.observed, "disk_encryption")["disk-mounts-encrypted"]
    assert mounts.verdict is Verdict.FAILING
    assert [m["mountpoint"] for m in mounts.observed] == ["/boot", "/boot/efi"]
    assert all(m["fstype"] and m["chain"] for m in mounts.observed)  # show fields exist, not null
    # the captured unencrypted root fails; zram swap (RAM only) is not judged, / on ZFS-on-LUKS passes
    clear, _runner = run("debian-12_unencrypted-root_captured")
    assert _by_id(clear.observed, "disk_encryption")["disk-mounts-encrypted"].verdict is Verdict.FAILING
    tools = {
        "zfs": "zfs-get_debian-12_zfs-2.1.11_on-luks.txt",
        "zpool": "zpool-status-PL_debian-12_zfs-2.1.11_on-luks.txt",
    }
    zfs, _runner = run("debian-12_zfs-on-luks", outputs=tools)
    assert [(s["device"], s["encrypted"]) for s in zfs.observed["swaps"]] == [("zram0", False)]
    verdicts = {k: v.verdict for k, v in _by_id(zfs.observed, "disk_encryption").items()}
    assert verdicts == {"disk-mounts-encrypted": Verdict.PASSING, "disk-swap-encrypted": Verdict.PASSING}


def test_shipped_ports_rules_on_the_real_collector_output() -> None:
    from collectors.ports import SPEC
    from collectors.ports.collect import assemble
    from collectors.settings import defaults
    from tests.collectors.ports.helpers import load_capture

    entries, lookup_ = load_capture("psutil-net-connections_debian-12_psutil-7.2.2_loopback-services.json")
    captured = assemble(entries, lookup_, defaults(SPEC.settings), is_root=True).observed
    # 0.0.0.0:2024 is held by no process this PID namespace sees: it could be any service
    results = _by_id(captured, "ports")
    assert {k: v.verdict for k, v in results.items()} == dict.fromkeys(results, Verdict.UNKNOWN)
    assert results["ports-no-exposed-database"].observed == [
        {
            "protocol": "tcp",
            "address": "0.0.0.0",
            "port": 2024,
            "services": [],
            "process.name": None,
            "process.pid": None,
        }
    ]
    assert results["ports-no-remote-service"].message == (
        "cannot tell whether 0.0.0.0:2024/tcp (owner not seen) is a remote-service port:"
        " part of what decides it was not seen"
    )
    # the sockets whose owners were seen, all on loopback: every rule passes
    observed = dict(captured, sockets=[s for s in captured["sockets"] if s["process"] is not None])
    results = _by_id(observed, "ports")
    assert {k: v.verdict for k, v in results.items()} == dict.fromkeys(results, Verdict.PASSING)
    # the same mariadb socket bound to every interface: the database rule fails and names it
    exposed = [dict(s, exposure="all", address="0.0.0.0") if s["port"] == 3306 else s for s in observed["sockets"]]
    failing = _by_id(dict(observed, sockets=exposed), "ports")["ports-no-exposed-database"]
    assert failing.verdict is Verdict.FAILING
    assert failing.observed == [
        {
            "protocol": "tcp",
            "address": "0.0.0.0",
            "port": 3306,
            "services": ["mysql"],
            "process.name": "mariadbd",
            "process.pid": failing.observed[0]["process.pid"],
        }
    ]
    assert failing.message == (
        f"mariadbd (pid {failing.observed[0]['process.pid']}) listens on 0.0.0.0:3306/tcp (mysql),"
        " a database reachable beyond loopback"
    )


def test_shipped_backup_rules_on_the_real_collector_output(tmp_path: Path) -> None:
    import shutil

    from collectors.backup import SPEC
    from collectors.base import Context
    from collectors.settings import validate

    fixtures = ROOT / "tests" / "fixtures" / "backup"
    (tmp_path / "proc/self").mkdir(parents=True)
    shutil.copy(fixtures / "mountinfo_debian-12_nfs4-backup-mount.txt", tmp_path / "proc/self/mountinfo")
    (tmp_path / "var/lib/tillsyn/restore-tests").mkdir(parents=True)
    shutil.copy(
        fixtures / "restore-test_tillsyn-format_passed.json", tmp_path / "var/lib/tillsyn/restore-tests/pg.json"
    )
    (tmp_path / "var/lib/pgbackup").mkdir(parents=True)
    shutil.copy(fixtures / "marker_tillsyn-format_success.json", tmp_path / "var/lib/pgbackup/last.json")
    settings = validate({"backups": [{"name": "pg", "type": "marker", "marker": "/var/lib/pgbackup/last.json"}]},
                        SPEC.settings, "collectors.backup")  # fmt: skip
    observed = SPEC.collect(Context(root=tmp_path, settings=settings)).observed
    entry = observed["backups"][0]
    success = datetime.fromisoformat(entry["last_success_at"].replace("Z", "+00:00"))
    fresh = _by_id(observed, "backup", success + timedelta(hours=25))
    verdicts = {k: v.verdict for k, v in fresh.items()}
    assert verdicts["backup-recent"] is Verdict.PASSING
    assert verdicts["backup-separate"] is Verdict.PASSING  # the marker's repository is on an NFS mount
    assert verdicts["backup-encrypted"] is Verdict.PASSING
    assert verdicts["backup-restore-passed"] is Verdict.PASSING
    old = _by_id(observed, "backup", success + timedelta(hours=27))["backup-recent"]
    assert old.verdict is Verdict.FAILING
    assert old.observed[0]["last_success_at"] == entry["last_success_at"]
