"""Settings of the time collector: which tools to ask and where chronyd listens."""

from __future__ import annotations

from collectors.settings import Field, Schema

SETTINGS: Schema = {
    "chronyc": Field(str, "chronyc", "chronyc command (chrony's client); empty: do not ask chrony"),
    "chronyd_socket": Field(
        str,
        "",
        "chronyd's command socket or host for chronyc -h (empty: chronyc's default, /run/chrony/chronyd.sock)",
    ),
    "timedatectl": Field(str, "timedatectl", "timedatectl command (systemd-timesyncd); empty: do not ask"),
    "ntpq": Field(str, "ntpq", "ntpq command (ntpd, NTPsec); empty: do not ask ntpd"),
    "command_timeout": Field(float, 3.0, "seconds each command may take", minimum=0.1),
}
