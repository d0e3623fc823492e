"""``tillsyn-central``: placeholder entry point until the centre is built."""

from __future__ import annotations

import sys
from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    print("tillsyn-central: the centre is not part of this release yet; only `tillsyn-agent collect` is.",
          file=sys.stderr)
    return 2
