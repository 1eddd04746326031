"""Placing pickup points in municipalities by coordinates (no database).

Reference answers are computed without the module's index or its method: containment by
shapely.intersects_xy over every raw polygon, distances by the haversine to the nearest vertex of
the boundaries densified along their edges (the module measures in a local equirectangular frame)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import shapely

from service.registries.placement import (
    BOUNDARIES,
    CoordinateError,
    Placement,
    Placer,
    default_placer,
)

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "carrier-samples"
DROTTNINGHOLMSVAGEN = (59.331627, 18.023262)  # PostNord "MY WAY DROTTNINGSHOLMSVÄGEN", 592976
EARTH_RADIUS_M = 6_371_000.0
SAMPLING_M = 11.2  # 1e-4° of latitude, the longest step of the reference's densified boundaries


def raw_boundaries() -> tuple[list[str], np.ndarray]:
    features = json.loads(BOUNDARIES.read_text(encoding="utf-8"))["features"]
    codes = [f["properties"]["KnKod"] for f in features]
    return codes, shapely.from_geojson([json.dumps(f["geometry"]) for f in features])


CODES, POLYGONS = raw_boundaries()


def containing(latitude: float, longitude: float) -> list[str]:
    """Every municipality whose raw polygon covers the point: brute force, no index."""
    inside = shapely.intersects_xy(POLYGONS, longitude, latitude)
    return [CODES[i] for i in np.flatnonzero(inside)]


def boundary_distances_m(latitude: float, longitude: float) -> dict[str, float]:
    """Great-circle metres from the point to every municipality's boundary within ~10 km (inf
    beyond): the boundaries near the point densified to vertices at most 1e-4° (11 m) apart,
    along the GeoJSON's edges (straight in lon/lat), and the nearest vertex taken. That is an
    upper bound on the true distance and at most SAMPLING_M / 2 off sideways."""
    near = shapely.clip_by_rect(
        shapely.boundary(POLYGONS), longitude - 0.3, latitude - 0.1, longitude + 0.3, latitude + 0.1
    )
    coords, which = shapely.get_coordinates(shapely.segmentize(near, 1e-4), return_index=True)
    p1, p2 = math.radians(latitude), np.radians(coords[:, 1])
    a = (
        np.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * np.cos(p2) * np.sin(np.radians(coords[:, 0] - longitude) / 2) ** 2
    )
    metres = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a))
    nearest = np.full(len(CODES), np.inf)
    np.minimum.at(nearest, which, metres)
    return dict(zip(CODES, nearest.tolist(), strict=True))


def assert_distance(placed_m: float, reference_m: float) -> None:
    """The placer's distance is to a real boundary point, so it is >= the true distance; the
    reference's is >= the true one and <= hypot(true, half the sampling step)."""
    assert placed_m <= reference_m * 1.002 + 0.01
    assert reference_m <= math.hypot(placed_m, SAMPLING_M / 2) * 1.002 + 0.01


@pytest.fixture(scope="module")
def placer() -> Placer:
    return default_placer()


@pytest.mark.parametrize(
    ("latitude", "longitude", "code"),
    [
        (65.676, 21.004, "2560"),  # Älvsbyn centre
        (65.584, 22.154, "2580"),  # Luleå
        (57.303955262565, 13.5433674461746, "0662"),  # Gislaved, ICA Kvantum
        (59.343528, 18.032009, "0180"),  # Stockholm, Norrbackagatan
        (67.855, 20.225, "2584"),  # Kiruna
    ],
)
def test_known_points_land_in_their_municipality(
    placer: Placer, latitude: float, longitude: float, code: str
) -> None:
    assert placer.place(latitude, longitude) == Placement(code, "polygon", 0.0)
    assert containing(latitude, longitude) == [code]


