# ruff: noqa: T201
"""The national reports (progress, coverage, roll-ups) on a national data set, next to one
hand-written SQL aggregate over the same rows.

    .venv/bin/python bench/reports.py [--runs 7] [--places 20000] [--people 50000]
                                      [--meetings 2000] [--explain] [--fail-on-goal]

A fresh PostgreSQL database (created on TEST_DATABASE_URL, or
postgresql+asyncpg://postgres@127.0.0.1:5432/postgres, and dropped afterwards, also on failure)
is migrated, seeded with the reference data (290 municipalities), and loaded with asyncpg COPY
with a synthetic national data set from a fixed random seed: pickup points, terminals and
offices spread over the municipalities (roughly around each municipality's representative
point), employers, people (instructors among them), local working groups with members,
decisions, a year of meetings with their instructors, invitations and registrations, and
certifications whose dates give every status (active, follow_up_due, in_grace, lapsed, and a few
suspended or revoked). Then ANALYZE.

Timed, each the median of --runs after one warm-up, through the real service code as a national
administrator (one session per run, as a request has):

1. progress: `ReportService.select()` + `progress(selection)`,
2. coverage: `select()` + `coverage(selection)`,
3. progress and coverage rolled up by county,
4. the whole HTTP answer of GET /v1/reports/progress and /v1/reports/coverage (the app on
   litestar's AsyncTestClient, authenticated with a national administrator's API key),

and the baseline, in the same run and timed the same way: one hand-written GROUP BY over the same
tables (active places by kind, invited, attended and certified places, held collaboration
meetings, per municipality) on a raw asyncpg connection. The coverage report's counts are checked
against the baseline's. Goals (issue 9): each report ≤ 300 ms and ≤ 2× the baseline.
With --explain the slowest statement of each report is shown with EXPLAIN (ANALYZE, BUFFERS).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import random
import statistics
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from _database import create_database, drop_database, pg_dsn
from litestar.testing import AsyncTestClient
from shapely.geometry import shape
from sqlalchemy import event

from service.api_keys.schemas import ApiKeyCreate
from service.api_keys.service import ApiKeyService
from service.app import create_app
from service.auth.principal import Principal, Role
from service.certifications.rules import Terms, window
from service.context import Context
from service.db import create_engine, create_sessionmaker
from service.meetings.times import local
from service.migrate import upgrade
from service.reports.service import ReportService
from service.seed import seed
from service.settings import Settings

BOUNDARIES = Path(__file__).resolve().parents[1] / "service" / "geography" / "data" / "municipalities.geojson"
BASELINE = "baseline: one hand-written GROUP BY (asyncpg)"
GOAL_MS = 300.0
GOAL_RATIO = 2.0
PLACE_KINDS = ("pickup_point", "terminal", "mail_carrier_office")
PICKUP_MEETINGS = ("collaboration_meeting", "workplace_meeting", "follow_up_meeting")
CHAINS = ["ICA Nära", "Coop", "Hemköp", "Tempo", "Pressbyrån", "Direkten", "Circle K", "OKQ8", "Handlarn"]
FIRST = ["Anna", "Erik", "Maria", "Lars", "Karin", "Johan", "Sara", "Anders", "Elin", "Mohammed", "Fatima"]
LAST = ["Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson", "Ali"]

# The baseline: what a person would write by hand for a national overview, one statement.
BASELINE_SQL = """
WITH places AS (
    SELECT id, municipality_code AS m, kind FROM organization
    WHERE kind IN ('pickup_point', 'terminal', 'mail_carrier_office')
      AND status = 'active' AND municipality_code IS NOT NULL
), invited AS (
    SELECT DISTINCT organization_id AS id FROM meeting_invitation
    WHERE sent_at IS NOT NULL AND organization_id IS NOT NULL
), attended AS (
    SELECT DISTINCT r.organization_id AS id
    FROM meeting_registration r JOIN meeting mt ON mt.id = r.meeting_id
    WHERE r.attendance = 'attended' AND r.organization_id IS NOT NULL
      AND mt.kind IN ('collaboration_meeting', 'workplace_meeting', 'follow_up_meeting')
), certified AS (
    SELECT organization_id AS id FROM certification WHERE state = 'active' AND grace_until > $1
), held AS (
    SELECT municipality_code AS m, count(*) AS n FROM meeting
    WHERE kind IN ('collaboration_meeting', 'workplace_meeting') AND status IN ('held', 'closed')
    GROUP BY municipality_code
)
SELECT mu.code,
       count(p.id) FILTER (WHERE p.kind = 'pickup_point') AS pickup_points,
       count(p.id) FILTER (WHERE p.kind = 'terminal') AS terminals,
       count(p.id) FILTER (WHERE p.kind = 'mail_carrier_office') AS offices,
       count(i.id) AS invited,
       count(a.id) AS attended,
       count(c.id) AS certified,
       coalesce(max(h.n), 0) AS collaboration_meetings
