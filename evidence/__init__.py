"""What the agent and the centre agree on: the evidence format, and later signing and rules.

This package imports nothing else of Tillsyn and does no I/O.
"""
