"""Which Swedish municipality a pickup point lies in, from its coordinates.

Two steps, both vectorised over a whole batch of points (no Python loop over polygons or points):

1. Containment: an STR-tree over the 290 municipality polygons (WGS84 lon/lat, as in the GeoJSON)
   answers `intersects` for every point at once; the polygons are prepared, so each test is an
   indexed point-in-polygon. A point on a shared border, or in one of the slivers where two
   generalised boundaries overlap, goes to the first municipality in file order, so the answer
   is deterministic.
2. Proximity: the boundaries are generalised and leave gaps along shores and around islands, where
   real shops stand (a quay, a point). A point in no polygon goes to the municipality with the
   nearest boundary, if that is within `tolerance_m`; otherwise it is in no municipality (at sea,
   or in Norway or Denmark, which are inside Sweden's bounding box).

Distances in metres. Degrees are no measure of distance here: a degree of longitude is 64 km at
Smygehuk and 39 km at Treriksröset. So:
- candidates: the same tree, `dwithin` in degrees, with a per-point radius wide enough that every
  boundary within the tolerance is found (the tolerance in degrees of longitude at the point's
  latitude plus the tolerance, the shortest kind of degree it can meet);
- nearest point: each candidate polygon is put in a local equirectangular frame centred on the
  point (x = Δlon·cos(lat)·M, y = Δlat·M, M metres per degree). That map is affine, so the
  GeoJSON's edges, straight in lon/lat, stay straight and the nearest point found is the nearest
  point of the real edge; the frame's scale is right to ~0.2 % within 5 km, which is all that
  choosing the nearest point needs;
- distance: the great-circle (haversine) distance from the point to that nearest point, on a
  sphere of the mean Earth radius (within ~0.3 % of the ellipsoid at Swedish latitudes, i.e.
  ~15 m at 5 km). That is what is reported and compared with the tolerance.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Literal

import msgspec
import numpy as np
import numpy.typing as npt
import shapely

BOUNDARIES = Path(__file__).resolve().parents[1] / "geography" / "data" / "municipalities.geojson"
# Sweden with a margin (its extremes are 55.34–69.06° N, 10.96–24.17° E): a point outside is no
# Swedish pickup point, and is a data error rather than "no municipality". Oslo and Copenhagen are
# inside this box; they come out as None (farther than the tolerance from every municipality).
SOUTH, NORTH = 55.0, 69.5
WEST, EAST = 10.5, 24.5
EARTH_RADIUS_M = 6_371_000.0  # the mean radius, as in matching.haversine_m
METRES_PER_DEGREE = np.pi / 180 * EARTH_RADIUS_M  # of latitude; of longitude times cos(latitude)
# The candidate search reaches a little past the tolerance, so that no boundary the local frame's
# scale error hides is missed; the haversine distance then decides.
SEARCH_SLACK = 1.01

FloatArray = npt.NDArray[np.float64]


# gc=False: three scalar fields make no reference cycles, and a batch makes 100,000 of these,
# which as tracked objects would set off full garbage collections in a large process.
class Placement(msgspec.Struct, frozen=True, gc=False):
    municipality_code: str  # KnKod, four digits: the county is its first two
    method: Literal["polygon", "proximity"]
    distance_m: float  # 0.0 for "polygon"; metres to the nearest boundary for "proximity"


class CoordinateError(ValueError):
    """Coordinates that cannot be placed at all: missing, not numbers, 0,0 or outside Sweden.

    Unlike None from `Placer.place` (a real position in no municipality), this is bad data."""


def _haversine_m(lat1: FloatArray, lon1: FloatArray, lat2: FloatArray, lon2: FloatArray) -> FloatArray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    result: FloatArray = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return result


@dataclass(frozen=True)
class _Index:
    """The boundaries, loaded and indexed once; shared by every Placer on the same file."""

    codes: list[str]
    polygons: npt.NDArray[np.object_]  # WGS84 lon/lat, prepared
    tree: shapely.STRtree  # over `polygons`
    # GEOS builds a prepared geometry's point locator lazily, on first use, which is not safe to
    # race: queries are serialised (a batch of 100,000 points holds it for ~0.2 s).
    lock: threading.Lock

    @classmethod
    def load(cls, path: Path) -> _Index:
        features = json.loads(path.read_text(encoding="utf-8"))["features"]
        codes = [str(f["properties"]["KnKod"]) for f in features]
        polygons = np.asarray(shapely.from_geojson([json.dumps(f["geometry"]) for f in features]))
        shapely.prepare(polygons)
        return cls(codes, polygons, shapely.STRtree(polygons), threading.Lock())


@cache
def _index(path: Path) -> _Index:
    return _Index.load(path)


def _check(latitude: float | None, longitude: float | None) -> CoordinateError | None:
    """Why these coordinates cannot be placed, or None if they can be tried."""
    if latitude is None or longitude is None:
        return CoordinateError("coordinates missing")
    if not (np.isfinite(latitude) and np.isfinite(longitude)):
        return CoordinateError("coordinates are not numbers")
    if latitude == 0 and longitude == 0:
        return CoordinateError("0,0 is not a place (registries send it for an unknown position)")
    if not (SOUTH <= latitude <= NORTH and WEST <= longitude <= EAST):
        if SOUTH <= longitude <= NORTH and WEST <= latitude <= EAST:
            return CoordinateError("outside Sweden (latitude and longitude swapped?)")
        return CoordinateError("outside Sweden")
    return None


class Placer:
    """Places points in municipalities. Build one per process (`default_placer`): loading and
    indexing the boundaries takes tens of milliseconds, placing a point microseconds."""

    def __init__(self, geojson_path: Path | None = None, *, tolerance_m: float = 5000.0) -> None:
        if not tolerance_m >= 0:  # also refuses NaN
            raise ValueError(f"tolerance_m must be >= 0, not {tolerance_m}")
        self.tolerance_m = float(tolerance_m)
        self._index = _index((geojson_path or BOUNDARIES).resolve())

    def place(self, latitude: float | None, longitude: float | None) -> Placement | None:
        """The municipality of one point, None if it is in none and near none (at sea, abroad
        but inside Sweden's box); CoordinateError if the coordinates cannot be placed at all."""
        result = self.place_many([(latitude, longitude)])[0]
        if isinstance(result, CoordinateError):
            raise result
        return result

    def place_many(
        self, points: Sequence[tuple[float | None, float | None]]
    ) -> list[Placement | CoordinateError | None]:
        """`place` for every (latitude, longitude) at once, in order; bad coordinates come back
        as their CoordinateError instead of being raised, so one bad row does not stop a batch."""
        results: list[Placement | CoordinateError | None] = [None] * len(points)
        # Vectorised screen first; only the rare rejected rows go through `_check` for a reason.
        lat = np.array([p[0] for p in points], dtype=np.float64).reshape(-1)  # None becomes NaN
        lon = np.array([p[1] for p in points], dtype=np.float64).reshape(-1)
        ok = (lat >= SOUTH) & (lat <= NORTH) & (lon >= WEST) & (lon <= EAST)  # False for NaN
        for i in np.flatnonzero(~ok).tolist():
            results[i] = _check(*points[i])
        good = np.flatnonzero(ok)
        if good.size == 0:
            return results
        lat, lon = lat[good], lon[good]
        index = self._index
        with index.lock:
            # Geometry objects are the costliest part of a batch (garbage-collector tracked): made once.
            geometries = np.asarray(shapely.points(lon, lat))
            point_i, polygon_i = index.tree.query(geometries, predicate="intersects")
            # On a border or an overlap the point is in two: the first municipality in file order.
            order = np.lexsort((polygon_i, point_i))
            point_i, polygon_i = point_i[order], polygon_i[order]
            first = np.unique(point_i, return_index=True)[1]
            for p, g in zip(point_i[first].tolist(), polygon_i[first].tolist(), strict=True):
                results[int(good[p])] = Placement(index.codes[g], "polygon", 0.0)

            outside = np.setdiff1d(np.arange(good.size), point_i)
            if outside.size == 0 or self.tolerance_m == 0:
                return results
            lat, lon = lat[outside], lon[outside]
            # Every polygon that can be within the tolerance: the radius in degrees of longitude
            # (the shortest) at the highest latitude the tolerance reaches. For a point in no
            # polygon the distance to a polygon is the distance to its boundary.
            reach = self.tolerance_m * SEARCH_SLACK / METRES_PER_DEGREE
            radius = reach / np.cos(np.radians(np.minimum(lat + reach, 89.0)))
            pair_p, pair_g = index.tree.query(geometries[outside], predicate="dwithin", distance=radius)
        if pair_p.size == 0:
            return results
        # Each candidate in the point's local equirectangular frame (see the module's docstring),
        # its nearest point there, back to degrees, and the great-circle distance to it.
        x_scale = np.cos(np.radians(lat[pair_p])) * METRES_PER_DEGREE
        counts = shapely.get_num_coordinates(index.polygons[pair_g])
        origin_lon, origin_lat = np.repeat(lon[pair_p], counts), np.repeat(lat[pair_p], counts)
        scale = np.repeat(x_scale, counts)

        def to_local(c: FloatArray) -> FloatArray:
            return np.column_stack(
                ((c[:, 0] - origin_lon) * scale, (c[:, 1] - origin_lat) * METRES_PER_DEGREE)
            )

        local = shapely.transform(index.polygons[pair_g], to_local, include_z=False)  # (x, y) only
        nearest = shapely.get_coordinates(
            shapely.get_point(shapely.shortest_line(shapely.Point(0, 0), local), 1)
        )
        metres = _haversine_m(
            lat[pair_p],
            lon[pair_p],
            lat[pair_p] + nearest[:, 1] / METRES_PER_DEGREE,
            lon[pair_p] + nearest[:, 0] / x_scale,
        )
        # The nearest candidate of each point (ties: the first municipality in file order).
        order = np.lexsort((pair_g, metres, pair_p))
        pair_p, pair_g, metres = pair_p[order], pair_g[order], metres[order]
        first = np.unique(pair_p, return_index=True)[1]
        for p, g, m in zip(
            pair_p[first].tolist(), pair_g[first].tolist(), metres[first].tolist(), strict=True
        ):
            if m <= self.tolerance_m:
                results[int(good[outside[p]])] = Placement(index.codes[g], "proximity", m)
        return results


@lru_cache(maxsize=8)
def default_placer(tolerance_m: float = 5000.0) -> Placer:
    """The process-wide placer for the bundled boundaries (one per tolerance; all of them share
    one loaded index)."""
    return Placer(tolerance_m=tolerance_m)
