"""Every report also as CSV (for spreadsheets) and, where its rows are places, GeoJSON.

CSV: one header row, UTF-8 with a byte-order mark (so Excel shows å, ä and ö), comma-separated by
default or semicolon-separated for a spreadsheet set to Swedish conventions; nested values are
flattened into columns (step1_done, step1_since, …). GeoJSON: municipalities and roll-up groups
with their boundaries (from the same reference polygons the placement uses; counties and police
regions are unions of their municipalities), places as points; properties are the CSV's columns.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any, Literal

import msgspec
import shapely

from service.registries.placement import BOUNDARIES
from service.reports import schemas

Delimiter = Literal["comma", "semicolon"]
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
GEOJSON_MEDIA_TYPE = "application/geo+json"
Row = dict[str, Any]


def csv_text(
    rows: Iterable[Row], *, delimiter: Delimiter = "comma", columns: Sequence[str] | None = None
) -> str:
    rows = list(rows)
    header = list(columns) if columns is not None else _columns(rows)
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.DictWriter(
        out, fieldnames=header, delimiter=";" if delimiter == "semicolon" else ",", lineterminator="\r\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in header})
    return out.getvalue()


def _columns(rows: list[Row]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return " | ".join(str(v) for v in value)
    text = str(value)
    # A cell starting like a formula is run by spreadsheets (CSV injection): make it plain text.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") and not _number(text) else text


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --- flat rows -----------------------------------------------------------------------------------


def progress_row(p: schemas.MunicipalityProgress) -> Row:
    row: Row = {
        "municipality_code": p.municipality_code,
        "municipality_name": p.municipality_name,
        "county_code": p.county_code,
        "police_region": p.police_region,
        "current_step": p.current_step,
        "steps_done": p.steps_done,
    }
    for step in p.steps:
        row[f"step{step.step}_{step.key}_done"] = step.done
        row[f"step{step.step}_since"] = step.since.isoformat() if step.since else None
        row[f"step{step.step}_count"] = step.count
        row[f"step{step.step}_evidence"] = step.evidence
    row["decision_document_reference"] = p.decision.document_reference if p.decision else None
    row["decision_missing_parties"] = [m.value for m in p.decision.missing_parties] if p.decision else None
    return row


def progress_rollup_row(r: schemas.ProgressRollup) -> Row:
    row: Row = {"level": r.level, "code": r.code, "name": r.name, "municipalities": r.municipalities}
    for step, count in enumerate(r.by_current_step):
        row[f"at_step_{step}"] = count
    for step, count in enumerate(r.steps_done, start=1):
        row[f"step{step}_done"] = count
    row["complete_share"] = r.complete_share
    return row


def plain_row(value: Any) -> Row:
    """A flat Struct (coverage, a place) as its JSON fields."""
    row: Row = msgspec.to_builtins(value)
    return row


def evaluation_rows(report: schemas.EvaluationReport) -> tuple[list[Row], list[str]]:
    keys: dict[str, None] = {}
    for r in report.rows:
        keys.update(dict.fromkeys(q.key for q in r.questions))
    columns = ["group", "code", "name", "period", "meetings", "responses", "mean", "change"]
    columns += [f"{k}_mean" for k in keys] + [f"{k}_responses" for k in keys]
    rows = []
    for r in report.rows:
        row: Row = {c: getattr(r, c) for c in columns[:8]}
        for q in r.questions:
            row[f"{q.key}_mean"] = q.mean
            row[f"{q.key}_responses"] = q.responses
        rows.append(row)
    return rows, columns


# --- GeoJSON -------------------------------------------------------------------------------------


@cache
def _boundaries() -> dict[str, dict[str, Any]]:
    with BOUNDARIES.open(encoding="utf-8") as f:
        features = json.load(f)["features"]
    return {f["properties"]["KnKod"]: f["geometry"] for f in features}


@cache
def _union(codes: frozenset[str]) -> dict[str, Any]:
    # Counties and police regions have no polygons of their own in the reference data.
    boundaries = _boundaries()
    shapes = [shapely.from_geojson(json.dumps(boundaries[c])) for c in sorted(codes) if c in boundaries]
    merged = shapely.union_all(shapes, grid_size=1e-6)
    geometry: dict[str, Any] = json.loads(shapely.to_geojson(shapely.set_precision(merged, 1e-5)))
    return geometry


def municipality_features(rows: Iterable[Row], code_key: str = "municipality_code") -> bytes:
    boundaries = _boundaries()
    return _collection(
        {"type": "Feature", "id": row[code_key], "geometry": boundaries.get(row[code_key]), "properties": row}
        for row in rows
    )


def group_features(rows: Iterable[Row], members: Mapping[str, frozenset[str]]) -> bytes:
    return _collection(
        {"type": "Feature", "id": row["code"], "geometry": _union(members[row["code"]]), "properties": row}
        for row in rows
    )


def point_features(points: Iterable[schemas.UnreachedPoint]) -> bytes:
    features = []
    for p in points:
        row = plain_row(p)
        geometry = (
            {"type": "Point", "coordinates": [p.longitude, p.latitude]}
            if p.latitude is not None and p.longitude is not None
            else None
        )
        features.append({"type": "Feature", "id": str(p.id), "geometry": geometry, "properties": row})
    return _collection(features)


def _collection(features: Iterable[dict[str, Any]]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}, ensure_ascii=False).encode()
