# ruff: noqa: T201
"""The pickup-point list under load, next to a bare asyncpg handler and /health/live in the same server.

    .venv/bin/python bench/api.py [--points 20000] [--seconds 10] [--connections 64] [--workers 2]
                                  [--sweep 16,32,48,64]

Needs `wrk` (Debian's package) and PostgreSQL (TEST_DATABASE_URL or postgres@127.0.0.1). A fresh
database gets 20,000 pickup points (bench/sync.py's synthetic data, through the real sync), then
`uvicorn` serves the app with `--workers` processes on loopback (TMN_DB_POOL_SIZE 10, as the
raw pool's size), with two extra routes: bare handlers on a raw asyncpg pool that encode
their rows with msgspec. wrk drives, at 64 connections each:

1. `/health/live` (the framework's floor),
2. `/bench/raw-pickup-points?municipality=…` (the baseline: the list's own SQL, one statement
   joining the page to its certification and listings, rows grouped into points; no ORM, no auth),
3. `/bench/raw-organizations?municipality=…` (the earlier baseline: the organizations' columns
   only, without listings or certification; shown for comparison),
4. `/v1/pickup-points?municipality=…&limit=50` as a municipal coordinator (authenticated,
   scoped, filtered, cursor-paginated: the real thing).

Each route runs `--rounds` times (3), the four in turn, and each figure is the median of its
rounds. It prints requests per second and p99 latency for each, TMN's rate as a share of the raw
baseline, the answers that were not 2xx by route and status (and wrk's socket errors), and the
server's memory (RSS of its worker processes) before and after 100,000 list
requests and after another 100,000 (growth would show a leak). Goals (issue 10): ≥ 70 % of the
raw rate, p99 ≤ 80 ms, RSS ≤ 200 MB and not growing. `--sweep` adds one run of the baseline and
the list at each of several connection counts, which shows at what concurrency the p99 goal holds
on the machine at hand (at a fixed concurrency the mean latency is connections ÷ rate).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
from _database import create_database, drop_database, pg_dsn
from litestar import Request, Response, get

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
FAILED: Counter[str] = Counter()
RAW_SQL = (
    "SELECT id, name, kind, status, street_address, postal_code, city, latitude, longitude, "
    "municipality_code, county_code, placement FROM organization "
    "WHERE kind IN ('pickup_point', 'terminal', 'mail_carrier_office') AND municipality_code = $1 "
    "ORDER BY name, id LIMIT 51"
)


def list_sql(code: str) -> tuple[str, list[Any]]:
    """The list's own statement (service/registries/points.py) for a coordinator of `code`
    filtering by `code`, rendered for asyncpg: the SQL text and its arguments."""
    from sqlalchemy.dialects import postgresql

    from service.auth.principal import Principal, Role
    from service.registries.points import _page_statement

    principal = Principal.for_role(
        id="bench", name="bench", role=Role.MUNICIPAL_COORDINATOR, municipality=code
    )
    params: dict[str, Any] = {"limit": 51, "municipality": code}
    compiled = (
        _page_statement(principal, params, None)
        .params(params)
        .compile(dialect=postgresql.asyncpg.dialect(), compile_kwargs={"render_postcompile": True})
    )
    return compiled.string, [compiled.params[name] for name in compiled.positiontup or ()]


def app_factory() -> Any:
    """The app as `tmn serve` builds it, plus the bare baseline routes (uvicorn --factory)."""
    from service.app import create_app
    from service.registries.points import LISTING_COLUMNS, PAGE_COLUMNS
    from service.settings import Settings

    settings = Settings.from_env()
    app = create_app(settings)
    dsn = pg_dsn(settings.database_url)
    pool: dict[str, asyncpg.Pool] = {}
    statements: dict[str, tuple[str, list[Any]]] = {}
    # The row's keys as the list's statement names them (the organization's columns, two of its
    # certification's, the listing's labels).
    org_keys = (*(c.name for c in PAGE_COLUMNS), "state", "valid_until")
    listing_keys = tuple(c.name for c in LISTING_COLUMNS)
    lock = asyncio.Lock()

    async def raw_pool() -> asyncpg.Pool:
        if "pool" not in pool:
            async with lock:  # one pool per worker, however many requests arrive first
                if "pool" not in pool:
                    pool["pool"] = await asyncpg.create_pool(dsn, min_size=2, max_size=10)
        return pool["pool"]

    @get("/bench/raw-pickup-points", opt={"exclude_from_auth": True}, include_in_schema=False)
    async def raw_pickup_points(request: Request[Any, Any, Any]) -> Response[bytes]:
        """The list's SQL (one statement: the page joined to certification and listings), the
        joined rows grouped into points with their listings, encoded with msgspec."""
        code = request.query_params["municipality"]
        if code not in statements:
            statements[code] = list_sql(code)
        sql, args = statements[code]
        rows = await (await raw_pool()).fetch(sql, *args)
        items: list[dict[str, Any]] = []
        for r in rows:
            if not items or items[-1]["id"] != r["id"]:
                items.append({**{k: r[k] for k in org_keys}, "listings": []})
            if r["listing_id"] is not None:
                items[-1]["listings"].append({k: r[k] for k in listing_keys})
        return Response(
            msgspec.json.encode({"items": items[:50], "limit": 50}), media_type="application/json"
        )

    @get("/bench/raw-organizations", opt={"exclude_from_auth": True}, include_in_schema=False)
    async def raw_organizations(request: Request[Any, Any, Any]) -> Response[bytes]:
        """The earlier baseline: the organizations' columns only (no listings, no certification)."""
        rows = await (await raw_pool()).fetch(RAW_SQL, request.query_params["municipality"])
        items = [{**dict(r), "id": str(r["id"])} for r in rows[:50]]
        return Response(msgspec.json.encode({"items": items, "limit": 50}), media_type="application/json")

    app.register(raw_pickup_points)
    app.register(raw_organizations)
    return app


