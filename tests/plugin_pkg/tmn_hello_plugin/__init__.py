"""A third-party plugin: it knows one contact for every municipality."""

from typing import Any

from service.pluginspec import Contact, hookimpl


@hookimpl
def tmn_municipality_contacts(municipality_code: str, config: dict[str, Any]) -> list[Contact]:
    return [
        Contact(
            organization=config.get("organization", "Hello AB"),
            role="Test line",
            kind="tip_line",
            phone="+46701740650",
            source="hello",
        )
    ]
