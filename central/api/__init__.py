"""The centre's HTTP API (FastAPI): agents' endpoints, read endpoints, health and metrics."""
