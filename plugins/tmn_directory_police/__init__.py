"""The `police` contact directory: 112, 114 14, the police region, the local police area.

The region follows from the county (TMN's reference data). Local police areas come from a CSV
file (`data_file` in the plugin's settings; default: the file shipped beside this module) with
columns municipality_code, local_police_area, phone, url, opening_hours, last_verified.
No public machine-readable mapping of municipalities to local police areas exists, so the
file is curated by hand from polisen.se; keep `last_verified` honest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from service.directory.files import office_contact, read_rows
from service.geography.service import reference_counties
from service.pluginspec import Contact, hookimpl

__version__ = "1.0.0"
DEFAULT_FILE = Path(__file__).with_name("local_police_areas.csv")
SOURCE = "police"


@hookimpl
def tmn_municipality_contacts(municipality_code: str, config: dict[str, Any]) -> list[Contact]:
    regions = {code: region for code, _name, region in reference_counties()}
    contacts = [
        Contact(
            organization="Polisen",
            role="Akut: pågående brott, fara för liv eller egendom",
            kind="emergency",
            phone="112",
            url="https://polisen.se",
            opening_hours="Dygnet runt",
            source=SOURCE,
        ),
        Contact(
            organization="Polisen",
            role="Ej akut: anmälan, tips och frågor",
            kind="non_emergency",
            phone="114 14",
            url="https://polisen.se",
            opening_hours="Dygnet runt",
            source=SOURCE,
        ),
    ]
    region = regions.get(municipality_code[:2])
    if region:
        contacts.append(
            Contact(
                organization=f"Polisregion {region}",
                role="Polisregion",
                kind="office",
                phone="114 14",
                url="https://polisen.se",
                source=SOURCE,
            )
        )
    path = Path(config.get("data_file", DEFAULT_FILE))
    for row in read_rows(path, "municipality_code").get(municipality_code, []):
        contacts.append(
            office_contact(
                row,
                organization=f"Lokalpolisområde {row['local_police_area']}",
                role="Lokalpolisområde",
                source=SOURCE,
            )
        )
    return contacts
