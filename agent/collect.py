"""Running collectors so that one failure or hang never stops the others.

Each collector runs in its own daemon thread, concurrently (most time is spent
waiting on sockets and commands).  A collector that raises is reported as errored
with the exception (secrets scrubbed); one that overruns its timeout is reported
as errored and abandoned (its commands are killed by the runner's own timeouts).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from agent.config import AgentConfig
from agent.scrub import scrub
from collectors.base import CollectorSpec, Context
from evidence.model import Evidence, Outcome


@dataclass
class _Slot:
    outcome: Optional[Outcome] = None
    started: float = 0.0
    finished: float = 0.0


def _call(spec: CollectorSpec, ctx: Context, slot: _Slot) -> None:
    slot.started = time.monotonic()
    try:
        outcome = spec.collect(ctx)
        if not isinstance(outcome, Outcome):
            outcome = Outcome.failed(f"collector returned {type(outcome).__name__}, not an Outcome")
    except Exception as err:  # noqa: BLE001  any collector bug becomes an errored record
        outcome = Outcome.failed(scrub(f"collector crashed: {type(err).__name__}: {err}"))
    slot.outcome = outcome
    slot.finished = time.monotonic()


def run_collectors(
    config: AgentConfig,
    *,
    only: Optional[Sequence[str]] = None,
    root: Path = Path("/"),
    registry: Optional[Dict[str, CollectorSpec]] = None,
    base: Optional[Context] = None,
    clock: Callable[[], float] = time.monotonic,
) -> List[Evidence]:
    """Run the enabled collectors (or those named in ``only``) and return their evidence."""
    if registry is None:
        from collectors import REGISTRY

        registry = REGISTRY
    names = list(only) if only else [n for n, c in config.collectors.items() if c.enabled]
    base_ctx = base or Context(root=root, command_timeout=config.command_timeout)
    jobs = []
    for name in names:
        spec = registry[name]
        ctx = base_ctx.with_settings(config.collectors[name].settings)
        slot = _Slot()
        moment = ctx.now()
        thread = threading.Thread(target=_call, args=(spec, ctx, slot), name=f"collector-{name}", daemon=True)
        thread.start()
        jobs.append((spec, slot, thread, moment, clock()))
    records = []
    for spec, slot, thread, moment, started in jobs:
        timeout = config.collectors[spec.name].timeout
        thread.join(max(0.0, started + timeout - clock()))
        if slot.outcome is None:
            outcome = Outcome.failed(f"timed out after {timeout:g} s; abandoned")
            duration = timeout * 1000
        else:
            outcome = slot.outcome
            duration = (slot.finished - slot.started) * 1000
        records.append(
            Evidence(
                collector=spec.name,
                collector_version=spec.version,
                controls=spec.controls,
                collected_at=moment,
                duration_ms=duration,
                status=outcome.status,
                observed=outcome.observed,
                gaps=tuple(outcome.gaps),
                error=outcome.error,
            )
        )
    return records
