"""The `police` contact directory: 112, 114 14, the police region, the local police area.

The region follows from the county (TMN's reference data). Local police areas come from a CSV
file (`data_file` in the plugin's settings; default: the file shipped beside this module) with
columns municipality_code, local_police_area, phone, url, opening_hours, last_verified.
No public machine-readable mapping of municipalities to local police areas exists, so the
file is curated by hand from polisen.se; keep `last_verified` honest.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from service.geography.service import reference_counties
from service.pluginspec import Contact, hookimpl

__version__ = "1.0.0"
DEFAULT_FILE = Path(__file__).with_name("local_police_areas.csv")
SOURCE = "police"


def _areas(path: Path) -> dict[str, list[dict[str, str]]]:
    areas: dict[str, list[dict[str, str]]] = {}
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            areas.setdefault(row["municipality_code"], []).append(row)
    return areas


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
    for row in _areas(path).get(municipality_code, []):
        contacts.append(
            Contact(
                organization=f"Lokalpolisområde {row['local_police_area']}",
                role="Lokalpolisområde",
                kind="office",
                phone=row.get("phone") or None,
                url=row.get("url") or None,
                opening_hours=row.get("opening_hours") or None,
                source=SOURCE,
                last_verified=row.get("last_verified") or None,
            )
        )
    return contacts
