from __future__ import annotations

from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import ColumnElement, Select, exists, select

from service.auth.principal import Principal
from service.db import contains_folded
from service.organizations.models import Organization, OrganizationKind, OrganizationStatus
from service.pagination import Ordering, fetch_page


class OrganizationRepository(SQLAlchemyAsyncRepository[Organization]):
    model_type = Organization
    by_name = Ordering("organization.name", (Organization.name, Organization.id), ("name", "id"))

    def scoped(self, principal: Principal) -> Select[tuple[Organization]]:
        stmt = select(Organization)
        clause = self.scope_clause(principal)
        return stmt if clause is None else stmt.where(clause)

    @staticmethod
    def scope_clause(principal: Principal) -> ColumnElement[bool] | None:
        if principal.scope.carrier is not None:
            # A carrier's integration sees the places it lists (open or closed), nothing else.
            from service.registries.models import Carrier, CarrierPoint

            return exists().where(
                CarrierPoint.organization_id == Organization.id,
                CarrierPoint.carrier_id == Carrier.id,
                Carrier.code == principal.scope.carrier,
            )
        return principal.scope.geo_filter(Organization.municipality_code, Organization.county_code)

    async def get_visible(self, principal: Principal, ident: UUID) -> Organization | None:
        stmt = self.scoped(principal).where(Organization.id == ident)
        return (await self.session.scalars(stmt)).one_or_none()

    async def page(
        self,
        principal: Principal,
        *,
        kind: OrganizationKind | None,
        municipality: str | None,
        county: str | None,
        q: str | None,
        status: OrganizationStatus | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Organization], str | None]:
        stmt = self.scoped(principal)
        if kind is not None:
            stmt = stmt.where(Organization.kind == kind)
        if municipality is not None:
            stmt = stmt.where(Organization.municipality_code == municipality)
        if county is not None:
            stmt = stmt.where(Organization.county_code == county)
        if q:
            stmt = stmt.where(contains_folded(Organization.name, q))
        if status is not None:
            stmt = stmt.where(Organization.status == status)
        return await fetch_page(self.session, stmt, self.by_name, limit=limit, cursor=cursor)
