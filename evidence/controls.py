"""The 13 security measures (docs/controls.md): ids, titles and the clauses they map to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    summary: str
    iso27001: Tuple[str, ...]
    gdpr: Tuple[str, ...]


_TABLE = [
    (
        "M01",
        "Physical security",
        "Protection against power failure and disturbances in supply",
        "A.7.11 A.7.1 A.7.2 A.7.8",
        "32(1)(b)",
    ),
    (
        "M02",
        "Access control for equipment and media",
        "Data on unattended equipment and media is encrypted",
        "A.7.9 A.7.10 A.8.1 A.8.24",
        "32(1)(a)",
    ),
    (
        "M03",
        "Protection against malicious code",
        "Systems are protected against viruses, trojans and intrusion",
        "A.8.7 A.8.8",
        "32(1)(b)",
    ),
    ("M04", "Backup", "Regular, separate, protected backups with tested restore", "A.8.13", "32(1)(c) 32(1)(d)"),
    (
        "M05",
        "Authorisation control",
        "Personal, never shared, accounts; access limited to need",
        "A.5.15 A.5.16 A.5.17 A.5.18 A.8.2 A.8.5",
        "32(1)(b)",
    ),
    (
        "M06",
        "Access logging",
        "Access to personal data can be followed up through logs",
        "A.8.15 A.8.16 A.8.17",
        "32(1)(b) 30",
    ),
    (
        "M07",
        "External connections",
        "Only authorised connections get through; data sent outside is encrypted",
        "A.8.20 A.8.21 A.8.24",
        "32(1)(a)",
    ),
    ("M08", "Erasure", "Personal data is erased when no longer needed", "A.8.10", "5(1)(e) 17"),
    (
        "M09",
        "Change control",
        "Who entered, changed or deleted data can be established afterwards",
        "A.8.15 A.8.32 A.8.9",
        "32(1)(b)",
    ),
    (
        "M10",
        "Separation control",
        "Data collected for different purposes is processed separately",
        "A.8.3 A.8.22",
        "5(1)(b) 25",
    ),
    (
        "M11",
        "Repair and service",
        "Remote service access only during a declared service, after identification",
        "A.7.13 A.8.2 A.5.20",
        "28(3)",
    ),
    (
        "M12",
        "Incident notification",
        "The data controller is notified at once of incidents",
        "A.5.24 A.5.25 A.5.26",
        "33 34",
    ),
    ("M13", "Anonymisation", "Personal data is anonymised as far as possible", "A.8.11", "32(1)(a) 25"),
]

CONTROLS: Dict[str, Control] = {
    row[0]: Control(row[0], row[1], row[2], tuple(row[3].split()), tuple(row[4].split())) for row in _TABLE
}
