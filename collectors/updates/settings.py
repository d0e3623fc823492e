"""Settings of the updates collector: the package manager, and how often the slow simulation runs."""

from __future__ import annotations

from collectors.settings import Field, Schema

SETTINGS: Schema = {
    "manager": Field(str, "auto", "package manager: auto, apt, dnf or yum", choices=("auto", "apt", "dnf", "yum")),
    "simulate_interval": Field(
        int,
        21600,
        "seconds between simulated upgrades (apt-get -s, dnf check-update); sooner when the installed "
        "packages or the package lists change",
        minimum=60,
    ),
    "simulate_timeout": Field(float, 120.0, "seconds the simulation (and a refresh) may take", minimum=1),
    "refresh": Field(bool, False, "refresh the package lists (apt-get update, dnf makecache) before each simulation"),
    "max_listed": Field(int, 200, "pending updates listed by name (all are counted)", minimum=0),
}
