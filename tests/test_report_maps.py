"""The reports dashboard's SVG maps: parsed back as XML, no database needed."""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET

import pytest
import shapely

from service.reports import maps
from service.reports.maps import MapPoint, legend, municipality_map, points_map

SVG = "{http://www.w3.org/2000/svg}"
NORRBOTTEN = "25"
ALVSBYN = "2560"


def xml(text: str) -> ET.Element:
    return ET.fromstring(text)  # noqa: S314 - the module's own output, never outside data


def parse(svg: str) -> ET.Element:
    root = xml(svg)
    assert root.tag == f"{SVG}svg"
    return root


def view_box(root: ET.Element) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) for v in root.attrib["viewBox"].split())
    return x, y, w, h


def paths(root: ET.Element) -> list[ET.Element]:
    return list(root.iter(f"{SVG}path"))


def title(element: ET.Element) -> str | None:
    found = element.find(f"{SVG}title")
    return None if found is None else found.text


def decode(d: str) -> list[list[tuple[float, float]]]:
    """The rings of a path written as `M x y l dx dy … z` (what the module writes)."""
    rings = []
    number = r"-?(?:\d+\.?\d*|\.\d+)"
    for start, steps in re.findall(r"M([^l]*)l([^z]*)z", d):
        x, y = (float(v) for v in re.findall(number, start))
        ring = [(x, y)]
        deltas = [float(v) for v in re.findall(number, steps)]
        assert len(deltas) % 2 == 0
        for dx, dy in zip(deltas[::2], deltas[1::2], strict=True):
            x, y = x + dx, y + dy
            ring.append((x, y))
        rings.append(ring)
    assert rings, d
    return rings


def national(links: dict[str, str] | None = None) -> str:
    return municipality_map({}, links=links, label="Sverige")


def test_national_map_has_every_municipality_with_its_fill() -> None:
    codes = [m.code for m in maps.municipalities()]
    assert len(codes) == len(set(codes)) == 290
    fills = {code: f"#{i:06x}" for i, code in enumerate(codes)}
    root = parse(municipality_map(fills, label="Sverige"))
    drawn = paths(root)
    assert len(drawn) == 290
    assert {p.attrib["data-code"]: p.attrib["fill"] for p in drawn} == fills
    names = {m.code: m.name for m in maps.municipalities()}
    assert all(title(p) == names[p.attrib["data-code"]] for p in drawn)
    assert names[ALVSBYN] == "Älvsbyn"


def test_root_attributes_make_a_labelled_scalable_image() -> None:
    root = parse(municipality_map({}, label='Andel "klara" & <övriga>'))
    assert root.attrib["role"] == "img"
    assert root.attrib["aria-label"] == 'Andel "klara" & <övriga>'
    assert root.attrib["preserveAspectRatio"] == "xMidYMid meet"
    assert root.attrib["width"] == "100%"
    assert "height" not in root.attrib


def test_a_municipality_without_a_fill_is_grey() -> None:
    root = parse(municipality_map({ALVSBYN: "#c0392b"}, label="Sverige"))
    fills = {p.attrib["data-code"]: p.attrib["fill"] for p in paths(root)}
    assert fills.pop(ALVSBYN) == "#c0392b"
    assert set(fills.values()) == {maps.MISSING_FILL}


def test_a_county_map_is_zoomed_to_its_municipalities() -> None:
    codes = maps.county_codes(NORRBOTTEN)
    assert len(codes) == 14
    county = parse(municipality_map({}, codes=codes, label="Norrbotten"))
    drawn = [p.attrib["data-code"] for p in paths(county)]
    assert sorted(drawn) == sorted(codes)
    assert all(code.startswith(NORRBOTTEN) for code in drawn)

    *_, width, height = view_box(parse(national()))
    *_, county_width, county_height = view_box(county)
    assert county_width < width
    assert county_height < height
    # Norrbotten is about a quarter of Sweden: zoomed, not merely cropped by a pixel.
    assert county_width * county_height < width * height / 3


