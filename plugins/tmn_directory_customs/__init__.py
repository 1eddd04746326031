"""The `customs` contact directory: Tullverket's tip line and the regional office.

The tip line (90 114, staffed around the clock; the caller may stay anonymous) and its web
form hold nationwide. Regional offices come from a CSV file (`data_file`; default: the file
shipped beside this module) with columns county_code, office, phone, url, opening_hours,
last_verified, curated from tullverket.se.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from service.directory.files import office_contact, read_rows
from service.pluginspec import Contact, hookimpl

__version__ = "1.0.0"
DEFAULT_FILE = Path(__file__).with_name("customs_offices.csv")
SOURCE = "customs"


@hookimpl
def tmn_municipality_contacts(municipality_code: str, config: dict[str, Any]) -> list[Contact]:
    contacts = [
        Contact(
            organization="Tullverket",
            role="Tipsa om smuggling",
            kind="tip_line",
            phone="90 114",
            url="https://www.tullverket.se/tipsa-om-smuggling",
            opening_hours="Dygnet runt",
            source=SOURCE,
        ),
    ]
    path = Path(config.get("data_file", DEFAULT_FILE))
    for row in read_rows(path, "county_code").get(municipality_code[:2], []):
        contacts.append(
            office_contact(
                row, organization=f"Tullverket, {row['office']}", role="Regionalt kontor", source=SOURCE
            )
        )
    return contacts
