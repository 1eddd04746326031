"""API keys for machine clients: stored only as a hash, shown once, expiring and revocable."""
