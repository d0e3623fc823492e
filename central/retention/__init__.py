"""Retention (M08): ``sweep`` deletes what is older than ``central.yaml``'s periods, and
``checkpoint_origin`` tells whether retention made a ledger checkpoint.
"""
