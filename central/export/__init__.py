"""The auditor's export: every control at a moment or over a period, per node, with the ledger
hashes that let the evidence be verified independently (docs/audit-export.md)."""
