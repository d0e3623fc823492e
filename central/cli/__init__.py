"""``tillsyn-central``: ``commands`` (serve, tokens, agents, keys, policy, db, verify), ``alerting``
(incidents, windows, waivers, audit), ``export`` (export, retention) and ``users``.
"""

from central.cli.commands import main

__all__ = ["main"]