def test_a_point_in_a_shore_gap_is_placed_by_proximity(placer: Placer) -> None:
    latitude, longitude = DROTTNINGHOLMSVAGEN
    assert containing(latitude, longitude) == []  # in no raw polygon: a gap of the generalisation
    placed = placer.place(latitude, longitude)
    assert placed is not None
    assert placed.municipality_code == "0180"
    assert placed.method == "proximity"
    assert 0 < placed.distance_m < 5000
    reference = boundary_distances_m(latitude, longitude)
    assert min(reference, key=reference.__getitem__) == "0180"
    assert_distance(placed.distance_m, reference["0180"])


def test_tolerance_is_honoured() -> None:
    assert Placer(tolerance_m=1).place(*DROTTNINGHOLMSVAGEN) is None
    assert Placer(tolerance_m=0).place(*DROTTNINGHOLMSVAGEN) is None
    # Tolerance does not touch containment.
    assert Placer(tolerance_m=0).place(65.676, 21.004) == Placement("2560", "polygon", 0.0)
    with pytest.raises(ValueError, match="tolerance_m"):
        Placer(tolerance_m=-1)
    with pytest.raises(ValueError, match="tolerance_m"):
        Placer(tolerance_m=float("nan"))


def postnord_points() -> list[tuple[str, str, float, float]]:
    points = []
    for name in ("postnord_list_by_address.sthyregod.json", "postnord_list_by_coordinates.sthyregod.json"):
        path = SAMPLES / name
        if not path.exists():
            pytest.skip(f"carrier samples absent: {path}")
        body = json.loads(path.read_text(encoding="utf-8"))
        for sp in body["servicePointInformationResponse"]["servicePoints"]:
            (c,) = sp["coordinates"]
            assert c["srId"] == "EPSG:4326"
            points.append((sp["servicePointId"], sp["name"], c["northing"], c["easting"]))
    return points


def test_every_postnord_sample_point_is_placed(placer: Placer) -> None:
    points = postnord_points()
    assert len(points) == 15
    results = placer.place_many([(lat, lon) for _, _, lat, lon in points])
    for (service_point_id, name, lat, lon), result in zip(points, results, strict=True):
        if service_point_id == "592977":  # 41:AN CITY TOBAK: PostNord sends 0,0 for unknown
            assert isinstance(result, CoordinateError), name
            assert "0,0" in str(result)
            with pytest.raises(CoordinateError, match="0,0 is not a place"):
                placer.place(lat, lon)
        else:
            assert isinstance(result, Placement), name
            assert result == placer.place(lat, lon)
    by_id = {p[0]: r for p, r in zip(points, results, strict=True)}
    assert isinstance(by_id["376062"], Placement)
    assert by_id["376062"].municipality_code == "0662"  # Gislaved
    assert isinstance(by_id["592976"], Placement)
    assert (by_id["592976"].municipality_code, by_id["592976"].method) == ("0180", "proximity")


@pytest.mark.parametrize(
    ("latitude", "longitude", "reason"),
    [
        (0, 0, "0,0 is not a place"),
        (0.0, 0.0, "0,0 is not a place"),
        (None, 21.0, "missing"),
        (65.0, None, "missing"),
        (None, None, "missing"),
        (float("nan"), 1, "not numbers"),
        (65.0, float("inf"), "not numbers"),
        (48.85, 2.35, "outside Sweden"),  # Paris
        (60.17, 24.94, "outside Sweden"),  # Helsinki: east of the box (24.5° E)
        (54.9, 13.0, "outside Sweden"),  # south of the box, off Rügen
        (70.0, 20.0, "outside Sweden"),  # north of the box
        (18.032009, 59.343528, "swapped"),  # Norrbackagatan, latitude and longitude swapped
    ],
)
def test_coordinates_that_cannot_be_placed(
    placer: Placer, latitude: float | None, longitude: float | None, reason: str
) -> None:
    with pytest.raises(CoordinateError, match=reason):
        placer.place(latitude, longitude)
    (result,) = placer.place_many([(latitude, longitude)])
    assert isinstance(result, CoordinateError)
    assert reason in str(result)


