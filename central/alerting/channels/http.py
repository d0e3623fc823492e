"""One JSON POST with a timeout, an optional pinned CA, and failures sorted into retry or not.

``verify`` is passed on every call: a Session's own ``verify`` is overridden by
``REQUESTS_CA_BUNDLE`` (psf/requests#3829), a per-request path is not.  Webhook
URLs often carry their secret in the path (Slack, Teams), so messages name only
scheme, host and port, and any text that came back is scrubbed of known secrets.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Union
from urllib.parse import urlsplit

import requests

from central.alerting.channels.base import ChannelError, check_event, to_json
from central.alerting.settings import SlackChannel, TeamsChannel

USER_AGENT = "tillsyn-central"
REPLY_MAX = 300
TOKEN_MIN = 12  # a path segment this long may be a token: never shown


def origin(url: str) -> str:
    """``https://host:port`` of ``url``: what may be shown of it (no user, path or query)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or '?'}{port}"


def scrub(text: str, url: str, secrets: Iterable[str] = ()) -> str:
    parts = urlsplit(url)
    tokens = [seg for seg in parts.path.split("/") if len(seg) >= TOKEN_MIN]  # e.g. Slack's /services/T/B/<token>
    hidden = [s for s in (*secrets, parts.query, parts.path, parts.password or "", *tokens) if s and s != "/"]
    for secret in sorted(hidden, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _cause(err: BaseException) -> BaseException:
    """The innermost cause (e.g. the ``ssl.SSLCertVerificationError`` under requests' and urllib3's wrappers)."""
    seen = set()
    while id(err) not in seen:
        seen.add(id(err))
        candidates = (getattr(err, "reason", None), err.__cause__, *err.args[:1], err.__context__)
        inner = next((c for c in candidates if isinstance(c, BaseException)), None)
        if inner is None:
            break
        err = inner
    return err


def _network_error(err: requests.RequestException, what: str, url: str, ca_file: Optional[Path]) -> ChannelError:
    where = f"{what} at {origin(url)}"
    cause = _cause(err)
    if isinstance(err, requests.exceptions.SSLError):
        if isinstance(cause, ssl.SSLCertVerificationError):
            trusted = f"the CA in {ca_file}" if ca_file else "the system's CAs"
            return ChannelError(
                f"{where}: TLS certificate not trusted by {trusted} ({cause.verify_message}); "
                "set ca_file to the CA that signed the receiver's certificate",
                retry=False,
            )
        return ChannelError(f"{where}: TLS handshake failed ({type(cause).__name__})", retry=True)
    if isinstance(err, requests.exceptions.Timeout):
        return ChannelError(f"{where}: no answer within the timeout ({type(err).__name__})", retry=True)
    if isinstance(err, requests.exceptions.ConnectionError):
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else type(cause).__name__
        return ChannelError(f"{where}: cannot connect ({reason})", retry=True)
    return ChannelError(f"{where}: request failed ({type(err).__name__})", retry=False)


def post_json(
    what: str,
    url: str,
    body: bytes,
    *,
    timeout_s: float,
    ca_file: Optional[Path],
    headers: Optional[Mapping[str, str]] = None,
    secrets: Iterable[str] = (),
) -> requests.Response:
    """POST ``body`` (JSON bytes) to ``url``; returns the 2xx response, else raises ChannelError."""
    secrets = tuple(secrets)
    verify: Union[bool, str] = str(ca_file) if ca_file else True
    try:
        response = requests.post(
            url,
            data=body,
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {})},
            timeout=timeout_s,
            verify=verify,
            allow_redirects=False,  # a redirect would turn the POST into a GET and lose the notification
        )
    except requests.RequestException as err:
        raise _network_error(err, what, url, ca_file) from None
    if 200 <= response.status_code < 300:
        return response
    reply = scrub(" ".join(response.text[:REPLY_MAX].split()), url, secrets)
    status = f"{what} at {origin(url)} answered {response.status_code} {response.reason or ''}".rstrip()
    if response.status_code == 429 or response.status_code >= 500:
        raise ChannelError(f"{status}: {reply}" if reply else status, retry=True)
    if 300 <= response.status_code < 400:
        raise ChannelError(f"{status}: a redirect; configure the final URL", retry=False)
    raise ChannelError(f"{status}: {reply}" if reply else status, retry=False)


Payload = Callable[[str, Mapping[str, Any]], Dict[str, Any]]


@dataclass
class ChatWebhookSender:
    """A chat service's incoming webhook (Slack, Teams): the service's own JSON for the event,
    POSTed to the URL, which is itself the secret."""

    kind: str
    name: str
    url: str
    timeout_s: float
    ca_file: Optional[Path]
    payload: Payload

    def send(self, event: str, incident: Mapping[str, Any]) -> None:
        check_event(self.name, event)
        data = to_json(self.payload(event, incident)).encode("utf-8")
        post_json(f"{self.kind} {self.name!r}", self.url, data, timeout_s=self.timeout_s, ca_file=self.ca_file)


def chat_webhook(
    kind: str, name: str, channel: Union[SlackChannel, TeamsChannel], payload: Payload
) -> ChatWebhookSender:
    return ChatWebhookSender(kind, name, channel.url, channel.timeout_s, channel.ca_file, payload)
