"""A SQLite database is served by one ``tillsyn-central serve`` process at a time.

SQLite's one write lock belongs to whichever process holds it: a second server on the same file
adds no capacity, and its writers wait on the first one's (``busy_timeout``) instead of on the
ordered queue of one process (central/db/engine.py).  Several replicas need PostgreSQL
(docs/operations.md, Replicas on PostgreSQL).  The claim is an exclusive ``flock`` on
``<database>.serve-lock`` beside the database, released by the kernel however the process ends;
the administrator's commands (``token create``, ``verify``, ...) do not take it.
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO, Optional

from sqlalchemy.engine import make_url

from central.config import ConfigError
from central.db.engine import normalise_url


def claim(db_url: str) -> Optional[IO[bytes]]:
    """Hold the SQLite database at ``db_url`` for this serving process (keep the returned file open
    as long as it serves); None for PostgreSQL and in-memory SQLite.  Raises :class:`ConfigError`
    naming the lock file when another process serves the database."""
    url = make_url(normalise_url(db_url))
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    path = Path(f"{url.database}.serve-lock")
    path.parent.mkdir(parents=True, exist_ok=True)  # the state directory of a first start
    handle = path.open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(
            f"{url.database}: another tillsyn-central serve already serves this SQLite database "
            f"(it holds {path}); SQLite is served by one process, several replicas need PostgreSQL"
        ) from None
    return handle
