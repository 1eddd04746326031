"""Server-side SVG maps of Swedish municipalities for the reports dashboard.

Pure functions: geometry in, an SVG (or HTML) string out. The SVG is meant to be embedded inline
in an HTML page, so it has no XML prolog, no ids (two maps on one page cannot clash), no style
attributes or <style> elements (a strict Content-Security-Policy stays possible, and an inline
<style> would leak into the whole page), and every piece of text or attribute value is escaped.

Projection: a spherical transverse Mercator on the 15° E meridian, which is what SWEREF 99 TM (the
Swedish national grid) is on the ellipsoid. It is conformal, so shapes are right, and its scale
error is under 0.1 % across Sweden. One unit of the plane is one kilometre; SVG's y axis points
down, so the plane's y is minus the northing.

Simplification: the boundaries in the GeoJSON are already generalised (about 9,700 vertices for
the whole country). The national maps use `shapely.coverage_simplify`, which simplifies each
border once for both municipalities that share it, so no slivers or gaps open between
neighbours; the points map draws one municipality large and uses the unsimplified boundaries.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from service.registries.placement import BOUNDARIES

EARTH_RADIUS_KM = 6371.0  # the mean radius; the sphere's error is far below what a map shows
CENTRAL_MERIDIAN = 15.0  # as SWEREF 99 TM
# Visvalingam–Whyatt tolerance (roughly the square root of the triangle areas removed), in km.
# At 0.5 km the national map keeps the shape of every municipality, even Sundbyberg (9 km²).
SIMPLIFY_KM = 0.5

MISSING_FILL = "#d9d9d9"  # a municipality without a value: neutral, lighter than any data colour
MISSING_POINT_FILL = "#555555"  # a category without a colour: still visible, clearly unassigned
BORDER = "#ffffff"  # white borders are the choropleth convention: they read as gaps, not data
FOCUS_FILL = "#ebebeb"
FOCUS_BORDER = "#555555"
NEIGHBOUR_FILL = "#f6f6f6"
NEIGHBOUR_BORDER = "#c8c8c8"
SVG_NS = "http://www.w3.org/2000/svg"

FloatArray = npt.NDArray[np.float64]
Bounds = tuple[float, float, float, float]  # min x, min y, max x, max y (y down, as in SVG)


@dataclass(frozen=True, slots=True)
class MunicipalityShape:
    code: str  # KnKod, four digits
    name: str
    county_code: str  # the first two digits of the code
    geometry: BaseGeometry  # projected (km, y down) and simplified: for county and national maps
    detail: BaseGeometry  # projected, not simplified: for one municipality drawn large
    bounds: Bounds  # of `detail`, so a zoomed map never cuts its own municipality off


@dataclass(frozen=True, slots=True)
class MapPoint:
    latitude: float | None  # WGS84 degrees; None (or NaN) when the place has no coordinates
    longitude: float | None
    category: str  # a key of the `colours` given to `points_map`
    title: str  # plain text, shown as the tooltip and read by screen readers
    href: str | None = None


def project(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """WGS84 degrees to the map plane: kilometres east of 15° E, and south of the equator (y down)."""
    phi = np.radians(lat)
    dlam = np.radians(lon - CENTRAL_MERIDIAN)
    b = np.cos(phi) * np.sin(dlam)
    x: FloatArray = EARTH_RADIUS_KM * np.arctanh(b)
    y: FloatArray = -EARTH_RADIUS_KM * np.arctan2(np.tan(phi), np.cos(dlam))
    return x, y


def _project_coords(coords: FloatArray) -> FloatArray:
    x, y = project(coords[:, 0], coords[:, 1])
    return np.column_stack((x, y))


@cache
def municipalities() -> tuple[MunicipalityShape, ...]:
    """The 290 municipalities in the GeoJSON's order, projected and simplified (once per process)."""
    features = json.loads(BOUNDARIES.read_text(encoding="utf-8"))["features"]
    raw = np.asarray(shapely.from_geojson([json.dumps(f["geometry"]) for f in features]))
    detail = np.asarray(shapely.transform(raw, _project_coords))
    simplified = np.asarray(shapely.coverage_simplify(detail, SIMPLIFY_KM))
    shapes = []
    for feature, full, simple in zip(features, detail, simplified, strict=True):
        code = str(feature["properties"]["KnKod"])
        minx, miny, maxx, maxy = (float(v) for v in shapely.bounds(full))
        shapes.append(
            MunicipalityShape(
                code=code,
                name=str(feature["properties"]["KnNamn"]),
                county_code=code[:2],
                # Coverage simplification can only drop an island smaller than its tolerance;
                # the unsimplified boundary stands in so that no municipality vanishes.
                geometry=full if shapely.is_empty(simple) else simple,
                detail=full,
                bounds=(minx, miny, maxx, maxy),
            )
        )
    return tuple(shapes)


