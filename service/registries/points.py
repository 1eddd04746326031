"""Reading pickup points (for invitations and maps) and a coordinator's corrections: the
municipality by hand, merging two organizations that are one shop, splitting one that is two."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    Row,
    Select,
    String,
    Table,
    and_,
    bindparam,
    exists,
    select,
    tuple_,
)
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from service.auth.principal import Principal
from service.certifications.models import Certification, CertificationState
from service.certifications.rules import Window
from service.certifications.rules import status as certification_status
from service.context import Context
from service.db import fold
from service.geography.service import GeographyService
from service.meetings.mail import Outside
from service.meetings.times import STOCKHOLM
from service.organizations.models import PHYSICAL_KINDS, Organization, OrganizationStatus
from service.organizations.repository import OrganizationRepository
from service.pagination import Ordering, decode_cursor, encode_cursor
from service.problems import Problem, invalid, not_found
from service.registries import schemas
from service.registries.models import Carrier, CarrierPoint, PointStatus
from service.registries.sync import ORG_KIND

BY_NAME = Ordering("pickup_point.name", (Organization.name, Organization.id), ("name", "id"))

# The list's hot path reads the tables directly (Core), never ORM objects.
ORG: Table = Organization.__table__  # type: ignore[assignment]
CERT: Table = Certification.__table__  # type: ignore[assignment]
POINT: Table = CarrierPoint.__table__  # type: ignore[assignment]
CARRIER: Table = Carrier.__table__  # type: ignore[assignment]
PHYSICAL_KIND_VALUES = sorted(k.value for k in PHYSICAL_KINDS)
# Columns 0-12 of a row (13-17: the certification; 18-25: a listing), in schemas.PickupPoint's order.
PAGE_COLUMNS = tuple(
    ORG.c[name]
    for name in (
        "id",
        "name",
        "kind",
        "status",
        "street_address",
        "postal_code",
        "city",
        "latitude",
        "longitude",
        "municipality_code",
        "county_code",
        "placement",
        "placement_distance_m",
    )
)
LISTING_COLUMNS = (
    POINT.c.id.label("listing_id"),
    CARRIER.c.code.label("listing_carrier"),
    POINT.c.external_id.label("listing_external_id"),
    POINT.c.name.label("listing_name"),
    POINT.c.kind.label("listing_kind"),
    POINT.c.status.label("listing_status"),
    POINT.c.closed_at.label("listing_closed_at"),
    POINT.c.last_seen_at.label("listing_last_seen_at"),
)


# The list's statements by scope and filters (see PickupPointService.page); a process sees a
# bounded number of scopes (one per key or signed-in place), and the cache is cleared if it fills.
_STATEMENTS: dict[tuple[Any, ...], Select[Any]] = {}
_MAX_STATEMENTS = 1000


def _page_statement(principal: Principal, params: dict[str, Any], certified: bool | None) -> Select[Any]:
    """The page's statement for the filters named in `params` (bound by name at execution)."""
    org = ORG
    where: list[ColumnElement[bool]] = [org.c.kind.in_(PHYSICAL_KIND_VALUES)]
    scope = OrganizationRepository.scope_clause(principal)
    if scope is not None:
        where.append(scope)
    if "municipality" in params:
        where.append(org.c.municipality_code == bindparam("municipality"))
    if "county" in params:
        where.append(org.c.county_code == bindparam("county"))
    if "status" in params:
        where.append(org.c.status == bindparam("status"))
    if "carrier" in params:
        where.append(
            exists().where(
                POINT.c.organization_id == org.c.id,
                POINT.c.carrier_id == CARRIER.c.id,
                CARRIER.c.code == bindparam("carrier"),
            )
        )
    if certified is not None:
        clause = _certified_clause()
        where.append(clause if certified else ~clause)
    if "west" in params:
        where += [
            org.c.longitude >= bindparam("west"),
            org.c.longitude <= bindparam("east"),
            org.c.latitude >= bindparam("south"),
            org.c.latitude <= bindparam("north"),
        ]
    if "q" in params:
        # contains_folded's test, with the pattern escaped in Python (see page).
        where.append(fold(org.c.name).like(bindparam("q", type_=String()), escape="/"))
    if "after_name" in params:
        where.append(
            tuple_(org.c.name, org.c.id)
            > tuple_(
                bindparam("after_name", type_=org.c.name.type), bindparam("after_id", type_=org.c.id.type)
            )
        )
    return _with_listings(where, limit=True)