async def prepare(url: str, points: int) -> tuple[str, str]:
    """Migrate, seed, sync the points; returns the busiest municipality and a coordinator's key."""
    from sync import generate

    from service.api_keys.schemas import ApiKeyCreate
    from service.api_keys.service import ApiKeyService
    from service.auth.principal import Principal, Role
    from service.context import Context
    from service.db import create_engine, create_sessionmaker
    from service.meetings.mail import Outside
    from service.migrate import upgrade
    from service.registries.sync import RegistryService
    from service.seed import seed
    from service.settings import Settings

    settings = Settings(database_url=url, secret_key="bench-only")  # noqa: S106
    engine = create_engine(settings)
    try:
        await upgrade(engine)
        sessionmaker = create_sessionmaker(engine)
        rows = generate(points, 5)
        async with sessionmaker() as session:
            await seed(session, demo=False)
            ctx = Context(session=session, principal=Principal.system())
            await RegistryService(ctx, Outside(settings=settings)).snapshot(
                "postnord", rows, dry_run=False, force=True
            )
            await session.commit()
        async with sessionmaker() as session:
            from sqlalchemy import func, select

            from service.organizations.models import Organization

            code, _ = (
                await session.execute(
                    select(Organization.municipality_code, func.count())
                    .group_by(Organization.municipality_code)
                    .order_by(func.count().desc())
                    .limit(1)
                )
            ).one()
            ctx = Context(session=session, principal=Principal.system())
            _, secret = await ApiKeyService(ctx).create(
                ApiKeyCreate(name="bench", role=Role.MUNICIPAL_COORDINATOR, municipality_code=code)
            )
            await session.commit()
    finally:
        await engine.dispose()
    return str(code), str(secret)


# Counts the answers that were not 2xx by status, and prints them with wrk's own summary.
WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body)
  if status < 200 or status > 299 then statuses[status] = (statuses[status] or 0) + 1 end
end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("statuses")) do io.write(string.format("status %d %d\\n", status, n)) end
  end
