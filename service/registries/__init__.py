"""Carriers and their pickup-point registries: push and pull sync, merging shops, placement."""