FROM municipality mu
LEFT JOIN places p ON p.m = mu.code
LEFT JOIN invited i ON i.id = p.id
LEFT JOIN attended a ON a.id = p.id
LEFT JOIN certified c ON c.id = p.id
LEFT JOIN held h ON h.m = mu.code
GROUP BY mu.code
ORDER BY mu.code
"""


# --- the data set ---------------------------------------------------------------------------------


class Generator:
    """A national data set as rows per table (dicts of column values), from one fixed seed."""

    def __init__(self, seed_value: int, municipalities: list[tuple[str, str, str, str]], today: date) -> None:
        self.rng = random.Random(seed_value)  # noqa: S311  (the same data every run, not secrets)
        self.municipalities = municipalities  # (code, name, county_code, police_region)
        self.today = today
        self.now = datetime.now(UTC)
        self.tables: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.serial = 0

    def uid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def token(self) -> str:
        self.serial += 1
        return f"{self.serial:08x}{self.rng.getrandbits(96):024x}"

    def entity(self, table: str, **values: Any) -> dict[str, Any]:
        row = {"id": self.uid(), **values, "version": 1, "created_at": self.now, "updated_at": self.now}
        self.tables[table].append(row)
        return row

    def ago(self, days: float) -> datetime:
        return self.now - timedelta(days=days)

    def build(self, places: int, people: int, meetings: int) -> dict[str, list[dict[str, Any]]]:
        rng = self.rng
        centres = self._centres()
        county_of = {code: county for code, _, county, _ in self.municipalities}
        region_of = {code: region for code, _, _, region in self.municipalities}
        codes = [m[0] for m in self.municipalities]

        # Employers: the municipalities themselves, the police per county, customs.
        employer: dict[str, dict[str, Any]] = {}
        for code, name, county, region in self.municipalities:
            employer[code] = self.entity(
                "organization",
                **self._org("municipality", f"{name} kommun", code, county, region, centres[code]),
            )
        police: dict[str, dict[str, Any]] = {}
        for county in sorted(set(county_of.values())):
            police[county] = self.entity(
                "organization",
                **self._org("police", f"Polisen län {county}", None, county, None, None),
            )
        customs = self.entity("organization", **self._org("customs", "Tullverket", None, None, None, None))

        # Places: pickup points, terminals, offices, unevenly over the municipalities.
        weights = [rng.lognormvariate(0, 1.1) for _ in codes]
        by_municipality: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for i, code in enumerate(rng.choices(codes, weights, k=places)):
            roll = rng.random()
            kind = "pickup_point" if roll < 0.86 else ("terminal" if roll < 0.91 else "mail_carrier_office")
            lat, lon = centres[code]
            row = self.entity(
                "organization",
                **self._org(
                    kind,
                    f"{rng.choice(CHAINS)} {i}",
                    code,
                    county_of[code],
                    region_of[code],
                    (lat + rng.gauss(0, 0.08), lon + rng.gauss(0, 0.15)),
                ),
            )
            if rng.random() < 0.03:
                row["status"], row["archived_at"] = "archived", self.ago(rng.uniform(1, 300))
            else:
                by_municipality[code].append(row)

        # People: instructors (municipalities, police, customs), coordinators, staff at the places.
        active_places = [p for ps in by_municipality.values() for p in ps]
        instructors_of_county: dict[str, list[dict[str, Any]]] = defaultdict(list)
        coordinators: dict[str, list[dict[str, Any]]] = defaultdict(list)
        staff_of: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
        all_staff: list[dict[str, Any]] = []
        instructors = max(1, people * 3 // 100)
        for i in range(people):
            if i < instructors:
                code = rng.choice(codes)
                roll = rng.random()
                org = employer[code] if roll < 0.6 else police[county_of[code]] if roll < 0.9 else customs
                person = self._person(i, org["id"])
                person["instructor_qualified_on"] = self.today - timedelta(days=rng.randint(20, 1500))
                instructors_of_county[county_of[code]].append(person)
            elif i < instructors + 2 * len(codes):
                code = codes[(i - instructors) % len(codes)]
                person = self._person(i, employer[code]["id"])
                coordinators[code].append(person)
            else:
                place = rng.choice(active_places) if rng.random() < 0.97 else None
                person = self._person(i, place["id"] if place else None)
                if place is not None:
                    staff_of[place["id"]].append(person)
                all_staff.append(person)
            if rng.random() < 0.005:
                person["erased_at"] = self.ago(rng.uniform(1, 200))
        every_instructor = [p for ps in instructors_of_county.values() for p in ps]

        # Networks: a county group per county; a local working group in ~2/3 of the municipalities,
        # a local network (no working group) in some of the rest; members in the working groups.
        county_group = {
            county: self.entity(
                "network",
                name=f"Länsgrupp {county}",
                level="regional",
                kind="county_group",
                parent_id=None,
                municipality_code=None,
            )
            for county in sorted(set(county_of.values()))
        }
        local_network: dict[str, dict[str, Any]] = {}
        for code, name, county, _ in self.municipalities:
            roll = rng.random()
            if roll < 2 / 3 or (roll < 0.8 and by_municipality[code]):
                kind = "local_working_group" if roll < 2 / 3 else "local_network"
                local_network[code] = self.entity(
                    "network",
                    name=f"Lokal {'arbetsgrupp' if kind == 'local_working_group' else 'nätverk'} {name}",
                    level="local",
                    kind=kind,
                    parent_id=county_group[county]["id"],
                    municipality_code=code,
                )
        for code, network in local_network.items():
            if network["kind"] != "local_working_group":
                continue
            local_staff = [s for p in by_municipality[code][:40] for s in staff_of[p["id"]]]
            chosen: dict[uuid.UUID, str] = {coordinators[code][0]["id"]: "convenor"}
            pool = instructors_of_county[county_of[code]] or every_instructor
            for person in rng.sample(pool, min(len(pool), rng.randint(0, 3))):
                chosen.setdefault(person["id"], "instructor")
            size = rng.choice([0, 1, 2, 4, 6, 8, 10])
            for person in rng.sample(local_staff, min(len(local_staff), size)):
                chosen.setdefault(person["id"], "member")
            for participant_id, role in chosen.items():
                joined = self.ago(rng.uniform(10, 700))
                left = self.ago(rng.uniform(1, 9)) if rng.random() < 0.1 else None
                self.entity(
                    "network_member",
                    network_id=network["id"],
                    participant_id=participant_id,
                    role=role,
                    organization_id=None,
                    joined_at=joined,
                    left_at=left,
                )

        # Decisions in about half of the municipalities (most of those with a working group).
        for code, name, _, _ in self.municipalities:
            working = code in local_network and local_network[code]["kind"] == "local_working_group"
            if rng.random() < (0.65 if working else 0.2):
                bodies = [{"party": "municipality", "name": "Kommunstyrelsen"}]
                if rng.random() < 0.8:
                    bodies.append({"party": "police", "name": f"Lokalpolisområde {name}"})
                if rng.random() < 0.5:
                    bodies.append({"party": "customs", "name": "Tullverket"})
                self.entity(
                    "municipality_decision",
                    municipality_code=code,
                    decided_on=self.today - timedelta(days=rng.randint(30, 900)),
                    bodies=json.dumps(bodies),
                    document_reference=f"KS {rng.randint(2023, 2025)}/{rng.randint(1, 999)} "
                    f"§ {rng.randint(1, 99)}",
                    note=None,
                )

        # A year of meetings in the municipalities with a local network.
        meeting_codes = sorted(local_network)
        meeting_weights = [1 + len(by_municipality[c]) ** 0.5 for c in meeting_codes]
        attended_places: dict[uuid.UUID, dict[str, Any]] = {}
        for n, code in enumerate(rng.choices(meeting_codes, meeting_weights, k=meetings)):
            network = local_network[code]
            roll = rng.random()
            kind = (
                "collaboration_meeting"
                if roll < 0.40
                else "workplace_meeting"
                if roll < 0.55
                else "follow_up_meeting"
                if roll < 0.75
                else "local_working_group"
            )
            if kind == "local_working_group" and network["kind"] != "local_working_group":
                kind = "collaboration_meeting"
            roll = rng.random()
            status = (
                "closed"
                if roll < 0.55
                else "held"
                if roll < 0.80
                else "scheduled"
                if roll < 0.86
                else "invitations_sent"
                if roll < 0.92
                else "draft"
                if roll < 0.94
                else "cancelled"
            )
            past = status in ("held", "closed") or (status == "cancelled" and rng.random() < 0.5)
            starts = self.ago(rng.uniform(1, 365)) if past else self.now + timedelta(days=rng.uniform(2, 60))
            held = starts + timedelta(hours=2) if status in ("held", "closed") else None
            meeting = self.entity(
                "meeting",
                network_id=network["id"],
                kind=kind,
                status=status,
                title=f"{kind.replace('_', ' ').capitalize()} {n}",
                starts_at=starts,
                ends_at=starts + timedelta(hours=2),
                agenda="[]",
                coordinator_id=coordinators[code][0]["id"],
                municipality_code=code,
                sequence=0,
                invitations_sent_at=None if status == "draft" else starts - timedelta(days=14),
                held_at=held,
                closed_at=held + timedelta(days=2) if status == "closed" and held else None,
                cancelled_at=starts - timedelta(days=3) if status == "cancelled" else None,
            )
            if kind not in PICKUP_MEETINGS:
                continue
            pool = instructors_of_county[county_of[code]] or every_instructor
            for person in rng.sample(pool, min(len(pool), rng.randint(1, 2))):
                self.tables["meeting_instructor"].append(
                    {"meeting_id": meeting["id"], "participant_id": person["id"]}
                )
            candidates = by_municipality[code]
            registered: set[uuid.UUID] = set()
            for place in rng.sample(candidates, min(len(candidates), rng.randint(8, 60))):
                sent = status != "draft"
                invitation = self.entity(
                    "meeting_invitation",
                    meeting_id=meeting["id"],
                    organization_id=place["id"],
                    participant_id=None,
                    email=f"info{place['name'].split()[-1]}@butik.example.se",
                    status="sent" if sent else "pending",
                    sent_at=meeting["invitations_sent_at"] if sent else None,
                )
                if not sent or status == "cancelled" or rng.random() > 0.45:
                    continue
                invitation["status"] = "registered"
                people_here = staff_of.get(place["id"]) or [rng.choice(all_staff)]
                for person in rng.sample(people_here, min(len(people_here), rng.choice([1, 1, 1, 2]))):
                    if person["id"] in registered:
                        continue
                    registered.add(person["id"])
                    attendance = None
                    if held is not None:
                        attendance = "attended" if rng.random() < 0.85 else "no_show"
                    self.entity(
                        "meeting_registration",
                        meeting_id=meeting["id"],
                        participant_id=person["id"],
                        organization_id=place["id"],
                        invitation_id=invitation["id"],
                        status="confirmed",
                        checkin_code=self.token(),
                        attendance=attendance,
                        attendance_recorded_at=held if attendance else None,
                    )
                    if attendance == "attended":
                        attended_places[place["id"]] = place

        # Certifications for most attended places; their periods start over the last 20 months,
        # so some are active, some due for follow-up, some in grace and some lapsed.
        terms = Terms()
        for serial, place in enumerate(sorted(attended_places.values(), key=lambda p: p["name"]), start=1):
            if rng.random() > 0.7:
                continue
            current = window(self.today - timedelta(days=rng.randint(0, 600)), terms)
            roll = rng.random()
            state = "active" if roll < 0.96 else "suspended" if roll < 0.98 else "revoked"
            self.entity(
                "certification",
                organization_id=place["id"],
                serial=serial,
                number=f"TMN-{current.valid_from.year}-{serial:06d}",
                sticker_serial=f"S{serial:08d}",
                verify_code=self.token(),
                municipality_code=place["municipality_code"],
                state=state,
                state_changed_at=self.ago(rng.uniform(1, 30)) if state != "active" else None,
                issued_on=current.valid_from,
                valid_from=current.valid_from,
                window_opens=current.window_opens,
                valid_until=current.valid_until,
                grace_until=current.grace_until,
            )
        return self.tables

    def _centres(self) -> dict[str, tuple[float, float]]:
        features = json.loads(BOUNDARIES.read_text())["features"]
        centres = {}
        for f in features:
            point = shape(f["geometry"]).representative_point()
            centres[f["properties"]["KnKod"]] = (point.y, point.x)
        for code, *_ in self.municipalities:
            centres.setdefault(code, (62.0, 16.0))
        return centres

    def _org(
        self,
        kind: str,
        name: str,
        code: str | None,
        county: str | None,
        region: str | None,
        where: tuple[float, float] | None,
    ) -> dict[str, Any]:
        lat, lon = where if where else (None, None)
        return {
            "kind": kind,
            "name": name,
            "street_address": f"Storgatan {self.rng.randint(1, 120)}" if where else None,
            "postal_code": f"{self.rng.randint(10000, 98999)}" if where else None,
            "city": f"Ort {code}" if code else None,
            "latitude": round(lat, 6) if lat is not None else None,
            "longitude": round(lon, 6) if lon is not None else None,
            "municipality_code": code,
            "county_code": county,
            "police_region": region,
            "status": "active",
            "archived_at": None,
            "placement": "given",
        }

    def _person(self, i: int, organization_id: uuid.UUID | None) -> dict[str, Any]:
        name = f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"
        email = f"person{i:06d}@bench.example.se"
        return self.entity(
            "participant",
            name=name,
            email=email,
            email_normalized=email,
            language="sv",
            organization_id=organization_id,
            mailing_list_consent=False,
            listed_in_directory=False,
            instructor_qualified_on=None,
            erased_at=None,
        )


LOAD_ORDER = (
    "organization",
    "participant",
    "network",
    "network_member",
    "municipality_decision",
    "meeting",
    "meeting_instructor",
    "meeting_invitation",
    "meeting_registration",
    "certification",
)


async def load(dsn: str, tables: dict[str, list[dict[str, Any]]]) -> None:
    """COPY every table (foreign keys checked as usual), then ANALYZE."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            for table in LOAD_ORDER:
                rows = tables.get(table, [])
                if not rows:
                    continue
                columns = list(rows[0])
                await conn.copy_records_to_table(
                    table, records=[tuple(r[c] for c in columns) for r in rows], columns=columns
                )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


