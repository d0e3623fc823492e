"""Run a module's ``main`` in this process, then report this process's peak RSS.

The parent's ``ru_maxrss`` would include pages shared from the parent before
exec; ``VmHWM`` in /proc/self/status belongs to this program's own address
space only.  Usage: ``python -m bench.child MODULE ARGS...`` (``-`` for none).
"""

from __future__ import annotations

import importlib
import os
import sys


def peak_rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main() -> None:
    module, args = sys.argv[1], sys.argv[2:]
    if module != "-":
        code = importlib.import_module(module).main(args)
        if code:
            sys.exit(code)
    sys.stdout.flush()
    os.write(2, f"VmHWM {peak_rss_kib()}\n".encode())


if __name__ == "__main__":
    main()
