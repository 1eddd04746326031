# ruff: noqa: T201
"""Carrier snapshot sync at national scale, next to a raw asyncpg COPY of the same rows.

    .venv/bin/python bench/sync.py [--points 20000] [--large 100000] [--fail-on-goal]

Realistic synthetic Swedish data: points spread over the 290 municipalities in proportion to
nothing in particular but inside their real boundaries (sampled from the polygons TMN places
with), Swedish-looking shop names, streets and postal codes. On a freshly migrated PostgreSQL
database (created on TEST_DATABASE_URL, or postgresql+asyncpg://postgres@127.0.0.1:5432/postgres,
and dropped afterwards) it times, through `RegistryService.snapshot` in one committed transaction
each:

1. the first sync of N points (all created: validation, placement, shop matching, bulk inserts),
2. the same snapshot again (all unchanged),
3. the snapshot with 1 % of the rows changed,
4. a first sync of the large set (another carrier, M points),

and as the baseline, in the same run, a raw asyncpg `copy_records_to_table` of the same N rows
into the same two tables (organization and carrier_point, indexes and foreign keys included),
rolled back afterwards: the bare cost of getting them where the sync puts them.
Goals: N first ≤ 3 s, unchanged ≤ 1 s, 1 % changed ≤ 1.5 s, first ≤ 4× COPY, and M ≤ 5.5× the N
first sync.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import random
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import shapely
import structlog
from _database import create_database, drop_database, pg_dsn
from shapely.geometry import shape
from sqlalchemy import func, select

from service.auth.principal import Principal
from service.context import Context
from service.db import create_engine, create_sessionmaker
from service.meetings.mail import Outside
from service.migrate import upgrade
from service.registries.models import CarrierPoint
from service.registries.sync import RegistryService
from service.seed import seed
from service.settings import Settings

BOUNDARIES = Path(__file__).resolve().parents[1] / "service" / "geography" / "data" / "municipalities.geojson"
CHAINS = [
    "ICA Nära",
    "ICA Supermarket",
    "Coop",
    "Hemköp",
    "Tempo",
    "Pressbyrån",
    "Direkten",
    "Circle K",
    "OKQ8",
    "Ombud",
    "Servicebutik",
    "Tobak & Lotto",
    "Handlarn",
    "Matöppet",
]
STREETS = [
    "Storgatan",
    "Kyrkogatan",
    "Drottninggatan",
    "Torggatan",
    "Järnvägsgatan",
    "Skolgatan",
    "Parkvägen",
    "Industrivägen",
    "Köpmangatan",
    "Strandvägen",
    "Nygatan",
    "Västra vägen",
    "Östra Långgatan",
]


def generate(n: int, seed_value: int) -> list[dict[str, Any]]:
    """n points, each inside a real municipality polygon (rejection sampling in its bounds)."""
    rng = random.Random(seed_value)  # noqa: S311  (the same data every run, not secrets)
    features = json.loads(BOUNDARIES.read_text())["features"]
    polygons = [(f["properties"]["KnKod"], shape(f["geometry"])) for f in features]
    for _, polygon in polygons:
        shapely.prepare(polygon)
    rows: list[dict[str, Any]] = []
    while len(rows) < n:
        code, polygon = polygons[rng.randrange(len(polygons))]
        west, south, east, north = polygon.bounds
        lon, lat = rng.uniform(west, east), rng.uniform(south, north)
        if not shapely.contains_xy(polygon, lon, lat):
            continue
        i = len(rows)
        rows.append(
            {
                "id": f"SE{seed_value:02d}{i:07d}",
                "name": f"{rng.choice(CHAINS)} {rng.choice(STREETS).split('gatan')[0]} {i}",
                "kind": "locker" if i % 7 == 0 else "pickup_point",
                "street_address": f"{rng.choice(STREETS)} {rng.randint(1, 120)}",
                "postal_code": f"{int(code) * 10 + rng.randint(0, 9):05d}"[-5:],
                "city": f"Ort {code}",
                "latitude": round(lat, 6),
                "longitude": round(lon, 6),
                "opening_hours": "Mon-Fri 09:00-20:00, Sat 10:00-16:00",
            }
        )
    return rows


async def timed_snapshot(
    sessionmaker: Any, outside: Outside, code: str, rows: list[dict[str, Any]]
) -> tuple[float, Any]:
    started = time.perf_counter()
    async with sessionmaker() as session:
        session.info["principal_id"] = "bench"
        ctx = Context(session=session, principal=Principal.system())
        report = await RegistryService(ctx, outside).snapshot(code, rows, dry_run=False, force=True)
        await session.commit()
    return time.perf_counter() - started, report


async def copy_baseline(dsn: str, rows: list[dict[str, Any]]) -> float:
    """The same rows COPYed straight into the same tables (organization and carrier_point, with
    their indexes and foreign keys), in a transaction rolled back afterwards: the bare cost of
    putting them where the sync puts them, without validating, placing or comparing anything."""
    conn = await asyncpg.connect(dsn)
    try:
        carrier_id = await conn.fetchval("SELECT id FROM carrier WHERE code = 'schenker'")
        now = datetime.now(UTC)
        orgs, points = [], []
        for r in rows:
            org_id, point_id = uuid.uuid4(), uuid.uuid4()
            orgs.append(
                (
                    org_id,
                    "pickup_point",
                    r["name"],
                    r["street_address"],
                    r["postal_code"],
                    r["city"],
                    r["latitude"],
                    r["longitude"],
                    "2560",
                    "25",
                    "active",
                    "polygon",
                    1,
                    now,
                    now,
                )
            )
            points.append(
                (
                    point_id,
                    carrier_id,
                    r["id"],
                    org_id,
                    r["name"],
                    r["kind"],
                    r["street_address"],
                    r["postal_code"],
                    r["city"],
                    r["latitude"],
                    r["longitude"],
                    r["opening_hours"],
                    "open",
                    now,
                    "0" * 32,
                    1,
                    now,
                    now,
                )
            )
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table(
                "organization",
                records=orgs,
                columns=[
                    "id",
                    "kind",
                    "name",
                    "street_address",
                    "postal_code",
                    "city",
                    "latitude",
                    "longitude",
                    "municipality_code",
                    "county_code",
                    "status",
                    "placement",
                    "version",
                    "created_at",
                    "updated_at",
                ],
            )
            await conn.copy_records_to_table(
                "carrier_point",
                records=points,
                columns=[
                    "id",
                    "carrier_id",
                    "external_id",
                    "organization_id",
                    "name",
                    "kind",
                    "street_address",
                    "postal_code",
                    "city",
                    "latitude",
                    "longitude",
                    "opening_hours",
                    "status",
                    "last_seen_at",
                    "content_hash",
                    "version",
                    "created_at",
                    "updated_at",
                ],
            )
            elapsed = time.perf_counter() - started
            raise _Rollback
    except _Rollback:
        return elapsed
    finally:
        await conn.close()


class _Rollback(Exception):
    """Leaves the baseline's rows out of the database the sync is measured on."""


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--fail-on-goal", action="store_true")
    args = parser.parse_args()
    logging.getLogger("tmn").setLevel(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    name, url = await create_database("tmn_bench_sync")
    settings = Settings(database_url=url, secret_key="bench-only", registry_max_body_bytes=1 << 30)  # noqa: S106
    engine = create_engine(settings)
    try:
        await upgrade(engine)
        sessionmaker = create_sessionmaker(engine)
        async with sessionmaker() as session:
            await seed(session, demo=False)
            await session.commit()
        outside = Outside(settings=settings)
        print(f"generating {args.points} + {args.large} points inside real municipality boundaries …")
        small = generate(args.points, 1)
        large = generate(args.large, 2)

        copy_s = await copy_baseline(pg_dsn(database=name), small)
        first_s, first = await timed_snapshot(sessionmaker, outside, "postnord", small)
        same_s, same = await timed_snapshot(sessionmaker, outside, "postnord", small)
        changed_rows = [dict(r) for r in small]
        for r in changed_rows[::100]:
            r["opening_hours"] = "Mon-Sun 08:00-22:00"
        changed_s, changed = await timed_snapshot(sessionmaker, outside, "postnord", changed_rows)
        large_s, large_report = await timed_snapshot(sessionmaker, outside, "dhl", large)
        async with sessionmaker() as session:
            stored = await session.scalar(select(func.count()).select_from(CarrierPoint))
    finally:
        await engine.dispose()
        await drop_database(name)

    expected = args.points + args.large
    ok = (
        first.created == args.points - len(first.errors)
        and same.unchanged == first.created
        and changed.updated == len(small[::100])
        and stored == expected - len(first.errors) - len(large_report.errors)
    )
    goals = {
        f"{args.points} first sync ≤ 3 s": first_s <= 3.0,
        "unchanged re-sync ≤ 1 s": same_s <= 1.0,
        "1 % changed ≤ 1.5 s": changed_s <= 1.5,
        "first sync ≤ 4× the COPY baseline": first_s <= 4 * copy_s,
        f"{args.large} first ≤ 5.5× the {args.points} first": large_s <= 5.5 * first_s,
    }
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, PostgreSQL"
    )
    print(f"COPY baseline      {args.points:>7} rows  {copy_s:7.3f} s")
    print(
        f"first sync         {args.points:>7} rows  {first_s:7.3f} s  ({first_s / copy_s:5.1f}× COPY; "
        f"created {first.created}, joined {first.joined_existing_shop}, "
        f"proximity {first.placed_by_proximity}, "
        f"errors {len(first.errors)})"
    )
    print(f"unchanged re-sync  {args.points:>7} rows  {same_s:7.3f} s  (unchanged {same.unchanged})")
    print(f"1 % changed        {args.points:>7} rows  {changed_s:7.3f} s  (updated {changed.updated})")
    print(
        f"first sync         {args.large:>7} rows  {large_s:7.3f} s  "
        f"({large_s / first_s:5.1f}× the {args.points})"
    )
    for goal, met in goals.items():
        print(f"goal {'met   ' if met else 'MISSED'} {goal}")
    if not ok:
        print("FAILED: the reports do not add up", file=sys.stderr)
        return 1
    return 2 if args.fail_on_goal and not all(goals.values()) else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
