"""Prometheus metrics: requests by route and status, latency, outbox depth and age, plugin health."""
