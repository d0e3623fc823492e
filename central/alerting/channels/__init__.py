"""Notification channels: one small module per receiver, pure payload builders apart from the I/O.

``build_sender(name, channel)`` turns a configured ``Channel`` into a ``Sender``;
secrets are read then, so a missing secret file is reported at start-up, with its path.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict

from central.alerting.channels import alertmanager, email, pagerduty, slack, teams, webhook
from central.alerting.channels.base import EVENTS, ChannelError, Sender
from central.alerting.settings import Channel

__all__ = ["EVENTS", "ChannelError", "Sender", "build_sender"]

# each builder takes its own kind's settings (central.alerting.settings): chosen by ``type``
BUILDERS: Dict[str, Callable[[str, Any], Sender]] = {
    "email": email.build,
    "webhook": webhook.build,
    "slack": slack.build,
    "teams": teams.build,
    "pagerduty": pagerduty.build,
    "alertmanager": alertmanager.build,
}


def build_sender(name: str, channel: Channel) -> Sender:
    """The sender for ``channel``; ChannelError (naming the file) when a secret or CA file is unusable."""
    if channel.ca_file is not None and not os.access(channel.ca_file, os.R_OK):
        why = "no such file" if not channel.ca_file.exists() else "cannot read"
        raise ChannelError(f"channel {name!r}: ca_file {channel.ca_file}: {why}", retry=False)
    try:
        builder = BUILDERS[channel.type]
    except KeyError:
        raise ChannelError(f"channel {name!r}: unknown type {channel.type!r}", retry=False) from None
    return builder(name, channel)
