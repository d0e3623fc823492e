"""``python -m central.cli``: the same as ``tillsyn-central``."""

import sys

from central.cli.commands import main

sys.exit(main())
