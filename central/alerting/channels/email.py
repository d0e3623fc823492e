"""Email through an SMTP relay: STARTTLS (never silently skipped), AUTH, threaded by incident.

The trigger's ``Message-ID`` is derived from the incident (id and dedup key), and
reminders and the resolve notice refer to it (``In-Reply-To``/``References``,
RFC 5322 3.6.4), so mail clients show one thread per incident.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import smtplib
import ssl
import textwrap
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any, Mapping, Optional, Tuple

from central.alerting.channels import incident_words
from central.alerting.channels.base import ChannelError, check_event, read_secret
from central.alerting.settings import EmailChannel

SUBJECT_PREFIX = "[Tillsyn]"
LABEL_WIDTH = len("Acknowledged: ")
log = logging.getLogger("tillsyn.central.alerting")


def _domain(sender: str) -> str:
    address = parseaddr(sender)[1]
    return address.rpartition("@")[2] or "tillsyn.invalid"


def thread_id(incident: Mapping[str, Any], sender: str) -> str:
    """The trigger's Message-ID, which every later notice of the incident refers to."""
    digest = hashlib.sha256(str(incident["dedup_key"]).encode("utf-8")).hexdigest()[:20]
    return f"<tillsyn.{incident['id']}.{digest}@{_domain(sender)}>"


def subject(event: str, incident: Mapping[str, Any]) -> str:
    return " ".join(f"{SUBJECT_PREFIX} {incident_words.headline(event, incident)}".split())[:250]


def body(event: str, incident: Mapping[str, Any]) -> str:
    rows = incident_words.details(incident)
    width = max(len(label) for label, _ in rows) + 2
    width = max(width, LABEL_WIDTH)  # the same column in every mail, easy to scan and to grep
    lines = [incident_words.headline(event, incident), ""]
    lines += [f"{label + ':':<{width}}{value}" for label, value in rows]
    lines += ["", *textwrap.wrap("What to do: " + incident_words.advice(event, incident), 76)]
    lines += ["", "-- ", f"Tillsyn incident {incident.get('id')} ({incident.get('dedup_key')})"]
    return "\n".join(lines) + "\n"


def message(
    event: str, incident: Mapping[str, Any], *, sender: str, to: Tuple[str, ...], now: datetime
) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject(event, incident)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = format_datetime(now)
    root = thread_id(incident, sender)
    if event == "trigger":
        msg["Message-ID"] = root
    else:
        msg["Message-ID"] = make_msgid(f"tillsyn.{incident.get('id')}.{event}", _domain(sender))
        msg["In-Reply-To"] = root
        msg["References"] = root
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    msg["X-Tillsyn-Event"] = event
    msg["X-Tillsyn-Incident"] = str(incident.get("id"))
    msg.set_content(body(event, incident))
    return msg


def _reply(err: smtplib.SMTPResponseException) -> str:
    reply = err.smtp_error.decode("utf-8", "replace") if isinstance(err.smtp_error, bytes) else str(err.smtp_error)
    return f"{err.smtp_code} {' '.join(reply.split())}"[:300]


@dataclass
class EmailSender:
    name: str
    host: str
    port: int
    starttls: bool
    username: Optional[str]
    password: Optional[str] = field(repr=False)
    sender: str
    to: Tuple[str, ...]
    timeout_s: float
    tls: ssl.SSLContext = field(repr=False)

    def send(self, event: str, incident: Mapping[str, Any]) -> None:
        check_event(self.name, event)
        msg = message(event, incident, sender=self.sender, to=self.to, now=datetime.now(timezone.utc))
        where = f"email {self.name!r}: SMTP server {self.host}:{self.port}"
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                smtp.ehlo()
                if self.starttls:
                    if not smtp.has_extn("starttls"):
                        raise ChannelError(
                            f"{where} does not offer STARTTLS; not sending in plain text "
                            "(use a relay with TLS, or set starttls: false for a relay on this machine)",
                            retry=False,
                        )
                    smtp.starttls(context=self.tls)
                    smtp.ehlo()
                if self.username is not None and self.password is not None:
                    smtp.login(self.username, self.password)
                refused = smtp.send_message(msg)
        except smtplib.SMTPAuthenticationError as err:
            raise ChannelError(f"{where} refused the login of {self.username!r}: {_reply(err)}", retry=False) from None
        except smtplib.SMTPNotSupportedError:
            raise ChannelError(f"{where} offers no AUTH (after STARTTLS); cannot log in", retry=False) from None
        except smtplib.SMTPRecipientsRefused as err:
            replies = "; ".join(f"{rcpt}: {code}" for rcpt, (code, _) in err.recipients.items())
            retry = all(400 <= code < 500 for code, _ in err.recipients.values())
            raise ChannelError(f"{where} refused every recipient ({replies})", retry=retry) from None
        except smtplib.SMTPResponseException as err:
            retry = 400 <= err.smtp_code < 500  # 4xx: try again later (RFC 5321 4.2.1)
            raise ChannelError(f"{where} answered {_reply(err)}", retry=retry) from None
        except ssl.SSLCertVerificationError as err:
            raise ChannelError(
                f"{where}: TLS certificate not trusted ({err.verify_message}); set ca_file to its CA", retry=False
            ) from None
        except (smtplib.SMTPException, OSError) as err:
            why = err.strerror if isinstance(err, OSError) and err.strerror else f"{type(err).__name__}: {err}"
            raise ChannelError(f"{where}: {why}", retry=True) from None
        if refused:  # sending again would repeat the notice to those who got it: say so and carry on
            log.warning("%s refused %s; the other recipients got it", where, ", ".join(sorted(refused)))


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def build(name: str, channel: EmailChannel) -> EmailSender:
    password = None
    if channel.username is not None or channel.password_file is not None:
        if channel.username is None:
            raise ChannelError(f"channel {name!r}: password_file is set but username is not", retry=False)
        password = read_secret(name, "password_file", channel.password_file)
        if not channel.starttls and not _loopback(channel.smtp_host):
            raise ChannelError(
                f"channel {name!r}: refusing to send the SMTP password to {channel.smtp_host} in plain text; "
                "set starttls: true",
                retry=False,
            )
    try:
        tls = ssl.create_default_context(cafile=str(channel.ca_file) if channel.ca_file else None)
    except (OSError, ssl.SSLError) as err:
        raise ChannelError(f"channel {name!r}: ca_file {channel.ca_file}: cannot load: {err}", retry=False) from None
    return EmailSender(
        name,
        channel.smtp_host,
        channel.smtp_port,
        channel.starttls,
        channel.username,
        password,
        channel.sender,
        tuple(channel.to),
        channel.timeout_s,
        tls,
    )