def _with_listings(where: Sequence[ColumnElement[bool]], *, limit: bool) -> Select[Any]:
    """The organizations matching `where` (by name, the first `limit` of them when asked) with
    their certification, joined to their listings: the rows `PickupPointService._points` reads."""
    org, cert = ORG, CERT
    page = (
        select(
            *PAGE_COLUMNS,
            cert.c.state,
            cert.c.valid_from,
            cert.c.window_opens,
            cert.c.valid_until,
            cert.c.grace_until,
        )
        .select_from(org.outerjoin(cert, cert.c.organization_id == org.c.id))
        .where(*where)
        .order_by(org.c.name, org.c.id)
    )
    if limit:
        page = page.limit(bindparam("limit", type_=Integer()))
    cte = page.cte("page")
    return (
        select(cte, *LISTING_COLUMNS)
        .select_from(
            cte.outerjoin(POINT, POINT.c.organization_id == cte.c.id).outerjoin(
                CARRIER, CARRIER.c.id == POINT.c.carrier_id
            )
        )
        .order_by(cte.c.name, cte.c.id, CARRIER.c.code, POINT.c.external_id)
    )


def _certified_clause() -> ColumnElement[bool]:
    """Holding a certification in force on the day bound as `today` (active, due or in grace)."""
    # Its own alias: the page joins the certification table as well.
    cert = CERT.alias("certified")
    return exists().where(
        and_(
            cert.c.organization_id == ORG.c.id,
            cert.c.state == CertificationState.ACTIVE,
            cert.c.grace_until > bindparam("today", type_=Date()),
        )
    )


_SLOTS: weakref.WeakKeyDictionary[Engine, asyncio.Semaphore] = weakref.WeakKeyDictionary()


# The statements above as the driver's SQL text: (statement, dialect) -> SQL, the names of its
# positional parameters, and the values of those the statement carries itself (scope, kinds).
_DRIVER_SQL: dict[tuple[int, str], tuple[Select[Any], str, tuple[str, ...], dict[str, Any]]] = {}


def _driver_sql(
    stmt: Select[Any], dialect: Any, params: dict[str, Any]
) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    key = (id(stmt), dialect.name)
    cached = _DRIVER_SQL.get(key)
    if cached is None or cached[0] is not stmt:
        if len(_DRIVER_SQL) >= _MAX_STATEMENTS:
            _DRIVER_SQL.clear()
        compiled = stmt.params(params).compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        names = tuple(compiled.positiontup or ())
        fixed = {name: value for name, value in compiled.params.items() if name not in params}
        cached = _DRIVER_SQL[key] = (stmt, compiled.string, names, fixed)
    return cached[1], cached[2], cached[3]


def _slots(engine: AsyncEngine) -> asyncio.Semaphore:
    """As many list reads at a time as the engine's pool holds connections."""
    slots = _SLOTS.get(engine.sync_engine)
    if slots is None:
        size = getattr(engine.pool, "size", lambda: 10)()
        slots = _SLOTS[engine.sync_engine] = asyncio.Semaphore(max(int(size), 1))
    return slots


