"""Reading a policy file: rules and per-group/label overrides, checked whole.

A policy with any error is refused with the file, the rule and the reason; the
caller keeps the policy it had.  Format: docs/policy.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from importlib.resources import files
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import yaml

from evidence.controls import CONTROLS
from evidence.rules import OPERATORS, OPS_WITHOUT_VALUE, Check, Rule, Test, parse_duration
from evidence.sentences import parse_say

SYSTEM_POLICY = Path("/etc/tillsyn/policy.yaml")


def shipped(name: str) -> Path:
    """A shipped default from the repository's ``config/`` (agent.yaml, central.yaml, policy.yaml),
    installed as the package data of ``evidence.defaults`` (setup.py), so an installed agent or
    centre finds it without the repository."""
    resource = files("evidence.defaults") / name
    # an installed package is a directory on disk (wheel, .deb, .rpm), never a zip archive
    assert isinstance(resource, Path), f"evidence.defaults is not on disk: {resource}"
    return resource


SHIPPED_POLICY = shipped("policy.yaml")
SEVERITIES = ("info", "low", "medium", "high", "critical")


def policy_path(configured: Optional[Path]) -> Path:
    """The configured file, else /etc/tillsyn/policy.yaml when present, else the shipped default
    (one lookup for the centre and for ``tillsyn-agent check``)."""
    if configured is not None:
        return configured
    return SYSTEM_POLICY if SYSTEM_POLICY.exists() else SHIPPED_POLICY


EXPECT = ("value", "all", "any", "none", "count")
_RULE_KEYS = {
    "id",
    "version",
    "title",
    "controls",
    "severity",
    "collector",
    "check",
    "max_age",
    "rationale",
    "remediation",
    "iso27001",
    "gdpr",
    "when_not_present",
    "enabled",
    "say",
    "depends_on",
}
_CHECK_KEYS = {"path", "expect", "test", "where", "show", "if_empty", "op", "value", "field"}
_OVERRIDABLE = {"enabled", "severity", "max_age", "value", "when_not_present"}
_RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # stored in findings.rule_id (64 chars)


class PolicyError(ValueError):
    """The policy cannot be used; the message names the file, rule and reason."""


@dataclass(frozen=True)
class Override:
    name: str
    tenant: Optional[str]
    group: Optional[str]
    labels: Mapping[str, str]
    changes: Mapping[str, Mapping[str, Any]]

    def applies(self, tenant: Optional[str], group: Optional[str], labels: Mapping[str, str]) -> bool:
        return (
            (self.tenant is None or self.tenant == tenant)
            and (self.group is None or self.group == group)
            and all(labels.get(k) == v for k, v in self.labels.items())
        )


@dataclass(frozen=True)
class Policy:
    rules: Tuple[Rule, ...]
    overrides: Tuple[Override, ...] = ()
    source: str = ""

    def rules_for(
        self, tenant: Optional[str] = None, group: Optional[str] = None, labels: Optional[Mapping[str, str]] = None
    ) -> List[Rule]:
        """The enabled rules for a node, overrides applied in file order (later wins)."""
        labels = labels or {}
        out = []
        for rule in self.rules:
            effective = rule
            for override in self.overrides:
                if rule.id in override.changes and override.applies(tenant, group, labels):
                    effective = _apply(effective, override.changes[rule.id])
            if effective.enabled:
                out.append(effective)
        return out


def _apply(rule: Rule, change: Mapping[str, Any]) -> Rule:
    updated = rule
    if "enabled" in change:
        updated = replace(updated, enabled=change["enabled"] is True)
    if "severity" in change:
        updated = replace(updated, severity=str(change["severity"]))
    if "max_age" in change:
        updated = replace(updated, max_age_s=parse_duration(change["max_age"]))
    if "when_not_present" in change:
        updated = replace(updated, when_not_present=str(change["when_not_present"]))
    if "value" in change and updated.check.test is not None:
        test = replace(updated.check.test, value=change["value"])
        updated = replace(updated, check=replace(updated.check, test=test))
    return updated


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise PolicyError(f"{where}: expected true or false, got {value!r}")
    return value


def _strs(value: Any, where: str) -> Tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where}: expected a list of strings")
    return tuple(value)


def _test(data: Any, where: str) -> Test:
    if not isinstance(data, Mapping):
        raise PolicyError(f"{where}: expected a mapping with op (and field, value)")
    unknown = set(data) - {"field", "op", "value"}
    if unknown:
        raise PolicyError(f"{where}.{sorted(unknown)[0]}: unknown key")
    op = data.get("op")
    if op not in OPERATORS:
        raise PolicyError(f"{where}.op: unknown operator {op!r} (known: {', '.join(sorted(OPERATORS))})")
    if op not in OPS_WITHOUT_VALUE and "value" not in data:
        raise PolicyError(f"{where}.value: operator {op} needs a value")
    if op in OPS_WITHOUT_VALUE and "value" in data:
        raise PolicyError(f"{where}.value: operator {op} takes no value")
    if not isinstance(data.get("field", ""), str):
        raise PolicyError(f"{where}.field: expected a dotted path (a string)")
    if op in ("in", "not_in") and not isinstance(data["value"], list):
        raise PolicyError(f"{where}.value: operator {op} needs a list")
    if op == "matches":
        try:
            re.compile(str(data["value"]))
        except re.error as err:
            raise PolicyError(f"{where}.value: not a regular expression: {err}") from err
    if op == "max_age":
        try:
            parse_duration(data["value"])
        except ValueError as err:
            raise PolicyError(f"{where}.value: {err}") from err
    return Test(str(data.get("field", "")), str(op), data.get("value"))


def _check(data: Any, where: str) -> Check:
    if not isinstance(data, Mapping) or not isinstance(data.get("path"), str):
        raise PolicyError(f"{where}: expected a mapping with a 'path'")
    unknown = set(data) - _CHECK_KEYS
    if unknown:
        raise PolicyError(f"{where}.{sorted(unknown)[0]}: unknown key")
    expect = data.get("expect", "value")
    if expect not in EXPECT:
        raise PolicyError(f"{where}.expect: must be one of {', '.join(EXPECT)}")
    test_data = data.get("test")
    if test_data is None and "op" in data:
        test_data = {k: data[k] for k in ("field", "op", "value") if k in data}
    test = _test(test_data, f"{where}.test") if test_data is not None else None
    if test is None and expect != "none":
        raise PolicyError(f"{where}: expect {expect} needs a test (op, value)")
    where_list = data.get("where") or []
    if not isinstance(where_list, list):
        raise PolicyError(f"{where}.where: expected a list of tests")
    if expect == "value" and (where_list or "if_empty" in data):
        raise PolicyError(f"{where}: where and if_empty apply to lists (expect all, any, none or count)")
    if_empty = data.get("if_empty", "unknown")
    if if_empty not in ("pass", "fail", "unknown"):
        raise PolicyError(f"{where}.if_empty: must be pass, fail or unknown")
    return Check(
        path=data["path"],
        expect=expect,
        test=test,
        where=tuple(_test(w, f"{where}.where[{i}]") for i, w in enumerate(where_list)),
        show=_strs(data.get("show"), f"{where}.show"),
        if_empty=if_empty,
    )


def _rule(data: Any, index: int, known_collectors: Optional[Sequence[str]]) -> Rule:
    if not isinstance(data, Mapping) or not isinstance(data.get("id"), str):
        raise PolicyError(f"rules[{index}]: expected a mapping with a string 'id'")
    where = f"rule {data['id']!r}"
    if not _RULE_ID.match(data["id"]):
        raise PolicyError(f"{where}: id must be 1-64 characters of A-Z a-z 0-9 _ . - (starting with a letter or digit)")
    unknown = set(data) - _RULE_KEYS
    if unknown:
        raise PolicyError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    for key in ("title", "collector", "severity"):
        if not isinstance(data.get(key), str):
            raise PolicyError(f"{where}: {key} is required (a string)")
    if data["severity"] not in SEVERITIES:
        raise PolicyError(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
    if known_collectors is not None and data["collector"] not in known_collectors:
        raise PolicyError(f"{where}: unknown collector {data['collector']!r}")
    controls = _strs(data.get("controls"), f"{where}.controls")
    bad = [c for c in controls if c not in CONTROLS]
    if not controls or bad:
        raise PolicyError(
            f"{where}: controls must name at least one of M01-M13" + (f" (not {bad[0]!r})" if bad else "")
        )
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise PolicyError(f"{where}: version must be a positive integer")
    try:
        max_age = parse_duration(data.get("max_age", "1h"))
    except ValueError as err:
        raise PolicyError(f"{where}.max_age: {err}") from err
    when = data.get("when_not_present", "fail")
    if when not in ("fail", "pass", "unknown"):
        raise PolicyError(f"{where}: when_not_present must be fail, pass or unknown")
    check = _check(data.get("check"), f"{where}.check")
    try:
        say = parse_say(data.get("say"), f"{where}.say", check.show)
    except ValueError as err:
        raise PolicyError(str(err)) from err
    depends_on = _strs(data.get("depends_on"), f"{where}.depends_on")
    if data["id"] in depends_on:
        raise PolicyError(f"{where}.depends_on: a rule cannot depend on itself")
    return Rule(
        id=data["id"],
        version=version,
        title=data["title"],
        controls=controls,
        severity=data["severity"],
        collector=data["collector"],
        check=check,
        max_age_s=max_age,
        rationale=str(data.get("rationale", "")),
        remediation=str(data.get("remediation", "")),
        iso27001=_strs(data.get("iso27001"), f"{where}.iso27001"),
        gdpr=_strs(data.get("gdpr"), f"{where}.gdpr"),
        when_not_present=when,
        enabled=_bool(data.get("enabled", True), f"{where}.enabled"),
        say=tuple(say.items()),
        depends_on=depends_on,
    )


def _check_dependencies(rules: Mapping[str, Rule]) -> None:
    """Every rule named in ``depends_on`` exists, and no rule depends on itself through others."""
    for rule in rules.values():
        for cause in rule.depends_on:
            if cause not in rules:
                raise PolicyError(f"rule {rule.id!r}.depends_on: no rule {cause!r} in this policy")
    for rule in rules.values():
        path, todo = [rule.id], list(rule.depends_on)
        seen = set()
        while todo:
            cause = todo.pop()
            if cause == rule.id:
                raise PolicyError(f"rule {rule.id!r}.depends_on: a cycle leads back to it ({' -> '.join(path)} ...)")
            if cause in seen:
                continue
            seen.add(cause)
            path.append(cause)
            todo.extend(rules[cause].depends_on)


def _check_change(rule: Rule, change: Mapping[str, Any], where: str) -> None:
    """Refuse now what would otherwise fail at evaluation time, on every report."""
    if "enabled" in change:
        _bool(change["enabled"], f"{where}.enabled")
    if "severity" in change and change["severity"] not in SEVERITIES:
        raise PolicyError(f"{where}.severity: must be one of {', '.join(SEVERITIES)}")
    if "when_not_present" in change and change["when_not_present"] not in ("fail", "pass", "unknown"):
        raise PolicyError(f"{where}.when_not_present: must be fail, pass or unknown")
    if "max_age" in change:
        try:
            parse_duration(change["max_age"])
        except ValueError as err:
            raise PolicyError(f"{where}.max_age: {err}") from err
    if "value" in change:
        test = rule.check.test
        if test is None or test.op in OPS_WITHOUT_VALUE:
            raise PolicyError(f"{where}.value: rule {rule.id!r} has no value to change")
        _test({"field": test.field, "op": test.op, "value": change["value"]}, f"{where}")


def _override(data: Any, index: int, rules: Mapping[str, Rule]) -> Override:
    where = f"overrides[{index}]"
    if not isinstance(data, Mapping):
        raise PolicyError(f"{where}: expected a mapping")
    match = data.get("match") or {}
    changes = data.get("rules") or {}
    if not isinstance(match, Mapping) or not isinstance(changes, Mapping) or not changes:
        raise PolicyError(f"{where}: needs 'match' (tenant, group, labels) and 'rules' (id: changes)")
    unknown = set(match) - {"tenant", "group", "labels"}
    if unknown:
        raise PolicyError(f"{where}.match: unknown key {sorted(unknown)[0]!r}")
    for key in ("tenant", "group"):
        if match.get(key) is not None and not isinstance(match[key], str):
            raise PolicyError(f"{where}.match.{key}: expected a string")
    labels = match.get("labels") or {}
    if not isinstance(labels, Mapping) or not all(isinstance(v, (str, int, float)) for v in labels.values()):
        raise PolicyError(f"{where}.match.labels: expected a mapping of label: value")
    for rule_id, change in changes.items():
        if rule_id not in rules:
            raise PolicyError(f"{where}: no rule {rule_id!r} to override")
        if not isinstance(change, Mapping) or not change or set(change) - _OVERRIDABLE:
            raise PolicyError(f"{where}.rules.{rule_id}: may change only {', '.join(sorted(_OVERRIDABLE))}")
        _check_change(rules[rule_id], change, f"{where}.rules.{rule_id}")
    return Override(
        str(data.get("name", where)),
        match.get("tenant"),
        match.get("group"),
        {str(k): str(v) for k, v in labels.items()},
        {str(k): dict(v) for k, v in changes.items()},
    )


class _NoDuplicateKeys(yaml.constructor.SafeConstructor):
    """Safe YAML that refuses a key given twice in one mapping (PyYAML silently keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Dict[Any, Any]:
        seen = set()
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


class _StrictLoader(_NoDuplicateKeys, yaml.SafeLoader):
    """PyYAML's pure-Python parser: its errors are the ones a policy author reads."""


if yaml.__with_libyaml__:  # PyYAML has CSafeLoader only when built with libyaml (Debian's python3-yaml is)

    class _StrictCLoader(_NoDuplicateKeys, yaml.CSafeLoader):
        """libyaml's parser with the same constructor."""


MAX_FLOW_BRACKETS_FOR_LIBYAML = 1000
"""libyaml's composer recurses in C once per level of nesting: a document with thousands of ``[``
or ``{`` overflows the C stack (a segmentation fault with Debian 12's python3-yaml 6.0 on Python
3.9).  Beyond this many brackets the pure parser reads it, whose recursion Python bounds."""


def libyaml_may_read(text: Union[str, bytes]) -> bool:
    """Whether libyaml may parse ``text`` safely: PyYAML has it, and nesting cannot be deep."""
    if not yaml.__with_libyaml__:
        return False
    if isinstance(text, bytes):
        return text.count(b"[") + text.count(b"{") <= MAX_FLOW_BRACKETS_FOR_LIBYAML
    return text.count("[") + text.count("{") <= MAX_FLOW_BRACKETS_FOR_LIBYAML


def _load(text: str) -> Any:
    """The YAML document in ``text``, read by libyaml where PyYAML has it.

    libyaml reads the shipped policy in about 9 ms of CPU, the pure-Python parser in about 95 ms,
    paid by every ``tillsyn-agent check`` and every policy load of the centre.  A document libyaml
    (or the duplicate-key check) refuses is read again by the pure parser, so every error keeps its
    wording (line, problem) and its recursion limit, as agent.yaml's loader does.
    """
    if libyaml_may_read(text):
        try:
            return yaml.load(text, Loader=_StrictCLoader)  # noqa: S506  a SafeLoader
        except yaml.YAMLError:
            pass
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506  a SafeLoader


def parse_policy(text: str, source: str, known_collectors: Optional[Sequence[str]] = None) -> Policy:
    """Parse and check a whole policy; raises :class:`PolicyError` naming ``source``."""
    try:
        try:
            data = _load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            line = f"line {mark.line + 1}: " if mark is not None else ""
            raise PolicyError(f"{line}not valid YAML: {getattr(err, 'problem', err)}") from err
        except RecursionError as err:  # the YAML parser recurses once per level of nesting
            raise PolicyError("not a policy: nested too deeply") from err
        if not isinstance(data, Mapping) or not isinstance(data.get("rules"), list):
            raise PolicyError("expected a mapping with a 'rules' list")
        unknown = set(data) - {"version", "rules", "overrides"}
        if unknown:
            raise PolicyError(f"unknown top-level key {sorted(unknown)[0]!r}")
        if data.get("version", 1) != 1:
            raise PolicyError(f"version: unsupported policy format {data.get('version')!r} (this centre reads 1)")
        rules = [_rule(r, i, known_collectors) for i, r in enumerate(data["rules"])]
        seen: Dict[str, Rule] = {}
        for rule in rules:
            if rule.id in seen:
                raise PolicyError(f"rule {rule.id!r}: defined twice")
            seen[rule.id] = rule
        _check_dependencies(seen)
        override_list = data.get("overrides") or []
        if not isinstance(override_list, list):
            raise PolicyError("overrides: expected a list")
        overrides = [_override(o, i, seen) for i, o in enumerate(override_list)]
    except PolicyError as err:
        raise PolicyError(f"{source}: {err}") from err
    return Policy(tuple(rules), tuple(overrides), source)
