"""Policy files: the shipped one parses; every error names the file, the rule and the reason;
overrides by tenant, group and labels apply in file order (later wins)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml

from evidence.controls import CONTROLS
from evidence.policy import PolicyError, parse_policy
from evidence.rules import Verdict, evaluate

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "policy.yaml"
SRC = "/etc/tillsyn/policy.yaml"


def test_the_shipped_policy_reads_the_same_with_libyaml_as_with_the_pure_parser() -> None:
    """``parse_policy`` reads with libyaml where PyYAML has it; the shipped policy must mean the same either way."""
    from evidence.policy import _StrictCLoader, _StrictLoader

    text = SHIPPED.read_text()
    assert yaml.__with_libyaml__  # Debian's python3-yaml and the locked wheel both have it
    assert yaml.load(text, Loader=_StrictCLoader) == yaml.load(text, Loader=_StrictLoader)


def test_the_shipped_policy_parses_and_is_sound() -> None:
    from collectors import REGISTRY

    policy = parse_policy(SHIPPED.read_text(), str(SHIPPED), known_collectors=tuple(REGISTRY))
    assert len(policy.rules) == 47
    ids = [r.id for r in policy.rules]
    assert len(set(ids)) == len(ids)
    for rule in policy.rules:
        assert rule.title and rule.rationale and rule.remediation, rule.id
        assert rule.iso27001 and rule.gdpr, rule.id
        # every reference a rule cites belongs to one of its controls (docs/controls.md), or is the
        # cryptography clause (A.8.24, GDPR 32(1)(a)) / A.8.22 network segregation cited beside it
        iso = {c for control in rule.controls for c in CONTROLS[control].iso27001}
        gdpr = {g for control in rule.controls for g in CONTROLS[control].gdpr}
        assert set(rule.iso27001) <= iso | {"A.8.22", "A.8.24"}, (rule.id, rule.iso27001)
        assert set(rule.gdpr) <= gdpr | {"32(1)(a)"}, (rule.id, rule.gdpr)
    # every measure a node can prove has at least one rule (M08, M10, M12, M13 come later)
    assert {c for r in policy.rules for c in r.controls} == {
        "M01", "M02", "M03", "M04", "M05", "M06", "M07", "M09", "M11"}  # fmt: skip
    thresholds = {r.id: r.check.test.value for r in policy.rules if r.check.test is not None}
    assert (thresholds["backup-recent"], thresholds["av-signatures-fresh"],
            thresholds["power-self-test-recent"]) == ("26h", "48h", "31d")  # fmt: skip


def one_rule(**over: Any) -> Dict[str, Any]:
    rule: Dict[str, Any] = {
        "id": "ups",
        "title": "A UPS",
        "controls": ["M01"],
        "severity": "high",
        "collector": "power",
        "max_age": "20m",
        "check": {"path": "ups_count", "op": "ge", "value": 1},
    }
    rule.update(over)
    return rule


def text_of(*rules: Dict[str, Any], overrides: Any = None) -> str:
    data: Dict[str, Any] = {"version": 1, "rules": list(rules)}
    if overrides is not None:
        data["overrides"] = overrides
    return yaml.safe_dump(data, sort_keys=False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (text_of(one_rule(colector="power")), "rule 'ups': unknown key 'colector'"),
        (text_of(one_rule(check={"path": "x", "op": "gte", "value": 1})),
         "rule 'ups'.check.test.op: unknown operator 'gte' (known: contains, eq, ge,"),
        (text_of(one_rule(check={"path": "x", "op": "ge", "value": 1, "feild": "a"})),
         "rule 'ups'.check.feild: unknown key"),
        (text_of(one_rule(max_age="20 minutes")), "rule 'ups'.max_age: not a duration: '20 minutes'"),
        (text_of(one_rule(check={"path": "t", "op": "max_age", "value": "2 days"})),
         "rule 'ups'.check.test.value: not a duration: '2 days'"),
        (text_of(one_rule(check={"path": "x", "op": "ge"})), "rule 'ups'.check.test.value: operator ge needs a value"),
        (text_of(one_rule(check={"path": "x", "op": "is_true", "value": False})),
         "rule 'ups'.check.test.value: operator is_true takes no value"),
        (text_of(one_rule(check={"path": "x", "op": "in", "value": "clamav"})),
         "rule 'ups'.check.test.value: operator in needs a list"),
        (text_of(one_rule(controls=["M14"])), "rule 'ups': controls must name at least one of M01-M13 (not 'M14')"),
        (text_of(one_rule(controls=[])), "rule 'ups': controls must name at least one of M01-M13"),
        (text_of(one_rule(), one_rule()), "rule 'ups': defined twice"),
        (text_of(one_rule(check={"path": "x", "op": "matches", "value": "pass(|"})),
         "rule 'ups'.check.test.value: not a regular expression: missing ), unterminated subpattern"),
        (text_of(one_rule(severity="urgent")), "rule 'ups': severity must be one of info, low, medium, high, critical"),
        (text_of(one_rule(enabled="no")), "rule 'ups'.enabled: expected true or false, got 'no'"),
        (text_of(one_rule(id="x" * 65)), "id must be 1-64 characters"),
        (text_of(one_rule(when_not_present="maybe")), "rule 'ups': when_not_present must be fail, pass or unknown"),
        (text_of(one_rule(check={"path": "x", "expect": "every", "op": "is_true"})),
         "rule 'ups'.check.expect: must be one of value, all, any, none, count"),
        (text_of(one_rule(check={"path": "x", "expect": "all"})), "rule 'ups'.check: expect all needs a test"),
        (text_of(one_rule(check={"path": "x", "op": "ge", "value": 1, "where": [{"field": "a", "op": "is_true"}]})),
         "rule 'ups'.check: where and if_empty apply to lists"),
        (text_of(one_rule(check={"path": "x", "expect": "all", "op": "is_true", "if_empty": "yes"})),
         "rule 'ups'.check.if_empty: must be pass, fail or unknown"),
        (text_of(one_rule(), overrides=[{"match": {"group": "lab"}, "rules": {"upz": {"enabled": False}}}]),
         "overrides[0]: no rule 'upz' to override"),
        (text_of(one_rule(), overrides=[{"match": {"group": "lab"}, "rules": {"ups": {"max_age": "soon"}}}]),
         "overrides[0].rules.ups.max_age: not a duration: 'soon'"),
        (text_of(one_rule(), overrides=[{"match": {"group": "lab"}, "rules": {"ups": {"title": "x"}}}]),
         "overrides[0].rules.ups: may change only enabled, max_age, severity, value, when_not_present"),
        (text_of(one_rule(), overrides=[{"match": {"group": "lab"}, "rules": {"ups": {"enabled": "off"}}}]),
         "overrides[0].rules.ups.enabled: expected true or false, got 'off'"),
        (text_of(one_rule(), overrides=[{"match": {"labels": ["a"]}, "rules": {"ups": {"enabled": False}}}]),
         "overrides[0].match.labels: expected a mapping of label: value"),
        (text_of(one_rule(), overrides=[{"match": {"host": "a"}, "rules": {"ups": {"enabled": False}}}]),
         "overrides[0].match: unknown key 'host'"),
        (text_of(one_rule(check={"path": "x", "op": "matches", "value": "a"}),
                 overrides=[{"match": {}, "rules": {"ups": {"value": "(("}}}]),
         "overrides[0].rules.ups.value: not a regular expression"),
        (text_of(one_rule(check={"path": "x", "op": "is_true"}), overrides=[{"rules": {"ups": {"value": 3}}}]),
         "overrides[0].rules.ups.value: rule 'ups' has no value to change"),
        # libyaml refuses it too, but the message is the pure parser's, as it always was
        ("rules:\n  - id: ups\n    title: [unclosed\n", "line 4: not valid YAML: expected ',' or ']', but got"),
        ("rules: " + "[" * 100000, "not a policy: nested too deeply"),
        ("rules:\n  - id: ups\n    check: {path: a, op: is_true}\n    check: {path: b, op: is_true}\n",
         "line 4: not valid YAML: key 'check' given twice in one mapping"),
        ("rules: {}\n", "expected a mapping with a 'rules' list"),
        ("version: 2\nrules: []\n", "version: unsupported policy format 2"),
        ("rules: []\nrulez: []\n", "unknown top-level key 'rulez'"),
        ("rules:\n  - just a string\n", "rules[0]: expected a mapping with a string 'id'"),
    ],
)  # fmt: skip
def test_errors_name_the_file_the_rule_and_the_reason(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, SRC)
    assert str(caught.value).startswith(f"{SRC}: ")
    assert message in str(caught.value)


def test_unknown_collector_is_refused_when_the_collectors_are_known() -> None:
    with pytest.raises(PolicyError, match=r"rule 'ups': unknown collector 'powr'"):
        parse_policy(text_of(one_rule(collector="powr")), SRC, known_collectors=("power",))


def test_overrides_by_tenant_group_and_labels_later_wins() -> None:
    policy = parse_policy(
        text_of(
            one_rule(),
            one_rule(id="self-test", check={"path": "t", "op": "max_age", "value": "31d"}),
            overrides=[
                {"name": "lab", "match": {"group": "lab"}, "rules": {"ups": {"enabled": False}}},
                {"match": {"tenant": "acme"}, "rules": {"self-test": {"value": "62d", "severity": "low"}}},
                {"match": {"tenant": "acme", "labels": {"site": "sto"}},
                 "rules": {"self-test": {"value": "7d", "max_age": "1h", "when_not_present": "pass"}}},
                {"match": {"labels": {"site": "sto", "rack": 4}}, "rules": {"ups": {"enabled": True}}},
            ],
        ),
        SRC,
    )  # fmt: skip

    def view(tenant: Any = None, group: Any = None, labels: Any = None) -> Dict[str, Any]:
        return {r.id: (r.check.test and r.check.test.value, r.severity, r.max_age_s, r.when_not_present)
                for r in policy.rules_for(tenant, group, labels)}  # fmt: skip

    base = {"ups": (1, "high", 1200.0, "fail"), "self-test": ("31d", "high", 1200.0, "fail")}
    assert view() == base
    assert view(group="lab") == {"self-test": base["self-test"]}
    assert view(tenant="acme")["self-test"] == ("62d", "low", 1200.0, "fail")
    assert view(tenant="acme", labels={"site": "sto"})["self-test"] == ("7d", "low", 3600.0, "pass")
    assert view(tenant="other", labels={"site": "sto"})["self-test"] == base["self-test"]
    # the later override enables again what the lab override disabled, for the matching labels only
    assert "ups" in view(group="lab", labels={"site": "sto", "rack": "4"})
    assert "ups" not in view(group="lab", labels={"site": "sto"})
    # the override really changes the verdict: 40 days since the self-test
    rec = {"collected_at": "2026-11-21T12:00:00Z", "status": "complete", "observed": {"t": "2026-10-12"}, "gaps": []}
    now = datetime(2026, 11, 21, 12, 1, tzinfo=timezone.utc)
    verdicts = {
        who: {r.id: evaluate(r, rec, now).verdict for r in policy.rules_for(*who)}["self-test"]
        for who in [(None, None, None), ("acme", None, None)]
    }
    assert verdicts == {(None, None, None): Verdict.FAILING, ("acme", None, None): Verdict.PASSING}
