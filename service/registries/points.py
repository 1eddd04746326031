"""Reading pickup points (for invitations and maps) and a coordinator's corrections: the
municipality by hand, merging two organizations that are one shop, splitting one that is two."""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import ColumnElement, Select, and_, exists, select

from service.certifications.models import Certification
from service.certifications.rules import status as certification_status
from service.certifications.service import current_window
from service.context import Context
from service.db import contains_folded
from service.geography.service import GeographyService
from service.meetings.mail import Outside
from service.meetings.times import STOCKHOLM
from service.organizations.models import PHYSICAL_KINDS, Organization, OrganizationStatus
from service.organizations.repository import OrganizationRepository
from service.pagination import Ordering, fetch_page
from service.problems import Problem, invalid, not_found
from service.registries import schemas
from service.registries.models import Carrier, CarrierPoint, PointStatus
from service.registries.sync import ORG_KIND

BY_NAME = Ordering("pickup_point.name", (Organization.name, Organization.id), ("name", "id"))


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
        geography = GeographyService(self.ctx)
        if municipality is not None:
            await geography.require_municipality(municipality, field="municipality", source="query")
        if county is not None:
            await geography.require_county(county, field="county", source="query")
        stmt = self._scoped()
        if municipality is not None:
            stmt = stmt.where(Organization.municipality_code == municipality)
        if county is not None:
            stmt = stmt.where(Organization.county_code == county)
        if status is not None:
            stmt = stmt.where(Organization.status == status)
        if carrier is not None:
            stmt = stmt.where(
                exists().where(
                    CarrierPoint.organization_id == Organization.id,
                    CarrierPoint.carrier_id == Carrier.id,
                    Carrier.code == carrier,
                )
            )
        if certified is not None:
            clause = self._certified_clause()
            stmt = stmt.where(clause if certified else ~clause)
        if bbox is not None:
            west, south, east, north = bbox
            stmt = stmt.where(
                Organization.longitude >= west,
                Organization.longitude <= east,
                Organization.latitude >= south,
                Organization.latitude <= north,
            )
        if q:
            stmt = stmt.where(contains_folded(Organization.name, q))
        orgs, next_cursor = await fetch_page(self.ctx.session, stmt, BY_NAME, limit=limit, cursor=cursor)
        return await self.to_schemas(orgs), next_cursor

    def _certified_clause(self) -> ColumnElement[bool]:
        """Holding a certification in force today (active, due or in grace)."""
        from service.certifications.models import CertificationState

        today = self.ctx.clock().astimezone(STOCKHOLM).date()
        return exists().where(
            and_(
                Certification.organization_id == Organization.id,
                Certification.state == CertificationState.ACTIVE,
                Certification.grace_until > today,
            )
        )

    async def to_schemas(self, orgs: list[Organization]) -> list[schemas.PickupPoint]:
        ids = [o.id for o in orgs]
        listings: dict[UUID, list[schemas.Listing]] = defaultdict(list)
        statuses: dict[UUID, str] = {}
        today = self.ctx.clock().astimezone(STOCKHOLM).date()
        if ids:
            stmt = (
                select(CarrierPoint, Carrier.code)
                .join(Carrier, Carrier.id == CarrierPoint.carrier_id)
                .where(CarrierPoint.organization_id.in_(ids))
                .order_by(Carrier.code, CarrierPoint.external_id)
            )
            for point, code in (await self.ctx.session.execute(stmt)).tuples():
                listings[point.organization_id].append(
                    schemas.Listing(
                        id=point.id,
                        carrier=code,
                        external_id=point.external_id,
                        name=point.name,
                        kind=point.kind,
                        status=point.status,
                        closed_at=point.closed_at,
                        last_seen_at=point.last_seen_at,
                    )
                )
            for cert in await self.ctx.session.scalars(
                select(Certification).where(Certification.organization_id.in_(ids))
            ):
                statuses[cert.organization_id] = certification_status(
                    cert.state, current_window(cert), today
                ).value
        return [
            schemas.PickupPoint(
                id=o.id,
                name=o.name,
                kind=o.kind.value,
                status=o.status.value,
                street_address=o.street_address,
                postal_code=o.postal_code,
                city=o.city,
                latitude=o.latitude,
                longitude=o.longitude,
                municipality_code=o.municipality_code,
                county_code=o.county_code,
                placement=o.placement,
                placement_distance_m=o.placement_distance_m,
                carriers=sorted(
                    {listing.carrier for listing in listings[o.id] if listing.status is PointStatus.OPEN}
                ),
                listings=listings[o.id],
                certification_status=statuses.get(o.id),
            )
            for o in orgs
        ]

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