def test_every_path_lies_inside_the_view_box_and_matches_its_geometry() -> None:
    root = parse(national())
    x0, y0, w, h = view_box(root)
    by_code = {m.code: m for m in maps.municipalities()}
    for path in paths(root):
        rings = decode(path.attrib["d"])
        xs = [x for ring in rings for x, _ in ring]
        ys = [y for ring in rings for _, y in ring]
        assert x0 <= min(xs) and max(xs) <= x0 + w
        assert y0 <= min(ys) and max(ys) <= y0 + h
        # The relative steps are taken between rounded coordinates: no drift along a ring.
        minx, miny, maxx, maxy = shapely.bounds(by_code[path.attrib["data-code"]].geometry)
        for drawn, true in zip((min(xs), min(ys), max(xs), max(ys)), (minx, miny, maxx, maxy), strict=True):
            assert drawn == pytest.approx(true, abs=0.051)


def test_unknown_codes_and_an_empty_selection_are_refused() -> None:
    with pytest.raises(KeyError):
        municipality_map({}, codes=["9999"], label="x")
    with pytest.raises(ValueError, match="at least one"):
        municipality_map({}, codes=[], label="x")


def test_titles_are_text_not_markup() -> None:
    nasty = "<script>alert(1)</script>&\"'\x00"
    svg = municipality_map({ALVSBYN: "#fff"}, titles={ALVSBYN: nasty}, label="Sverige")
    root = parse(svg)
    assert not list(root.iter("script")) and not list(root.iter(f"{SVG}script"))
    path = next(p for p in paths(root) if p.attrib["data-code"] == ALVSBYN)
    assert title(path) == nasty.replace("\x00", "")  # XML cannot carry NUL at all
    assert "&lt;script&gt;" in svg


def test_links_wrap_paths_in_anchors() -> None:
    root = parse(national(links={ALVSBYN: "/reports/municipalities/2560?x=1&y=2"}))
    anchors = list(root.iter(f"{SVG}a"))
    assert len(anchors) == 1
    assert anchors[0].attrib["href"] == "/reports/municipalities/2560?x=1&y=2"
    (path,) = paths(anchors[0])
    assert path.attrib["data-code"] == ALVSBYN
    assert len(paths(root)) == 290


@pytest.mark.parametrize("href", ["javascript:alert(1)", " JavaScript:alert(1)", "java\tscript:x", "data:,x"])
def test_links_with_a_script_scheme_are_refused(href: str) -> None:
    with pytest.raises(ValueError, match="unsafe"):
        national(links={ALVSBYN: href})


def test_the_national_map_is_small_enough() -> None:
    fills = {m.code: "#3182bd" for m in maps.municipalities()}
    titles = {m.code: f"{m.name}: 12 av 20 butiker klara (60 %)" for m in maps.municipalities()}
    links = {m.code: f"/reports/municipalities/{m.code}" for m in maps.municipalities()}
    svg = municipality_map(fills, titles=titles, links=links, label="Sverige")
    assert len(svg.encode()) <= 250_000


def test_the_projection_keeps_swedens_shape() -> None:
    # Sweden is about 1,570 km from north to south and 500 km across (its bounding box, slanted,
    # is wider): an unscaled lon/lat plot would be about 1.2 times as tall as wide, a plot that
    # ignored the meridians' convergence about 1.3.
    _, _, width, height = view_box(parse(national()))
    assert 1.8 <= height / width <= 2.8
    # One unit is a kilometre: Smygehuk (55.34° N) to Treriksröset (69.06° N) is 1,526 km.
    assert 1500 < height < 1700


