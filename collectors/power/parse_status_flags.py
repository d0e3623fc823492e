"""UPS status words from NUT and apcupsd as one vocabulary of NUT status flags (pure).

NUT's ``ups.status`` is a space-separated list of flags (OL, OB, LB, RB, CHRG, ...;
NUT developer guide, "new-names": ups.status).  apcupsd's STATUS line uses words
(ONLINE, ONBATT, LOWBATT, ...; apcupsd manual, "STATUS" in apcaccess output); they
are mapped to the NUT flag with the same meaning, and words without one are kept apart.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

# apcupsd STATUS words (apcupsd manual, apcaccess "STATUS": CAL TRIM BOOST ONLINE
# ONBATT OVERLOAD LOWBATT REPLACEBATT NOBATT SLAVE SLAVEDOWN, or COMMLOST, or
# SHUTTING DOWN) mapped to the NUT flag with the same meaning.
APCUPSD_TO_NUT: Dict[str, str] = {
    "ONLINE": "OL",
    "ONBATT": "OB",
    "LOWBATT": "LB",
    "REPLACEBATT": "RB",
    "OVERLOAD": "OVER",
    "TRIM": "TRIM",
    "BOOST": "BOOST",
    "CAL": "CAL",
    # apcupsd has started the system shutdown: NUT's "forced shutdown" flag.
    "SHUTTING DOWN": "FSD",
}


def parse_nut_status(text: str) -> List[str]:
    """``"OL CHRG"`` -> ``["OL", "CHRG"]`` (order kept, duplicates dropped)."""
    flags: List[str] = []
    for word in text.split():
        flag = word.upper()
        if flag not in flags:
            flags.append(flag)
    return flags


def parse_apcupsd_status(text: str) -> Tuple[List[str], List[str]]:
    """apcupsd STATUS words -> (NUT flags, words that have no NUT flag, e.g. COMMLOST)."""
    rest = " ".join(text.upper().split())
    flags: List[str] = []
    unmapped: List[str] = []
    if "SHUTTING DOWN" in rest:  # the only two-word status
        flags.append("FSD")
        rest = rest.replace("SHUTTING DOWN", " ")
    for word in rest.split():
        flag = APCUPSD_TO_NUT.get(word)
        if flag is None:
            if word not in unmapped:
                unmapped.append(word)
        elif flag not in flags:
            flags.append(flag)
    return flags, unmapped


def on_line(flags: Sequence[str]) -> Optional[bool]:
    """True on mains (OL without OB), False on battery (OB) or output off, None if unknown."""
    if "OB" in flags or "OFF" in flags:
        return False
    if "OL" in flags:
        return True
    return None
