"""Webhooks: municipal systems subscribe HTTPS endpoints to domain events (Standard Webhooks)."""
