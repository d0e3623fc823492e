"""A description of the machine a benchmark ran on, for docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def describe() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    distro = "Linux"
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return (
        f"{distro}, kernel {platform.release()}, {os.cpu_count()} CPU cores ({model}), "
        f"{mem_kib / 1024 / 1024:.0f} GiB RAM, Python {platform.python_version()}"
    )
