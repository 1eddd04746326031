"""Idempotency-Key support: a retried creating request returns the first answer."""
