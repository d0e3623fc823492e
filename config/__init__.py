"""The shipped defaults (agent.yaml, central.yaml, policy.yaml), installed as the package data of
``evidence.defaults`` (see setup.py) so an installed agent or centre reads them with
importlib.resources, without the repository.  Nothing here is code."""
