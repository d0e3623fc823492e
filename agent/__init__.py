"""The Tillsyn node agent: runs the collectors and (later) delivers signed reports."""

__version__ = "0.1.0"