# --- timing ---------------------------------------------------------------------------------------


async def median_ms(runs: int, call: Callable[[], Awaitable[Any]]) -> tuple[float, list[float]]:
    await call()  # warm-up: caches, prepared statements, the API key look-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), times


class StatementLog:
    """The statements a call runs and their time on the connection (for --explain)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine.sync_engine
        self.entries: list[tuple[float, str, Any]] = []

    def __enter__(self) -> StatementLog:
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)

    def _before(
        self, conn: Any, _cursor: Any, _statement: str, _parameters: Any, _context: Any, _many: bool
    ) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def _after(
        self, conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        elapsed = (time.perf_counter() - conn.info.pop("bench_started")) * 1000
        self.entries.append((elapsed, statement, parameters))


async def explain(dsn: str, log: StatementLog, label: str) -> None:
    entries = sorted(log.entries, key=lambda e: e[0], reverse=True)
    print(f"\n--- {label}: {len(entries)} statements, {sum(e[0] for e in entries):.1f} ms on the connection")
    for elapsed, statement, _ in entries:
        print(f"  {elapsed:7.1f} ms  {' '.join(statement.split())[:110]}")
    elapsed, statement, parameters = entries[0]
    conn = await asyncpg.connect(dsn)
    try:
        plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + statement, *(parameters or ()))
    finally:
        await conn.close()
    print(f"slowest ({elapsed:.1f} ms):\n{statement}\nparameters: {parameters}")
    print("\n".join(r[0] for r in plan))


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--places", type=int, default=20_000)
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--meetings", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument(
        "--explain", action="store_true", help="EXPLAIN ANALYZE each report's slowest statement"
    )
    parser.add_argument("--fail-on-goal", action="store_true")
    args = parser.parse_args()
    logging.getLogger("tmn").setLevel(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.getLogger("httpx").setLevel(logging.WARNING)
    load_before = os.getloadavg()

    name, url = await create_database("tmn_bench_reports")
    dsn = pg_dsn(database=name)
    settings = Settings(
        database_url=url,
        secret_key="bench-only",  # noqa: S106
        rate_limit_per_minute=0,
        public_rate_limit_per_minute=0,
        worker_in_server="no",
        log_level="WARNING",
    )
    engine = create_engine(settings)
    principal = Principal.for_role(id="bench", name="bench: national administrator", role=Role.NATIONAL_ADMIN)
    results: dict[str, tuple[float, list[float]]] = {}
    try:
        await upgrade(engine)
        sessionmaker = create_sessionmaker(engine)
        async with sessionmaker() as session:
            await seed(session, demo=False)
            _, api_key = await ApiKeyService(Context(session, Principal.system())).create(
                ApiKeyCreate(name="bench: national administrator", role=Role.NATIONAL_ADMIN)
            )
            await session.commit()

        conn = await asyncpg.connect(dsn)
        try:
            municipalities = [
                tuple(r)
                for r in await conn.fetch(
                    "SELECT m.code, m.name, m.county_code, c.police_region "
                    "FROM municipality m JOIN county c ON c.code = m.county_code ORDER BY m.code"
                )
            ]
        finally:
            await conn.close()
        today = local(datetime.now(UTC)).date()  # the reports' own "today" (Stockholm)
        print(f"generating the national data set (seed {args.seed}) …")
        started = time.perf_counter()
        tables = Generator(args.seed, municipalities, today).build(args.places, args.people, args.meetings)
        generated_s = time.perf_counter() - started
        started = time.perf_counter()
        await load(dsn, tables)
        loaded_s = time.perf_counter() - started
        print(f"generated in {generated_s:.1f} s, COPYed and ANALYZEd in {loaded_s:.1f} s")

        conn = await asyncpg.connect(dsn)
        try:
            counts = {
                t: await conn.fetchval(f"SELECT count(*) FROM {t}")  # noqa: S608  (our own table names)
                for t in ("municipality", *LOAD_ORDER)
            }
            places = await conn.fetchval(
                "SELECT count(*) FROM organization WHERE kind = ANY($1::text[])", list(PLACE_KINDS)
            )
            statuses = Counter(
                {
                    r[0]: r[1]
                    for r in await conn.fetch(
                        "SELECT CASE WHEN state <> 'active' THEN state WHEN window_opens > $1 THEN 'active' "
                        "WHEN valid_until > $1 THEN 'follow_up_due' WHEN grace_until > $1 THEN 'in_grace' "
                        "ELSE 'lapsed' END, count(*) FROM certification GROUP BY 1",
                        today,
                    )
                }
            )
            attended = await conn.fetchval(
                "SELECT count(*) FROM meeting_registration WHERE attendance = 'attended'"
            )
            held = await conn.fetchval("SELECT count(*) FROM meeting WHERE status IN ('held', 'closed')")

            # The app's connections run without JIT (service/db.py): so does the baseline's.
            await conn.execute("SET jit = off")

            async def baseline() -> list[asyncpg.Record]:
                return await conn.fetch(BASELINE_SQL, today)

            results[BASELINE] = await median_ms(args.runs, baseline)
            base_rows = {r["code"]: r for r in await baseline()}
        finally:
            await conn.close()

        async def in_session(call: Callable[[ReportService], Awaitable[Any]]) -> Any:
            async with sessionmaker() as session:
                return await call(ReportService(Context(session, principal)))

        async def progress(service: ReportService) -> Any:
            return await service.progress(await service.select())

        async def coverage(service: ReportService) -> Any:
            return await service.coverage(await service.select())

        async def progress_rollup(service: ReportService) -> Any:
            return await service.progress_rollup(await service.select(), "county")

        async def coverage_rollup(service: ReportService) -> Any:
            return await service.coverage_rollup(await service.select(), "county")

        reports = {
            "progress (select + progress)": progress,
            "coverage (select + coverage)": coverage,
            "progress roll-up by county": progress_rollup,
            "coverage roll-up by county": coverage_rollup,
        }
        for label, call in reports.items():
            results[label] = await median_ms(args.runs, lambda call=call: in_session(call))

        progress_rows = await in_session(progress)
        coverage_rows = await in_session(coverage)
        rollup_rows = await in_session(coverage_rollup)
        if args.explain:
            for label, call in reports.items():
                with StatementLog(engine) as log:
                    await in_session(call)
                await explain(dsn, log, label)

        app = create_app(settings)
        async with AsyncTestClient(app=app) as client:
            client.headers["Authorization"] = f"Bearer {api_key}"
            bodies: dict[str, Any] = {}
            for path in ("/v1/reports/progress", "/v1/reports/coverage"):

                async def get(path: str = path) -> None:
                    response = await client.get(path)
                    if response.status_code != 200:
                        raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:300]}")
                    bodies[path] = response.json()

                results[f"HTTP GET {path}"] = await median_ms(args.runs, get)
    finally:
        await engine.dispose()
        await drop_database(name)
    load_after = os.getloadavg()

    # Do the service's figures agree with the hand-written ones?
    mismatches = []
    for row in coverage_rows:
        b = base_rows[row.municipality_code]
        mine = (row.pickup_points, row.terminals, row.offices, row.invited, row.attended, row.certified)
        theirs = tuple(
            b[k] for k in ("pickup_points", "terminals", "offices", "invited", "attended", "certified")
        )
        if mine != theirs:
            mismatches.append((row.municipality_code, mine, theirs))
    for row in progress_rows:
        step4 = next(s for s in row.steps if s.key == "collaboration_meetings")
        if step4.count != base_rows[row.municipality_code]["collaboration_meetings"]:
            mismatches.append((row.municipality_code, "collaboration meetings", step4.count))
    ok = (
        not mismatches
        and len(progress_rows) == len(coverage_rows) == counts["municipality"]
        and len(bodies["/v1/reports/progress"]["municipalities"]) == counts["municipality"]
        and len(bodies["/v1/reports/coverage"]["municipalities"]) == counts["municipality"]
        and sum(r.total for r in rollup_rows) == sum(r.total for r in coverage_rows)
    )

    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"PostgreSQL; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    print("data: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    print(
        f"      places (pickup points, terminals, offices) {places:,}; meetings held or closed {held:,}; "
        f"registrations attended {attended:,}"
    )
    print("      certifications by status: " + ", ".join(f"{s} {n:,}" for s, n in sorted(statuses.items())))
    by_step = Counter(r.current_step for r in progress_rows)
    print("      municipalities by current step: " + ", ".join(f"{s}: {by_step[s]}" for s in range(6)))

    base = results[BASELINE][0]
    goals: dict[str, bool] = {}
    print(
        f"\n{'report':<48} {'median ms':>10} {'min ms':>8} {'× baseline':>11}  "
        f"goal (≤ {GOAL_MS:.0f} ms, ≤ {GOAL_RATIO:.0f}×)"
    )
    for label, (ms, times) in results.items():
        if label == BASELINE:
            print(f"{label:<48} {ms:>10.1f} {min(times):>8.1f}")
            continue
        met = ms <= GOAL_MS and ms <= GOAL_RATIO * base
        goals[label] = met
        print(f"{label:<48} {ms:>10.1f} {min(times):>8.1f} {ms / base:>10.2f}×  {'met' if met else 'MISSED'}")
    if not ok:
        print(f"FAILED: the reports do not agree with the baseline: {mismatches[:5]}", file=sys.stderr)
        return 1
    return 2 if args.fail_on_goal and not all(goals.values()) else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
