"""The `registry_csv` registry plugin: a carrier's pickup points read from a CSV file.

For carriers without a public API (Instabox, Early Bird, …) whose list arrives as a file that is
dropped on the server. Implements `tmn_fetch_pickup_points(carrier, config)`. Settings
(`TMN_PLUGIN_CONFIG`, key `registry_csv`)::

    {"registry_csv": {"carriers": {
        "instabox": {"path": "/data/instabox.csv", "delimiter": ";",
                     "columns": {"carrier_point_id": "Box-ID", "latitude": "lat", "longitude": "lon"}}
    }}}

A carrier that is not under `carriers` is not served: the hook returns None for it.

Per carrier:

- `path` (required): the file, UTF-8 with or without a byte-order mark. A missing file raises
  FileNotFoundError naming the path (the sync of that carrier then fails and nothing changes).
- `delimiter` (default `,`; one character, e.g. `;` or a tab `\\t`).
- `columns` (optional): renames, `{"<PickupPointRecord field>": "<the file's header>"}`. Without a
  rename a column is found by the field's own name: carrier_point_id, name, kind,
  street_address, postal_code, city, latitude, longitude, opening_hours (a column `id` is taken
  as carrier_point_id when there is none by that name, as in TMN's own snapshot push format).
  Headers are matched exactly after trimming spaces. Other columns are ignored.

The header must name carrier_point_id and name (after renames), or the file is refused with
ValueError. Every data row becomes a record: an empty cell is None (for carrier_point_id and
name, which the record requires, ""; for kind, `pickup_point`), so that the sync reports bad rows
instead of them disappearing here. latitude/longitude are parsed as numbers, with a decimal point
or a decimal comma ("59,3293"); a cell that is not a number is None. Blank lines are skipped.
"""

from __future__ import annotations

import asyncio
import csv
import errno
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from service.pluginspec import PickupPointRecord, hookimpl

__version__ = "1.0.0"

PLUGIN = "registry_csv"
FIELDS = tuple(PickupPointRecord.__struct_fields__)
REQUIRED = ("carrier_point_id", "name")


@hookimpl
async def tmn_fetch_pickup_points(carrier: str, config: dict[str, Any]) -> list[PickupPointRecord] | None:
    carriers = config.get("carriers") or {}
    if not isinstance(carriers, Mapping) or carrier not in carriers:
        return None
    spec = carriers[carrier]
    if not isinstance(spec, Mapping) or not spec.get("path"):
        raise ValueError(f"{PLUGIN}: {carrier}: the setting 'path' is required")
    columns = spec.get("columns") or {}
    if not isinstance(columns, Mapping):
        raise ValueError(f"{PLUGIN}: {carrier}: the setting 'columns' must be an object")
    unknown = sorted(set(map(str, columns)) - set(FIELDS))
    if unknown:
        raise ValueError(f"{PLUGIN}: {carrier}: 'columns' names unknown fields: {', '.join(unknown)}")
    path = str(spec["path"])
    delimiter = str(spec.get("delimiter", ","))
    renames = {str(field): str(header).strip() for field, header in columns.items()}
    return await asyncio.to_thread(read_points, path, delimiter, renames)


def read_points(
    file: str | Path, delimiter: str = ",", columns: Mapping[str, str] | None = None
) -> list[PickupPointRecord]:
    """Every data row of the file as a PickupPointRecord (see the module's docstring)."""
    path = Path(file).expanduser()
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, f"{PLUGIN}: no such file", str(path)) from None
    with handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{PLUGIN}: {path} is empty (no header)")
        positions = _positions([h.strip() for h in header], columns or {})
        missing = [f for f in REQUIRED if f not in positions]
        if missing:
            raise ValueError(f"{PLUGIN}: {path} has no column for {', '.join(missing)}")
        records = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            cells = {field: _cell(row, index) for field, index in positions.items()}
            records.append(
                PickupPointRecord(
                    carrier_point_id=cells.get("carrier_point_id") or "",
                    name=cells.get("name") or "",
                    kind=cells.get("kind") or "pickup_point",
                    street_address=cells.get("street_address"),
                    postal_code=cells.get("postal_code"),
                    city=cells.get("city"),
                    latitude=number(cells.get("latitude")),
                    longitude=number(cells.get("longitude")),
                    opening_hours=cells.get("opening_hours"),
                )
            )
    return records


def _positions(header: list[str], columns: Mapping[str, str]) -> dict[str, int]:
    index = {name: i for i, name in reversed(list(enumerate(header)))}  # the first of duplicates
    positions: dict[str, int] = {}
    for field in FIELDS:
        wanted = columns.get(field, field)
        if wanted in index:
            positions[field] = index[wanted]
        elif field == "carrier_point_id" and field not in columns and "id" in index:
            positions[field] = index["id"]
    return positions


def _cell(row: list[str], index: int) -> str | None:
    if index >= len(row):
        return None
    return row[index].strip() or None


def number(text: str | None) -> float | None:
    """A coordinate cell: "59.3293" or "59,3293"; empty or not a finite number: None."""
    if text is None:
        return None
    try:
        value = float(text.replace(",", ".").replace(" ", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None
