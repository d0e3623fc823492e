"""Erasure on request (M08, GDPR Art. 17): ``tillsyn-central node erase NODE`` removes the personal
data a node's evidence holds while its ledger stays verifiable.  ``scrub.py`` (pure) says what is
removed from one report body; ``erase.py`` applies it to the store and records it.  How the
erased reports are verified afterwards: docs/audit-export.md ("Erasure")."""
