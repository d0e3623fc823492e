"""Placeholder: the antivirus collector is being written."""

from collectors.base import CollectorSpec, Context
from evidence.model import Outcome


def _collect(ctx: Context) -> Outcome:
    return Outcome.failed("not implemented yet")


SPEC = CollectorSpec(name="antivirus", version="0", controls=(), collect=_collect)