@cache
def _by_code() -> dict[str, MunicipalityShape]:
    return {m.code: m for m in municipalities()}


def municipality(code: str) -> MunicipalityShape:
    """One municipality by its four-digit code; KeyError names an unknown code."""
    try:
        return _by_code()[code]
    except KeyError:
        raise KeyError(f"unknown municipality code {code!r}") from None


def county_codes(county_code: str) -> list[str]:
    """The municipality codes of one county (for `municipality_map(..., codes=...)`)."""
    return [m.code for m in municipalities() if m.county_code == county_code]


# ---- escaping ------------------------------------------------------------------------------

# Characters XML 1.0 forbids even as references: a stray one would make the whole page's SVG
# unparseable (and an XHTML page fail), so they are dropped.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: str) -> str:
    value = _XML_FORBIDDEN.sub("", value)
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attr(value: str) -> str:
    return _text(value).replace('"', "&quot;").replace("'", "&#39;")


_SAFE_SCHEMES = frozenset({"", "http", "https", "mailto"})


def _href(value: str) -> str:
    # Links may come from imported data (a pickup point's web page); a javascript: or data: URL
    # inside inline SVG would run in the dashboard's origin. Browsers ignore leading control
    # characters and spaces and tabs or newlines inside a scheme, so those are removed first.
    cleaned = re.sub("[\t\n\r]", "", value).lstrip("".join(map(chr, range(33))))
    if urlsplit(cleaned).scheme.lower() not in _SAFE_SCHEMES:
        raise ValueError(f"link with an unsafe scheme: {value!r}")
    return _attr(cleaned)


# ---- SVG -----------------------------------------------------------------------------------


def _decimals(extent: float) -> int:
    # Coordinates are rounded to about a thousandth of the map's extent: finer is invisible and
    # only makes the document larger. A national map gets 100 m, one small municipality 1 m.
    return min(3, max(1, math.ceil(math.log10(1000 / max(extent, 1e-9)))))


def _num(units: int, decimals: int) -> str:
    """An integer count of 10**-decimals km as the shortest SVG number ("-1.5", ".25", "12")."""
    whole, frac = divmod(abs(units), 10**decimals)
    text = str(whole)
    if frac:
        digits = f"{frac:0{decimals}d}".rstrip("0")
        text = f".{digits}" if whole == 0 else f"{whole}.{digits}"
    return f"-{text}" if units < 0 else text


def _numbers(values: Iterable[str]) -> str:
    # SVG path grammar needs no separator before a minus sign.
    return "".join(v if v.startswith("-") else f" {v}" for v in values).lstrip()


def _ring(coords: FloatArray, decimals: int) -> str:
    # Rounding happens on absolute coordinates and the relative steps are taken between rounded
    # values, so the small relative numbers never accumulate rounding drift.
    ticks = np.rint(coords * 10**decimals).astype(np.int64)
    if len(ticks) > 1 and np.array_equal(ticks[0], ticks[-1]):
        ticks = ticks[:-1]  # "z" closes the ring
    if len(ticks) > 1:
        moved = np.any(np.diff(ticks, axis=0) != 0, axis=1)
        ticks = np.concatenate((ticks[:1], ticks[1:][moved]))
    if len(ticks) > 1 and np.array_equal(ticks[0], ticks[-1]):
        ticks = ticks[:-1]
    if len(ticks) < 3:
        return ""  # an island smaller than the rounding: nothing to draw
    start = _numbers(_num(int(v), decimals) for v in ticks[0])
    steps = _numbers(_num(int(v), decimals) for v in np.diff(ticks, axis=0).ravel())
    return f"M{start}l{steps}z"


