"""Talking to the centre: signed requests over one reused HTTPS session with a pinned CA.

Plain ``http://`` is refused unless the server is a loopback address (a centre on
the same machine, as in the development set-up).
"""

from __future__ import annotations

import ipaddress
from typing import Any, Dict, Optional
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.errors import TransportError
from evidence.signing import sign

USER_AGENT = "tillsyn-agent"
TIMEOUT = (5.0, 30.0)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_server_url(url: str) -> str:
    """The URL without a trailing slash; refuses what the agent must never talk to."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise TransportError(f"{url!r}: use https://HOST[:PORT]", retry=False)
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise TransportError(f"{url!r}: plain http is allowed only to a loopback address; use https", retry=False)
    return url.rstrip("/")


def _refusal(status: int, reason: str, body: Dict[str, Any]) -> TransportError:
    """The error for a 4xx/5xx answer, whatever its body holds (a proxy's page, a list, wrong types)."""
    message = body.get("message")
    hint = body.get("hint")
    text = message if isinstance(message, str) and message else (reason or "no reason given")
    text += f" ({hint})" if isinstance(hint, str) and hint else ""
    # 5xx and 429 are the centre's trouble: try again later. A clock refusal passes once the
    # node's clock is right (or the centre's clock catches up with the report's time). Any
    # other 4xx: this request will never pass.
    retry = status >= 500 or status == 429 or body.get("error") == "clock"
    return TransportError(f"centre refused ({status}): {text}", retry=retry, status=status, body=body)


class Client:
    """One reused session to the centre; every body is signed with the node's key."""

    def __init__(
        self, server: str, key: Ed25519PrivateKey, agent_id: Optional[str] = None, ca_file: Optional[str] = None
    ) -> None:
        self.server = check_server_url(server)
        self.key = key
        self.agent_id = agent_id
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        # Passed with every request: requests lets REQUESTS_CA_BUNDLE override a session's
        # verify setting, which would silently undo the pinning.
        self.verify: Any = ca_file if ca_file else True

    def post(self, path: str, body: bytes) -> Dict[str, Any]:
        headers = {"Content-Type": "application/json", "X-Tillsyn-Signature": sign(self.key, body)}
        if self.agent_id:
            headers["X-Tillsyn-Agent"] = self.agent_id
        try:
            response = self.session.post(
                self.server + path, data=body, headers=headers, timeout=TIMEOUT, verify=self.verify
            )
        except requests.exceptions.SSLError as err:
            raise TransportError(f"{self.server}: TLS certificate not trusted ({err}); check --ca", retry=True) from err
        except (OSError, requests.exceptions.ConnectionError, requests.exceptions.Timeout) as err:
            raise TransportError(f"{self.server}: unreachable ({type(err).__name__})", retry=True) from err
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400:
            raise _refusal(response.status_code, response.reason, data if isinstance(data, dict) else {})
        if not isinstance(data, dict):
            raise TransportError(
                f"centre answered {response.status_code} with something that is not a JSON object",
                retry=True,
                status=response.status_code,
            )
        return data

    def close(self) -> None:
        self.session.close()
