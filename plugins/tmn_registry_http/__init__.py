"""The `registry_http` registry plugin: a carrier's pickup points fetched from a JSON API over HTTP.

Implements `tmn_fetch_pickup_points(carrier, config)`. Settings (`TMN_PLUGIN_CONFIG`, key
`registry_http`)::

    {"registry_http": {
        "timeout_seconds": 30,
        "carriers": {
            "postnord": {
                "url": "https://api2.postnord.com/rest/businesslocation/v5/servicepoints/information",
                "params": {"apikey": "…", "returnType": "json", "countryCode": "SE", "perPage": 1000},
                "paging": {"param": "page", "start": 1}
            },
            "budbee": {
                "url": "https://…/boxes",
                "headers": {"Accept": "application/vnd.budbee.boxes-v1+json"},
                "items": "lockers",
                "mapping": {"carrier_point_id": "id", "name": "name", "kind": {"value": "locker"},
                            "street_address": "address.street", "postal_code": "address.postalCode",
                            "city": "address.city", "latitude": "address.coordinate.latitude",
                            "longitude": "address.coordinate.longitude",
                            "opening_hours": {"path": "openingHours.periods", "format": "hours"}}
            }
        }
    }}

A carrier that is not under `carriers` is not served: the hook returns None for it.

Per carrier:

- `url` (required): fetched with GET. `headers` and `params` (query parameters) are sent as given;
  an API key belongs in one of them. `timeout_seconds` (per request; default the plugin-wide
  `timeout_seconds`, 30). The whole pull is also bounded by the host's per-call timeout
  (`TMN_REGISTRY_PULL_TIMEOUT_SECONDS` for scheduled syncs).
- `items`: the dotted path from the JSON answer to the list of points. Default
  `servicePointInformationResponse.servicePoints` (PostNord's envelope). An answer that is itself
  a list is used as it is. An answer without a list at that path is an error (an empty list is
  not invented: a full snapshot that is empty would close every point).
- `where` (optional): `{"path": value, …}` keeps only the items whose value at each path equals the
  given value (e.g. `{"visitingAddress.countryCode": "SE"}` on PostNord's Nordic dump).
- `mapping` (optional): how a point becomes a `PickupPointRecord`; entries given here replace the
  default's entries of the same field (so a carrier that differs in one field lists only that field;
  set a field to null to leave it unmapped). Each value is one of:

  - `"a.b.0.c"`: a dotted path into the item; a segment of digits indexes a list
    (`"coordinates.0.northing"`);
  - `["a.b", "a.c"]`: several paths whose values that are present are joined with a space
    (`["visitingAddress.streetName", "visitingAddress.streetNumber"]` gives "Stinsgatan 2");
  - `{"value": "locker"}`: a constant;
  - `{"path": …, "values": {"2": "locker"}, "default": "pickup_point"}`: the value at the path
    (a path or a list of paths, as above) looked up, as text, in `values`; `default` when it is
    missing or not listed;
  - `{"path": …, "format": "hours"}`: a list of opening periods written as compact text,
    "Mon 07:00-20:00, Tue 07:00-20:00, …" (several periods a day: "Mon 08:00-09:30 & 15:00-18:00").
    Understands PostNord's `{openDay, openTime, closeDay, closeTime}` and Budbee's
    `{open: {day, time}, close: {day, time} | null}` (no close: "Fri from 00:00");
  - `{"path": …, "format": "join", "separator": "; "}`: a list of texts joined (e.g. Budbee's
    `openingHours.weekdayText`).

- `paging` (optional): `{"param": "page", "start": 1, "stop_when_empty": true, "max_pages": 1000,
  "page_size": null}` fetches page after page, setting the query parameter `param` to `start`,
  `start + 1`, …, until a page has no items (`stop_when_empty`), or fewer than `page_size` items
  when that is given. Reaching `max_pages` without either is an error (the list would be
  incomplete) unless `stop_when_empty` is false and `page_size` unset: then `max_pages` is
  the number of pages to fetch. A page identical to the one before is an error too (the registry
  ignores the parameter).

The default mapping is PostNord's Business Location API v5 ("service points"):

    carrier_point_id  servicePointId
    name              name
    kind              "locker" when type.groupTypeId is 2 ("Service box"), else "pickup_point"
    street_address    visitingAddress.streetName + " " + visitingAddress.streetNumber
    postal_code       visitingAddress.postalCode
    city              visitingAddress.city
    latitude          coordinates.0.northing
    longitude         coordinates.0.easting
    opening_hours     openingHours.postalServices as "Mon 07:00-20:00, Tue …"

`PickupPointRecord.kind` is free text here; TMN's sync accepts `pickup_point` (an agent, "ombud"),
`locker` (a parcel box), `terminal` and `mail_carrier_office`.

Values: a missing or empty value maps to None (for `carrier_point_id` and `name`, which the record
requires, to ""), so that the sync reports the row as an error instead of it disappearing here.
Numbers given for text fields are written as text; coordinates given as text are parsed (a decimal
comma is accepted); a coordinate that is not a finite number maps to None. PostNord's `0,0` for an
unknown position is kept as 0.0/0.0: the sync decides that it lies in no municipality. Only items
that are not JSON objects are skipped.

Failure: an HTTP error status, an answer that is not JSON, or a missing list raises
`RegistryError` with a short message naming the carrier (and the status); response bodies and
URLs (which may hold an API key) are never put in messages or logs.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Mapping
from typing import Any

import httpx
import msgspec

from service.pluginspec import PickupPointRecord, hookimpl

__version__ = "1.0.0"

PLUGIN = "registry_http"
DEFAULT_ITEMS = "servicePointInformationResponse.servicePoints"
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_MAPPING: dict[str, Any] = {
    "carrier_point_id": "servicePointId",
    "name": "name",
    "kind": {"path": "type.groupTypeId", "values": {"2": "locker"}, "default": "pickup_point"},
    "street_address": ["visitingAddress.streetName", "visitingAddress.streetNumber"],
    "postal_code": "visitingAddress.postalCode",
    "city": "visitingAddress.city",
    "latitude": "coordinates.0.northing",
    "longitude": "coordinates.0.easting",
    "opening_hours": {"path": "openingHours.postalServices", "format": "hours"},
}
FIELDS = tuple(PickupPointRecord.__struct_fields__)
_TEXT_FIELDS = ("kind", "street_address", "postal_code", "city", "opening_hours")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MISSING = object()


class RegistryError(Exception):
    """The registry answered something unusable. The message names the carrier, never the URL."""


@hookimpl
async def tmn_fetch_pickup_points(carrier: str, config: dict[str, Any]) -> list[PickupPointRecord] | None:
    carriers = config.get("carriers") or {}
    if not isinstance(carriers, Mapping) or carrier not in carriers:
        return None
    spec = carriers[carrier]
    if not isinstance(spec, Mapping) or not isinstance(spec.get("url"), str) or not spec["url"]:
        raise RegistryError(f"{carrier}: the setting 'url' is required")
    mapping = _mapping(carrier, spec.get("mapping"))
    timeout = float(spec.get("timeout_seconds", config.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)))
    items = await _fetch_items(carrier, spec, timeout)
    where = spec.get("where") or {}
    if not isinstance(where, Mapping):
        raise RegistryError(f"{carrier}: the setting 'where' must be an object")
    return [
        map_item(item, mapping)
        for item in items
        if isinstance(item, dict) and all(resolve(item, str(p)) == v for p, v in where.items())
    ]


# --- fetching ---------------------------------------------------------------------------------


async def _fetch_items(carrier: str, spec: Mapping[str, Any], timeout_seconds: float) -> list[Any]:
    items_path = str(spec.get("items", DEFAULT_ITEMS))
    headers = {
        "Accept": "application/json",
        **{str(k): str(v) for k, v in (spec.get("headers") or {}).items()},
    }
    params = dict(spec.get("params") or {})
    paging = spec.get("paging")
    async with httpx.AsyncClient(timeout=timeout_seconds, headers=headers, follow_redirects=True) as client:
        if not paging:
            return _items(carrier, await _get(client, carrier, str(spec["url"]), params), items_path)
        if not isinstance(paging, Mapping):
            raise RegistryError(f"{carrier}: the setting 'paging' must be an object")
        param = str(paging.get("param", "page"))
        start = int(paging.get("start", 1))
        max_pages = int(paging.get("max_pages", 1000))
        stop_when_empty = bool(paging.get("stop_when_empty", True))
        page_size = int(paging["page_size"]) if paging.get("page_size") else None
        collected: list[Any] = []
        previous: bytes | None = None
        for page in range(start, start + max_pages):
            body = await _get(client, carrier, str(spec["url"]), {**params, param: page})
            if previous is not None and body == previous:
                raise RegistryError(f"{carrier}: page {page} repeats the one before (is '{param}' ignored?)")
            previous = body
            found = _items(carrier, body, items_path)
            collected.extend(found)
            if (stop_when_empty and not found) or (page_size is not None and len(found) < page_size):
                return collected
        if stop_when_empty or page_size is not None:
            raise RegistryError(f"{carrier}: still not at the last page after {max_pages} pages")
        return collected


async def _get(client: httpx.AsyncClient, carrier: str, url: str, params: dict[str, Any]) -> bytes:
    response = await client.get(url, params=params)
    if not response.is_success:
        raise RegistryError(f"{carrier}: the registry answered HTTP {response.status_code}")
    body = response.content
    if body[:2] == b"\x1f\x8b":  # a .json.gz file served without Content-Encoding
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError):
            raise RegistryError(
                f"{carrier}: the registry's answer (HTTP {response.status_code}) is broken gzip"
            ) from None
    return body


def _items(carrier: str, body: bytes, path: str) -> list[Any]:
    try:
        document = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise RegistryError(f"{carrier}: the registry's answer is not JSON") from None
    if isinstance(document, list):
        return document
    found = resolve(document, path)
    if not isinstance(found, list):
        raise RegistryError(f"{carrier}: the registry's answer has no list at '{path}'")
    return found


# --- mapping ----------------------------------------------------------------------------------


def _mapping(carrier: str, custom: Any) -> dict[str, Any]:
    if custom is None:
        return dict(DEFAULT_MAPPING)
    if not isinstance(custom, Mapping):
        raise RegistryError(f"{carrier}: the setting 'mapping' must be an object")
    unknown = sorted(set(custom) - set(FIELDS))
    if unknown:
        raise RegistryError(f"{carrier}: 'mapping' names unknown fields: {', '.join(map(str, unknown))}")
    return {**DEFAULT_MAPPING, **custom}


def resolve(value: Any, path: str) -> Any:
    """The value at a dotted path (`a.b.0.c`; digits index lists), or None when absent."""
    for segment in path.split(".") if path else ():
        if isinstance(value, dict):
            value = value.get(segment)
        elif isinstance(value, list) and segment.lstrip("-").isdigit():
            index = int(segment)
            value = value[index] if -len(value) <= index < len(value) else None
        else:
            return None
    return value


def map_item(item: dict[str, Any], mapping: Mapping[str, Any]) -> PickupPointRecord:
    """One registry item as a PickupPointRecord, by a mapping (see the module's docstring)."""
    values = {field: _extract(item, rule) for field, rule in mapping.items() if rule is not None}
    text = {field: _text(values.get(field)) for field in _TEXT_FIELDS}
    return PickupPointRecord(
        carrier_point_id=_text(values.get("carrier_point_id")) or "",
        name=_text(values.get("name")) or "",
        kind=text["kind"] or "pickup_point",
        street_address=text["street_address"],
        postal_code=text["postal_code"],
        city=text["city"],
        latitude=number(values.get("latitude")),
        longitude=number(values.get("longitude")),
        opening_hours=text["opening_hours"],
    )


def _extract(item: dict[str, Any], rule: Any) -> Any:
    if isinstance(rule, str):
        return resolve(item, rule)
    if isinstance(rule, list):
        parts = [_text(resolve(item, str(path))) for path in rule]
        return " ".join(p for p in parts if p) or None
    if isinstance(rule, Mapping):
        if "value" in rule:
            return rule["value"]
        value = _extract(item, rule.get("path", ""))
        fmt = rule.get("format")
        if fmt == "hours":
            value = hours_text(value)
        elif fmt == "join":
            value = str(rule.get("separator", "; ")).join(t for t in map(_text, _as_list(value)) if t) or None
        elif fmt is not None:
            raise ValueError(f"unknown mapping format {fmt!r}")
        if "values" in rule:
            lookup = rule["values"]
            key = _text(value)
            value = lookup.get(key, _MISSING) if key is not None else _MISSING
            if value is _MISSING:
                value = rule.get("default")
        elif value is None:
            value = rule.get("default")
        return value
    raise ValueError(
        f"a mapping entry must be a path, a list of paths or an object, not {type(rule).__name__}"
    )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def number(value: Any) -> float | None:
    """A coordinate: numbers as they are, text parsed (a decimal comma accepted); else None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip().replace(",", "."))
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


def _day(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    key = text[:3].lower()
    return key.capitalize() if key in _DAYS else text


def _time(value: Any) -> str | None:
    text = _text(value)
    return text[:5] if text and len(text) >= 8 and text[2] == ":" and text[5] == ":" else text


def hours_text(periods: Any) -> str | None:
    """Opening periods as "Mon 07:00-20:00, Tue …", in week order, a day's periods by time."""
    days: dict[str, list[str]] = {}
    for period in _as_list(periods):
        if not isinstance(period, dict):
            continue
        if isinstance(period.get("open"), dict):  # Budbee: {open: {day, time}, close: {day, time} | null}
            opening, closing = period["open"], period.get("close")
            open_day, open_time = _day(opening.get("day")), _time(opening.get("time"))
            close_day = _day(closing.get("day")) if isinstance(closing, dict) else None
            close_time = _time(closing.get("time")) if isinstance(closing, dict) else None
        else:  # PostNord: {openDay, openTime, closeDay, closeTime}
            open_day, open_time = _day(period.get("openDay")), _time(period.get("openTime"))
            close_day, close_time = _day(period.get("closeDay")), _time(period.get("closeTime"))
        if open_day is None or open_time is None:
            continue
        if close_time is None:
            span = f"from {open_time}"
        elif close_day not in (None, open_day):
            span = f"{open_time}-{close_day} {close_time}"
        else:
            span = f"{open_time}-{close_time}"
        days.setdefault(open_day, []).append(span)
    if not days:
        return None

    def order(day: str) -> int:
        key = day.lower()
        return _DAYS.index(key) if key in _DAYS else len(_DAYS)

    return ", ".join(
        f"{day} {' & '.join(sorted(spans))}" for day, spans in sorted(days.items(), key=lambda d: order(d[0]))
    )
