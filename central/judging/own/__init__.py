"""The measures the centre keeps itself (M08 erasure, M10 separation, M12 incident notification,
M13 anonymisation): judged from the centre's own records by a duty round, kept as findings of each
node like the rules' verdicts, so the Controls page, the API, the export and the chart show them
with their history.  ``rules.py`` names them; one module per measure judges; ``judge.py`` reads the
database and records the verdicts.  docs/controls.md ("The centre's own measures")."""