def test_points_map_places_a_point_at_the_municipalitys_centre() -> None:
    raw = json.loads(maps.BOUNDARIES.read_text(encoding="utf-8"))["features"]
    feature = next(f for f in raw if f["properties"]["KnKod"] == ALVSBYN)
    centre = shapely.centroid(shapely.from_geojson(json.dumps(feature["geometry"])))
    assert centre.y == pytest.approx(65.67, abs=0.3)
    assert centre.x == pytest.approx(21.0, abs=0.5)
    points = [
        MapPoint(centre.y, centre.x, "pickup", "Ica <Älvsbyn> & Co", "https://example.se/a?b=1&c=2"),
        MapPoint(None, None, "pickup", "Utan koordinater"),
        MapPoint(math.nan, 21.0, "pickup", "Trasiga koordinater"),
        MapPoint(65.7, 21.1, "school", "Skolan"),
    ]
    svg = points_map(ALVSBYN, points, colours={"pickup": "#e6550d"}, label="Älvsbyn")
    root = parse(svg)
    assert root.attrib["role"] == "img"
    assert root.attrib["aria-label"] == "Älvsbyn"
    assert root.attrib["preserveAspectRatio"] == "xMidYMid meet"

    circles = list(root.iter(f"{SVG}circle"))
    assert [title(c) for c in circles] == ["Ica <Älvsbyn> & Co", "Skolan"]
    assert [c.attrib["data-category"] for c in circles] == ["pickup", "school"]
    assert circles[0].attrib["fill"] == "#e6550d"
    assert circles[1].attrib["fill"] == maps.MISSING_POINT_FILL

    x0, y0, w, h = view_box(root)
    cx, cy, r = (float(circles[0].attrib[k]) for k in ("cx", "cy", "r"))
    assert x0 < cx < x0 + w and y0 < cy < y0 + h
    # Near the middle of the map, and inside the municipality's own outline.
    assert abs(cx - (x0 + w / 2)) < w / 4 and abs(cy - (y0 + h / 2)) < h / 4
    (outline,) = [p for p in paths(root) if p.attrib["data-code"] == ALVSBYN]
    assert title(outline) == "Älvsbyn"
    polygon = shapely.Polygon(decode(outline.attrib["d"])[0])
    assert polygon.contains(shapely.Point(cx, cy))
    # Readable on a phone: at 360 px across, a dot at least 8 px wide.
    assert 2 * r / max(w, h) * 360 >= 8

    anchors = list(root.iter(f"{SVG}a"))
    assert len(anchors) == 1
    assert anchors[0].attrib["href"] == "https://example.se/a?b=1&c=2"
    assert anchors[0].find(f"{SVG}circle") is circles[0]


def test_points_map_shows_neighbours_cut_at_the_edge() -> None:
    root = parse(points_map(ALVSBYN, [], colours={}, label="Älvsbyn"))
    x0, y0, w, h = view_box(root)
    codes = [p.attrib["data-code"] for p in paths(root)]
    assert codes[-1] == ALVSBYN  # drawn last, so its border lies on top
    neighbours = set(codes[:-1])
    assert {"2582", "2581"} <= neighbours  # Boden and Piteå border Älvsbyn
    assert all(code.startswith(NORRBOTTEN) for code in neighbours)
    for path in paths(root):
        for ring in decode(path.attrib["d"]):
            assert all(x0 - 0.01 <= x <= x0 + w + 0.01 and y0 - 0.01 <= y <= y0 + h + 0.01 for x, y in ring)
    assert not list(root.iter(f"{SVG}circle"))


def test_a_far_away_point_does_not_zoom_the_map_out() -> None:
    alone = view_box(parse(points_map(ALVSBYN, [], colours={}, label="x")))
    malmo = MapPoint(55.6, 13.0, "pickup", "Malmö")
    assert view_box(parse(points_map(ALVSBYN, [malmo], colours={}, label="x"))) == alone


def test_points_map_refuses_an_unknown_municipality() -> None:
    with pytest.raises(KeyError, match="9999"):
        points_map("9999", [], colours={}, label="x")


def test_legend_lists_swatches_in_the_labels_order() -> None:
    html = legend({"a": "#111111", "b": "#222222"}, {"b": "Klar & godkänd", "a": "<Ej klar>"})
    root = xml(html)
    assert root.tag == "ul"
    items = root.findall("li")
    assert all(li.find("svg") is not None for li in items)  # inline HTML: no namespace needed
    assert ["".join(li.itertext()).strip() for li in items] == ["Klar & godkänd", "<Ej klar>"]
    fills = [rect.attrib["fill"] for rect in root.iter("rect")]
    assert fills == ["#222222", "#111111"]
