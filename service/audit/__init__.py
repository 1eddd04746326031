"""The audit log: who changed what, when, with personal values redacted. Append-only."""
