"""``tillsyn-agent check``: this machine's evidence against the policy, like a one-shot audit.

Uses the same rule engine as the centre.  Exit status 0 only when every rule
passes; 1 when any rule fails or cannot be decided (unknown is never passing).  The text says each
rule's sentence, which carries the observed value; ``--json`` adds the observed facts themselves.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from agent.collect import run_collectors
from agent.config import AgentConfig, ConfigError
from collectors import REGISTRY
from evidence.policy import PolicyError, parse_policy, policy_path
from evidence.rules import Verdict, evaluate

_ORDER = {Verdict.FAILING: 0, Verdict.UNKNOWN: 1, Verdict.STALE: 2, Verdict.PASSING: 3}
_MARK = {Verdict.PASSING: "pass", Verdict.FAILING: "FAIL", Verdict.UNKNOWN: "UNKNOWN", Verdict.STALE: "STALE"}


def run_check(
    config: AgentConfig,
    policy_flag: Optional[str],
    root: Path,
    *,
    as_json: bool = False,
    state_dir: Optional[Path] = None,
) -> int:
    path = policy_path(Path(policy_flag) if policy_flag else None)
    try:
        policy = parse_policy(path.read_text(encoding="utf-8"), str(path), list(REGISTRY))
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror or err}") from err
    except PolicyError as err:
        raise ConfigError(str(err)) from err
    rules = policy.rules_for()
    needed = sorted({r.collector for r in rules} & set(REGISTRY))
    records = {r.collector: r.to_dict() for r in run_collectors(config, only=needed, root=root, state_dir=state_dir)}
    now = datetime.now(timezone.utc)
    results = [evaluate(rule, records.get(rule.collector), now) for rule in rules]
    if as_json:
        json.dump(
            [
                {
                    "rule": r.rule.id,
                    "title": r.rule.title,
                    "controls": list(r.rule.controls),
                    "severity": r.rule.severity,
                    "verdict": r.verdict.value,
                    "message": r.message,
                    "observed": r.observed,
                }
                for r in results
            ],
            sys.stdout,
            indent=2,
            default=str,
        )
        sys.stdout.write("\n")
    else:
        failing = {r.rule.id for r in results if r.verdict is Verdict.FAILING}
        width = max([28, *(len(r.rule.id) + 1 for r in results)])  # a long id keeps its title apart
        for result in sorted(results, key=lambda r: (_ORDER[r.verdict], r.rule.controls, r.rule.id)):
            rule = result.rule
            print(f"{_MARK[result.verdict]:<8} {','.join(rule.controls):<8} {rule.id:<{width}} {rule.title}")
            if result.verdict is not Verdict.PASSING:
                print(f"{'':<18}{result.message}")
                causes = [c for c in rule.depends_on if c in failing]
                if causes and result.verdict is Verdict.FAILING:  # the centre pages only the cause
                    print(f"{'':<18}suppressed by {causes[0]}: its cause fails, so it opens no incident of its own")
        bad = sum(r.verdict is not Verdict.PASSING for r in results)
        print(f"\n{len(results) - bad} of {len(results)} rules pass ({path})")
    return 0 if all(r.verdict is Verdict.PASSING for r in results) else 1
