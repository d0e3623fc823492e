"""Where the centre spends a phase: py-spy samples of the serving process, summed per function.

Optional (``--py-spy PATH`` of ``bench.ingest_load``; py-spy is on PyPI).  The raw
output is py-spy's collapsed stacks, one ``frame;frame;... count`` per line; the
summary counts each function once per sample that has it anywhere on the stack
(inclusive share), which is what points at the cost an owner can remove.
Frames are named by line, so one function can appear on several lines.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from typing import List, Optional, Tuple


class Sampler:
    def __init__(self, py_spy: Path, pid: int, output: Path) -> None:
        self.output = output
        argv = [str(py_spy), "record", "--pid", str(pid), "--format", "raw", "--output", str(output)]
        self.proc: Optional[subprocess.Popen[bytes]] = subprocess.Popen(
            # --gil: only the thread holding the GIL, i.e. where this one-process server's CPU goes
            # (threads waiting on the database or a lock are not a cost of the process).
            [*argv, "--rate", "200", "--gil", "--nonblocking"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def stop(self) -> None:
        """py-spy writes its file when interrupted."""
        if self.proc is not None:
            self.proc.send_signal(2)
            self.proc.wait(timeout=30)
            self.proc = None


def summary(path: Path, top: int = 25) -> Tuple[int, List[Tuple[str, int]]]:
    """(samples, [(function (file:line), inclusive samples)]) for the busiest functions."""
    if not path.exists():
        return 0, []
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        for frame in set(frames):
            inclusive[frame] += count
    return total, inclusive.most_common(top)
