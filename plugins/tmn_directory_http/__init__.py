"""The `http_directory` contact directory: a published contact list fetched over HTTP.

Settings (`TMN_PLUGIN_CONFIG`, key `http_directory`): `url` (required to do anything; may hold
`{municipality}`, replaced by the code), `timeout_seconds` (5), `source` (the name shown, default
the URL's host). The answer is a JSON array of objects with the Contact fields (organization,
role, kind, phone, email, url, opening_hours, last_verified); unknown fields are ignored, and
objects may carry `municipality_code` to limit them to one municipality.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from service.pluginspec import Contact, hookimpl

__version__ = "1.0.0"


class _Entry(msgspec.Struct, kw_only=True):
    organization: str
    role: str
    kind: str = "office"
    phone: str | None = None
    email: str | None = None
    url: str | None = None
    opening_hours: str | None = None
    last_verified: str | None = None
    municipality_code: str | None = None


@hookimpl
async def tmn_municipality_contacts(municipality_code: str, config: dict[str, Any]) -> list[Contact]:
    template = config.get("url")
    if not template:
        return []
    url = str(template).replace("{municipality}", municipality_code)
    source = str(config.get("source") or urlsplit(url).hostname or "http")
    async with httpx.AsyncClient(timeout=float(config.get("timeout_seconds", 5))) as client:
        response = await client.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
    entries = msgspec.json.decode(response.content, type=list[_Entry])
    return [
        Contact(
            organization=e.organization,
            role=e.role,
            kind=e.kind,
            phone=e.phone,
            email=e.email,
            url=e.url,
            opening_hours=e.opening_hours,
            last_verified=e.last_verified,
            source=source,
        )
        for e in entries
        if e.municipality_code in (None, municipality_code)
    ]