def _path_data(geometry: BaseGeometry, decimals: int) -> str:
    rings = shapely.get_rings(shapely.get_parts(geometry))
    return "".join(_ring(shapely.get_coordinates(r), decimals) for r in rings)


def _fit(bounds: Iterable[Bounds], margin: float = 0.03) -> Bounds:
    """The union of `bounds`, widened by `margin` of its larger side on every side."""
    minx, miny, maxx, maxy = math.inf, math.inf, -math.inf, -math.inf
    for b in bounds:
        minx, miny = min(minx, b[0]), min(miny, b[1])
        maxx, maxy = max(maxx, b[2]), max(maxy, b[3])
    if minx > maxx:
        raise ValueError("a map needs at least one municipality")
    pad = max(maxx - minx, maxy - miny) * margin
    return (minx - pad, miny - pad, maxx + pad, maxy + pad)


def _open_svg(box: Bounds, decimals: int, label: str) -> str:
    minx, miny, maxx, maxy = (round(v * 10**decimals) for v in box)
    view_box = " ".join(_num(v, decimals) for v in (minx, miny, maxx - minx, maxy - miny))
    # width 100% and no height: the browser takes the height from the viewBox's proportions, so
    # the map fills a phone's width; the caller's CSS may cap it (max-height) and "meet" centres.
    return (
        f'<svg xmlns="{SVG_NS}" viewBox="{view_box}" preserveAspectRatio="xMidYMid meet" '
        f'width="100%" role="img" aria-label="{_attr(label)}">'
    )


def _stroke_width(box: Bounds, fraction: float) -> str:
    # In viewBox units, proportional to the map, rather than vector-effect="non-scaling-stroke",
    # which is not inherited (it would cost an attribute on every path) and which PDF and image
    # converters often ignore.
    extent = max(box[2] - box[0], box[3] - box[1])
    return f"{extent * fraction:.3g}"


def _linked(element: str, href: str | None) -> str:
    return element if href is None else f'<a href="{_href(href)}">{element}</a>'


def municipality_map(
    fills: Mapping[str, str],
    *,
    codes: Iterable[str] | None = None,
    titles: Mapping[str, str] | None = None,
    links: Mapping[str, str] | None = None,
    label: str,
) -> str:
    """An SVG choropleth: one <path data-code=…> per municipality, filled with `fills[code]`.

    `codes` limits the map to those municipalities (a county: `county_codes("25")`) and zooms
    the viewBox to them; unknown codes raise KeyError, an empty selection ValueError. A code
    without a fill is grey. Each path's <title> is `titles[code]`, else the municipality's name;
    with `links[code]` the path is wrapped in <a href>. `label` is the whole map's accessible name.
    """
    if codes is None:
        shown = list(municipalities())
    else:
        wanted = set(codes)
        for code in wanted:
            municipality(code)  # raises for an unknown code
        shown = [m for m in municipalities() if m.code in wanted]
    titles = titles or {}
    links = links or {}
    box = _fit(m.bounds for m in shown)
    decimals = _decimals(max(box[2] - box[0], box[3] - box[1]))
    parts = [
        _open_svg(box, decimals, label),
        f'<g stroke="{BORDER}" stroke-width="{_stroke_width(box, 0.0012)}" stroke-linejoin="round" '
        'fill-rule="evenodd">',
    ]
    for m in shown:
        fill = fills.get(m.code, MISSING_FILL)
        title = titles.get(m.code, m.name)
        path = (
            f'<path data-code="{m.code}" fill="{_attr(fill)}" d="{_path_data(m.geometry, decimals)}">'
            f"<title>{_text(title)}</title></path>"
        )
        parts.append(_linked(path, links.get(m.code)))
    parts.append("</g></svg>")
    return "".join(parts)


def _placed(points: Sequence[MapPoint]) -> Iterator[tuple[MapPoint, float, float]]:
    """The points that have coordinates, with their place on the map plane."""
    for point in points:
        if point.latitude is None or point.longitude is None:
            continue
        if not (math.isfinite(point.latitude) and math.isfinite(point.longitude)):
            continue
        x, y = project(np.array([point.longitude]), np.array([point.latitude]))
        yield point, float(x[0]), float(y[0])


