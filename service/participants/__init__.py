"""People: who they are, where they work (with history), their roles and consent."""
