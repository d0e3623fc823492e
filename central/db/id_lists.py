"""Ids asked for in lists of bounded length (``column.in_(chunk)``): both databases limit a
statement's parameters (SQLite 32,766, PostgreSQL 65,535), and a fleet can have more nodes or open
incidents than that."""

from __future__ import annotations

from typing import Iterator, Sequence, TypeVar

IDS_PER_QUERY = 1000

_T = TypeVar("_T")


def in_lists(ids: Sequence[_T], size: int = IDS_PER_QUERY) -> Iterator[Sequence[_T]]:
    """``ids`` in consecutive lists of at most ``size``."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
