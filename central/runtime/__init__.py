"""Runtime: one centre process assembled (``service``), its background threads (``background``,
``duties``), its Prometheus metrics (``metrics``) and the garbage-collector pause (``gc_pause``).
"""
