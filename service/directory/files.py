"""Curated contact files (CSV) that directory plugins read: one reader, one row shape."""

from __future__ import annotations

import csv
from pathlib import Path

from service.pluginspec import Contact


def read_rows(path: Path, key: str) -> dict[str, list[dict[str, str]]]:
    """The file's rows grouped by the value of column `key` (a municipality or county code)."""
    grouped: dict[str, list[dict[str, str]]] = {}
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            grouped.setdefault(row[key], []).append(row)
    return grouped


def office_contact(row: dict[str, str], *, organization: str, role: str, source: str) -> Contact:
    """An office from a row with the optional columns phone, url, opening_hours, last_verified."""
    return Contact(
        organization=organization,
        role=role,
        kind="office",
        phone=row.get("phone") or None,
        url=row.get("url") or None,
        opening_hours=row.get("opening_hours") or None,
        source=source,
        last_verified=row.get("last_verified") or None,
    )
