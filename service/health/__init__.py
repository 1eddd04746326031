"""Liveness and readiness probes, and the pages that explain problem types."""
