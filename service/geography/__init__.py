"""Counties (län) and municipalities (kommuner), seeded from the shipped reference data."""