@pytest.mark.parametrize(
    ("latitude", "longitude"),
    [
        (62.0, 19.5),  # the Bothnian Sea, far from land
        (59.91, 10.75),  # Oslo: inside the box, some 60 km from the border
        (55.676, 12.568),  # Copenhagen: inside the box, across the Sound
    ],
)
def test_in_the_box_but_far_from_every_municipality_is_none(
    placer: Placer, latitude: float, longitude: float
) -> None:
    assert placer.place(latitude, longitude) is None
    assert min(boundary_distances_m(latitude, longitude).values()) > 5000


def test_a_point_on_a_border_is_in_a_polygon(placer: Placer) -> None:
    # A vertex of Stockholm's outline: on the boundary, so in no polygon's interior.
    lon, lat = shapely.get_coordinates(POLYGONS[CODES.index("0180")])[5]
    placed = placer.place(lat, lon)
    assert placed is not None
    assert placed.method == "polygon"
    assert placed.municipality_code in containing(lat, lon)


def test_place_many_keeps_order_and_mixes_errors(placer: Placer) -> None:
    results = placer.place_many([(0, 0), (65.676, 21.004), (62.0, 19.5), (None, 1.0), DROTTNINGHOLMSVAGEN])
    assert isinstance(results[0], CoordinateError)
    assert results[1] == Placement("2560", "polygon", 0.0)
    assert results[2] is None
    assert isinstance(results[3], CoordinateError)
    assert isinstance(results[4], Placement)
    assert results[4].method == "proximity"
    assert placer.place_many([]) == []
    assert placer.place_many([(None, None)])[0] is not None


def test_default_placer_is_built_once() -> None:
    assert default_placer() is default_placer()
    # Placers on the same file share the loaded index.
    assert Placer(tolerance_m=10)._index is default_placer()._index


def test_place_many_on_100k_random_points(placer: Placer) -> None:
    rng = np.random.default_rng(20240601)
    n = 100_000
    points = list(zip(rng.uniform(55.0, 69.5, n).tolist(), rng.uniform(10.5, 24.5, n).tolist(), strict=True))
    started = time.perf_counter()
    results = placer.place_many(points)
    elapsed = time.perf_counter() - started
    methods = {"polygon": 0, "proximity": 0, None: 0}
    for r in results:
        assert not isinstance(r, CoordinateError)
        methods[None if r is None else r.method] += 1
    print(f"\nplace_many: {n} points in {elapsed:.3f} s; {methods}")  # noqa: T201
    assert len(results) == n
    assert methods["polygon"] > 0.3 * n  # Sweden is about a third of its box
    assert methods["proximity"] > 0

    for i in rng.choice(n, 200, replace=False).tolist():
        lat, lon = points[i]
        one = placer.place(lat, lon)
        batch = results[i]
        if one is None or batch is None:
            assert one is batch is None, (lat, lon)
        else:
            assert (one.municipality_code, one.method) == (batch.municipality_code, batch.method)
            assert one.distance_m == pytest.approx(batch.distance_m)
        # Independently of the index: in a polygon exactly when a raw polygon covers the point.
        covering = containing(lat, lon)
        if covering:
            assert one is not None
            assert one.method == "polygon"
            assert one.municipality_code in covering
        else:
            assert one is None or one.method == "proximity"

    # Proximity distances against the independent local projection.
    near = [i for i, r in enumerate(results) if r is not None and r.method == "proximity"]
    for i in rng.choice(near, min(50, len(near)), replace=False).tolist():
        lat, lon = points[i]
        result = results[i]
        assert result is not None
        reference = boundary_distances_m(lat, lon)
        closest = min(reference.values())
        assert_distance(result.distance_m, closest)
        # The nearest municipality, or one as near as the reference can tell apart.
        assert reference[result.municipality_code] <= math.hypot(closest, SAMPLING_M / 2) * 1.002 + 0.01