class PickupPointService:
    def __init__(self, ctx: Context, outside: Outside) -> None:
        self.ctx = ctx
        self.outside = outside

    def _scoped(self) -> Select[tuple[Organization]]:
        stmt = OrganizationRepository(session=self.ctx.session).scoped(self.ctx.principal)
        return stmt.where(Organization.kind.in_(sorted(PHYSICAL_KINDS)))

    async def page(
        self,
        *,
        municipality: str | None,
        county: str | None,
        carrier: str | None,
        status: OrganizationStatus | None,
        certified: bool | None,
        bbox: tuple[float, float, float, float] | None,
        q: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[schemas.PickupPoint], str | None]:
        """One page by name: one Core statement (the page's organizations with their
        certification, joined to their listings), rows turned into Structs without ORM objects.
        The principal's scope is a WHERE clause like every other filter. The statement is built
        once per scope and combination of filters; each request only binds its values."""
        params: dict[str, Any] = {"limit": limit + 1}
        if municipality is not None:
            params["municipality"] = municipality
        if county is not None:
            params["county"] = county
        if status is not None:
            params["status"] = status
        if carrier is not None:
            params["carrier"] = carrier
        if certified is not None:
            params["today"] = self.ctx.clock().astimezone(STOCKHOLM).date()
        if bbox is not None:
            params["west"], params["south"], params["east"], params["north"] = bbox
        if q:
            params["q"] = "%" + q.casefold().replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"
        if cursor:
            params["after_name"], params["after_id"] = decode_cursor(BY_NAME, cursor)
        shape = (self.ctx.principal.scope, certified, *sorted(params))
        stmt = _STATEMENTS.get(shape)
        if stmt is None:
            if len(_STATEMENTS) >= _MAX_STATEMENTS:
                _STATEMENTS.clear()
            stmt = _STATEMENTS[shape] = _page_statement(self.ctx.principal, params, certified)
        rows = await self._rows(stmt, params)
        if not rows:
            # An unknown code finds nothing; say so (422) rather than answer an empty page.
            geography = GeographyService(self.ctx)
            if municipality is not None:
                await geography.require_municipality(municipality, field="municipality", source="query")
            if county is not None:
                await geography.require_county(county, field="county", source="query")
        items = self._points(rows)
        next_cursor = None
        if len(items) > limit:
            items = items[:limit]
            next_cursor = encode_cursor(BY_NAME, [items[-1].name, items[-1].id])
        return items, next_cursor

    async def _rows(self, stmt: Select[Any], params: dict[str, Any]) -> Sequence[Row[Any]]:
        """Run the page's statement. A request that has not touched the database yet reads
        PostgreSQL on a pooled connection of its own, outside a transaction (one statement is one
        snapshot: no BEGIN and COMMIT round trips), and gives it back at once; at most the pool's
        size of them at a time per process, the others waiting for one, as an asyncpg pool would,
        rather than making SQLAlchemy open and close an overflow connection each. Anything else
        (a transaction under way, the tests' outer transaction, SQLite) reads inside the
        session's transaction as usual."""
        session = self.ctx.session
        bind = session.bind
        if (
            isinstance(bind, AsyncEngine)
            and bind.dialect.name == "postgresql"
            and not session.in_transaction()
        ):
            sql, names, fixed = _driver_sql(stmt, bind.dialect, params)
            args = [params[name] if name in params else fixed[name] for name in names]
            async with _slots(bind), bind.connect() as conn:
                # No statement through SQLAlchemy on this connection, so no BEGIN either: the
                # driver runs the one statement on its own, and SQLAlchemy's result processing
                # (a tenth of the request) is skipped; _points reads the driver's records.
                driver = (await conn.get_raw_connection()).driver_connection
                assert driver is not None
                records: Sequence[Any] = await driver.fetch(sql, *args)
                return records
        return (await (await session.connection()).execute(stmt, params)).all()

    def _points(self, rows: Sequence[Any]) -> list[schemas.PickupPoint]:
        """The joined rows (one per listing, or one for a point without listings) as Structs.
        Rows come from SQLAlchemy (enums as enums) or from the driver (enums as their values)."""
        today = self.ctx.clock().astimezone(STOCKHOLM).date()
        items: list[schemas.PickupPoint] = []
        current: schemas.PickupPoint | None = None
        for row in rows:
            (ident, name, kind, status, street, postal, city, lat, lon, mun, county, placement, dist) = row[
                :13
            ]
            if current is None or current.id != ident:
                state = row[13]
                current = schemas.PickupPoint(
                    id=ident,
                    name=name,
                    kind=str(kind),
                    status=str(status),
                    street_address=street,
                    postal_code=postal,
                    city=city,
                    latitude=lat,
                    longitude=lon,
                    municipality_code=mun,
                    county_code=county,
                    placement=placement,
                    placement_distance_m=dist,
                    carriers=[],
                    listings=[],
                    certification_status=None
                    if state is None
                    else certification_status(CertificationState(state), Window(*row[14:18]), today).value,
                )
                items.append(current)
            listing_id = row[18]
            if listing_id is not None:
                code, listing_status = row[19], PointStatus(row[23])
                current.listings.append(
                    schemas.Listing(
                        id=listing_id,
                        carrier=code,
                        external_id=row[20],
                        name=row[21],
                        kind=row[22],
                        status=listing_status,
                        closed_at=row[24],
                        last_seen_at=row[25],
                    )
                )
                if listing_status is PointStatus.OPEN and code not in current.carriers:
                    current.carriers.append(code)
        for item in items:
            if len(item.carriers) > 1:
                item.carriers.sort()
        return items

    async def to_schemas(self, orgs: list[Organization]) -> list[schemas.PickupPoint]:
        """These organizations as pickup points, in their order: the list's statement for their
        ids, read after what this request changed is flushed (the sessions do not autoflush)."""
        if not orgs:
            return []
        await self.ctx.session.flush()
        stmt = _with_listings([ORG.c.id.in_([o.id for o in orgs])], limit=False)
        points = {point.id: point for point in self._points((await self.ctx.session.execute(stmt)).all())}
        return [points[o.id] for o in orgs]

    async def get(self, ident: UUID) -> Organization:
        org = (await self.ctx.session.scalars(self._scoped().where(Organization.id == ident))).one_or_none()
        if org is None:
            raise not_found("pickup point", ident)
        return org

    async def one(self, ident: UUID) -> schemas.PickupPoint:
        return (await self.to_schemas([await self.get(ident)]))[0]

    # --- corrections --------------------------------------------------------------------------

    async def place(self, ident: UUID, data: schemas.Placement) -> Organization:
        """A coordinator's placement: kept by every later sync."""
        org = await self.get(ident)
        municipality = await GeographyService(self.ctx).require_municipality(
            data.municipality_code, field="municipality_code"
        )
        from service.auth.principal import ensure_in_scope

        ensure_in_scope(
            self.ctx.principal,
            municipality_code=municipality.code,
            county_code=municipality.county_code,
            field="municipality_code",
        )
        org.municipality_code, org.county_code = municipality.code, municipality.county_code
        org.placement, org.placement_distance_m = "manual", None
        await self.ctx.session.flush()
        return org

    async def merge(self, ident: UUID, data: schemas.Merge) -> Organization:
        org = await self.get(ident)
        if data.organization_id == org.id:
            raise invalid("organization_id", "an organization cannot be merged into itself")
        other = (
            await self.ctx.session.scalars(self._scoped().where(Organization.id == data.organization_id))
        ).one_or_none()
        if other is None:
            raise invalid("organization_id", f"no pickup point {data.organization_id}")
        mine = set(
            await self.ctx.session.scalars(
                select(CarrierPoint.carrier_id).where(CarrierPoint.organization_id == org.id)
            )
        )
        theirs = list(
            await self.ctx.session.scalars(
                select(CarrierPoint).where(CarrierPoint.organization_id == other.id)
            )
        )
        if any(p.carrier_id in mine for p in theirs):
            raise Problem(
                "conflict",
                "organization_id: both are listed by the same carrier, so they are two shops",
            )
        for point in theirs:
            point.organization_id = org.id
        if other.status is OrganizationStatus.ACTIVE:
            other.status, other.archived_at = OrganizationStatus.ARCHIVED, self.ctx.clock()
        await self.ctx.session.flush()
        return org

    async def split(self, ident: UUID, data: schemas.Split) -> Organization:
        org = await self.get(ident)
        point = await self.ctx.session.get(CarrierPoint, data.listing_id)
        if point is None or point.organization_id != org.id:
            raise invalid("listing_id", f"no listing {data.listing_id} of this pickup point")
        others = await self.ctx.session.scalar(
            select(CarrierPoint.id)
            .where(CarrierPoint.organization_id == org.id, CarrierPoint.id != point.id)
            .limit(1)
        )
        if others is None:
            raise Problem("conflict", "listing_id: this is the pickup point's only listing; nothing to split")
        values: dict[str, Any] = {
            "kind": ORG_KIND.get(point.kind, org.kind),
            "name": point.name,
            "street_address": point.street_address,
            "postal_code": point.postal_code,
            "city": point.city,
            "latitude": point.latitude,
            "longitude": point.longitude,
            "municipality_code": org.municipality_code,
            "county_code": org.county_code,
            "placement": org.placement,
            "placement_distance_m": org.placement_distance_m,
        }
        new = Organization(id=uuid4(), **values)
        self.ctx.session.add(new)
        await self.ctx.session.flush()
        point.organization_id = new.id
        await self.ctx.session.flush()
        return new
