"""Certifications: earned at a collaboration meeting, renewed at follow-up, verifiable from the sticker."""