end
"""
# Problems that are not an HTTP status: wrk's socket errors (its timeout is 2 s).
SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def wrk(url: str, seconds: int, connections: int, headers: dict[str, str]) -> tuple[float, float, int]:
    """Requests per second, p99 latency in ms, and the request count of one wrk run (answers that
    were not 2xx are counted in FAILED by route and status, socket errors by kind)."""
    script = Path(tempfile.gettempdir()) / "tmn_bench_api_status.lua"
    script.write_text(WRK_SCRIPT)
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script)]
    for key, value in headers.items():
        command += ["-H", f"{key}: {value}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout  # noqa: S603
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99_value, p99_unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    p99 = float(p99_value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99_unit]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    route = url.split("?")[0].split(":", 2)[-1].split("/", 1)[-1]
    for status, count in re.findall(r"^status (\d+) (\d+)$", out, re.M):
        FAILED[f"/{route} {status}"] += int(count)
    errors = SOCKET_ERRORS.search(out)
    if errors:
        for kind, count in zip(("connect", "read", "write", "timeout"), errors.groups(), strict=True):
            if int(count):
                FAILED[f"/{route} socket {kind}"] += int(count)
    return rate, p99, total


def worker_rss_mb(master: int) -> float:
    """Resident memory of the server's worker processes (children of uvicorn's master), in MB."""
    total = 0
    for pid in Path("/proc").iterdir():
        if not pid.name.isdigit():
            continue
        try:
            status = (pid / "status").read_text()
        except OSError:
            continue
        if re.search(rf"^PPid:\s+{master}$", status, re.M):
            total += int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))  # type: ignore[union-attr]
    return total / 1024


def load(url: str, requests: int, connections: int, headers: dict[str, str]) -> int:
    """Send about `requests` requests (wrk runs of a few seconds until the count is reached)."""
    sent = 0
    while sent < requests:
        _, _, total = wrk(url, 5, connections, headers)
        sent += total
    return sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each route (medians)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--leak-requests", type=int, default=100_000)
    parser.add_argument(
        "--sweep",
        default="",
        help="also run the raw baseline and the list once at each of these connection counts "
        "(comma-separated, e.g. 16,32,48,64): where the p99 goal holds on this machine",
    )
    parser.add_argument(
        "--pool-size",
        type=int,
        default=0,
        help="TMN_DB_POOL_SIZE of the server (default: TMN's default, 10 per worker, as the raw pool's)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1

    database, url = asyncio.run(create_database("tmn_bench_api"))
    server: subprocess.Popen[bytes] | None = None
    try:
        print(f"syncing {args.points} pickup points into a fresh database …")
        code, key = asyncio.run(prepare(url, args.points))
        port = 8700 + os.getpid() % 200
        env = {k: v for k, v in os.environ.items() if not k.startswith("TMN_")}
        env.update(
            TMN_DATABASE_URL=url,
            TMN_SECRET_KEY="bench-only",  # noqa: S106
            TMN_RATE_LIMIT_PER_MINUTE="0",
            TMN_WORKER_IN_SERVER="no",
            TMN_LOG_LEVEL="WARNING",
            TMN_DB_POOL_SIZE=str(args.pool_size or 10),
            PYTHONPATH=str(ROOT / "bench"),
        )
        server_log = (Path(tempfile.gettempdir()) / f"{database}.log").open("wb")
        server = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api:app_factory",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=server_log,
            stderr=server_log,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        auth = {"Authorization": f"Bearer {key}"}
        listed = httpx.get(
            f"{base}/v1/pickup-points", params={"municipality": code, "limit": 50}, headers=auth
        )
        raw = httpx.get(f"{base}/bench/raw-pickup-points", params={"municipality": code})
        assert listed.status_code == 200, listed.text[:300]
        assert len(listed.json()["items"]) == 50
        assert [i["id"] for i in listed.json()["items"]] == [i["id"] for i in raw.json()["items"]]
        assert [[x["id"] for x in i["listings"]] for i in listed.json()["items"]] == [
            [x["listing_id"] for x in i["listings"]] for i in raw.json()["items"]
        ]

        list_url = f"{base}/v1/pickup-points?municipality={code}&limit=50"
        for url_ in (f"{base}/health/live", list_url):  # warm up both workers
            wrk(url_, 2, args.connections, auth)
        runs: dict[str, tuple[str, dict[str, str]]] = {
            "health": (f"{base}/health/live", {}),
            "raw": (f"{base}/bench/raw-pickup-points?municipality={code}", {}),
            "raw_orgs": (f"{base}/bench/raw-organizations?municipality={code}", {}),
            "tmn": (list_url, auth),
        }
        # Rounds of all four in turn, each figure the median of its rounds: a machine shared
        # with other work then disturbs the baseline and TMN alike, not whichever ran during it.
        rounds: dict[str, list[tuple[float, float, int]]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, (run_url, run_headers) in runs.items():
                rounds[name].append(wrk(run_url, args.seconds, args.connections, run_headers))
        results = {
            name: (
                statistics.median(r[0] for r in measured),
                statistics.median(r[1] for r in measured),
                sum(r[2] for r in measured),
            )
            for name, measured in rounds.items()
        }
        # At each concurrency, the baseline and the list in turn (one run each).
        sweep: list[tuple[int, tuple[float, float, int], tuple[float, float, int]]] = []
        for connections in (int(c) for c in args.sweep.split(",") if c.strip()):
            sweep.append(
                (
                    connections,
                    wrk(runs["raw"][0], args.seconds, connections, {}),
                    wrk(list_url, args.seconds, connections, auth),
                )
            )
        rss_start = worker_rss_mb(server.pid)
        leak_sent = load(list_url, args.leak_requests, args.connections, auth)
        rss_after = worker_rss_mb(server.pid)
        leak_sent += load(list_url, args.leak_requests, args.connections, auth)
        rss_again = worker_rss_mb(server.pid)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        asyncio.run(drop_database(database))

    (health, _, _), (raw_rate, raw_p99, _), (tmn_rate, tmn_p99, _) = (
        results["health"],
        results["raw"],
        results["tmn"],
    )
    print(
        f"machine: {os.cpu_count()} cores; server: uvicorn --workers {args.workers}, "
        f"TMN_DB_POOL_SIZE={env['TMN_DB_POOL_SIZE']}; "
        f"wrk -t2 -c{args.connections} -d{args.seconds}s on loopback, medians of {args.rounds} rounds; "
        f"{args.points} points, municipality {code}"
    )
    print(f"/health/live                 {health:8.0f} req/s  p99 {results['health'][1]:6.1f} ms")
    print(f"raw asyncpg, the list's SQL  {raw_rate:8.0f} req/s  p99 {raw_p99:6.1f} ms")
    orgs_rate, orgs_p99, _ = results["raw_orgs"]
    print(
        f"raw asyncpg, orgs only       {orgs_rate:8.0f} req/s  p99 {orgs_p99:6.1f} ms  "
        "(the earlier baseline: no listings, no certification)"
    )
    print(
        f"/v1/pickup-points (scoped)   {tmn_rate:8.0f} req/s  p99 {tmn_p99:6.1f} ms  "
        f"({tmn_rate / raw_rate:.0%} of raw, {tmn_rate / orgs_rate:.0%} of orgs only)"
    )
    if sweep:
        print("connections   raw: req/s   p99      list: req/s   p99     list/raw")
        for connections, (sraw, sraw_p99, _), (slist, slist_p99, _) in sweep:
            print(
                f"{connections:11d}   {sraw:10.0f} {sraw_p99:6.1f} ms   {slist:11.0f} {slist_p99:6.1f} ms"
                f"   {slist / sraw:7.0%}"
            )
    print(
        f"worker RSS: {rss_start:.0f} MB at start, "
        f"{rss_after:.0f} MB after {args.leak_requests} list requests, "
        f"{rss_again:.0f} MB after {args.leak_requests} more"
    )
    sent = sum(r[2] for r in results.values()) + leak_sent + sum(r[2] + t[2] for _, r, t in sweep)
    if FAILED:
        print(f"of {sent} requests, not 2xx (route, status: count): {dict(sorted(FAILED.items()))}")
        print(f"server log: {server_log.name}")
    else:
        print(f"of {sent} requests, every answer was 2xx (no socket errors either)")
    goals: dict[str, bool] = {}
    goals["≥ 70 % of the raw rate"] = tmn_rate >= 0.7 * raw_rate
    goals["p99 ≤ 80 ms"] = tmn_p99 <= 80
    goals["RSS ≤ 200 MB per worker"] = rss_again / max(args.workers, 1) <= 200
    goals["RSS not growing (< 10 % over the second 100k)"] = rss_again <= rss_after * 1.10
    for goal, met in goals.items():
        print(f"goal {'met   ' if met else 'MISSED'} {goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