def points_map(
    municipality_code: str,
    points: Sequence[MapPoint],
    *,
    colours: Mapping[str, str],
    label: str,
) -> str:
    """An SVG of one municipality with a <circle data-category=…> per point that has coordinates.

    Neighbouring municipalities are drawn lighter, cut at the map's edge. Points without
    coordinates are left out (the caller lists them); a point far outside the municipality does
    not zoom the map out to reach it. A category without a colour is dark grey. An unknown
    municipality code raises KeyError.
    """
    focus = municipality(municipality_code)
    placed = list(_placed(points))
    # Points just outside the boundary (a quay in the generalised coastline's gap) widen the map;
    # a point far away is a data error and is not allowed to shrink the municipality to a dot.
    minx, miny, maxx, maxy = focus.bounds
    reach = max(maxx - minx, maxy - miny) * 0.25
    near = [
        (x, y, x, y)
        for _, x, y in placed
        if minx - reach <= x <= maxx + reach and miny - reach <= y <= maxy + reach
    ]
    box = _fit([focus.bounds, *near], margin=0.05)
    extent = max(box[2] - box[0], box[3] - box[1])
    decimals = _decimals(extent)
    parts = [_open_svg(box, decimals, label)]

    neighbours = []
    for m in municipalities():
        b = m.bounds
        if m.code == focus.code or b[0] > box[2] or b[2] < box[0] or b[1] > box[3] or b[3] < box[1]:
            continue
        clipped = shapely.clip_by_rect(m.detail, *box)
        if not shapely.is_empty(clipped):
            neighbours.append((m, clipped))
    thin = _stroke_width(box, 0.002)
    if neighbours:
        parts.append(
            f'<g fill="{NEIGHBOUR_FILL}" stroke="{NEIGHBOUR_BORDER}" stroke-width="{thin}" '
            'stroke-linejoin="round" fill-rule="evenodd">'
        )
        for m, clipped in neighbours:
            parts.append(
                f'<path data-code="{m.code}" d="{_path_data(clipped, decimals)}">'
                f"<title>{_text(m.name)}</title></path>"
            )
        parts.append("</g>")
    parts.append(
        f'<path data-code="{focus.code}" fill="{FOCUS_FILL}" stroke="{FOCUS_BORDER}" '
        f'stroke-width="{_stroke_width(box, 0.004)}" stroke-linejoin="round" fill-rule="evenodd" '
        f'd="{_path_data(focus.detail, decimals)}"><title>{_text(focus.name)}</title></path>'
    )

    # About 1.4 % of the map's larger side: a 10 px dot on a 360 px wide phone screen. The white
    # ring keeps points that overlap apart.
    radius = extent * 0.014
    scale = 10**decimals
    parts.append(f'<g stroke="#ffffff" stroke-width="{radius * 0.35:.3g}">')
    r = _num(round(radius * scale), decimals)
    for point, x, y in placed:
        fill = colours.get(point.category, MISSING_POINT_FILL)
        circle = (
            f'<circle data-category="{_attr(point.category)}" fill="{_attr(fill)}" '
            f'cx="{_num(round(x * scale), decimals)}" cy="{_num(round(y * scale), decimals)}" r="{r}">'
            f"<title>{_text(point.title)}</title></circle>"
        )
        parts.append(_linked(circle, point.href))
    parts.append("</g></svg>")
    return "".join(parts)


def legend(colours: Mapping[str, str], labels: Mapping[str, str]) -> str:
    """An HTML <ul class="map-legend"> with a swatch and a label per entry, in `labels`' order.

    The swatches are tiny inline SVGs rather than styled <span>s: no style attribute is needed, so
    a strict Content-Security-Policy is no obstacle, and they print with the page.
    """
    items = []
    for key, text in labels.items():
        fill = colours.get(key, MISSING_FILL)
        items.append(
            '<li><svg width="12" height="12" viewBox="0 0 12 12" aria-hidden="true" focusable="false">'
            f'<rect width="12" height="12" rx="2" fill="{_attr(fill)}"/></svg> {_text(text)}</li>'
        )
    return f'<ul class="map-legend">{"".join(items)}</ul>'
