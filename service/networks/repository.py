from __future__ import annotations

from typing import Any
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import ColumnElement, Select, exists, func, literal, or_, select
from sqlalchemy.orm import QueryableAttribute, aliased

from service.auth.principal import Principal
from service.db import contains_folded
from service.networks.models import Network, NetworkCounty, NetworkKind, NetworkLevel, NetworkMember
from service.organizations.models import Organization
from service.pagination import Ordering, fetch_page
from service.participants.models import Participant


def _county_of(municipality_col: QueryableAttribute[str | None]) -> ColumnElement[str]:
    # Municipality codes begin with their county's code (SCB), so no join is needed.
    return func.substr(municipality_col, 1, 2)


class NetworkRepository(SQLAlchemyAsyncRepository[Network]):
    model_type = Network
    by_name = Ordering("network.name", (Network.name, Network.id), ("name", "id"))

    @staticmethod
    def scope_clause(principal: Principal) -> ColumnElement[bool] | None:
        scope = principal.scope
        if scope.nation:
            return None
        counties = sorted(scope.county_codes | {m[:2] for m in scope.municipality_codes})
        local = or_(
            Network.municipality_code.in_(sorted(scope.municipality_codes)),
            _county_of(Network.municipality_code).in_(sorted(scope.county_codes)),
        )
        regional = exists().where(
            NetworkCounty.network_id == Network.id, NetworkCounty.county_code.in_(counties)
        )
        return or_(
            Network.level == NetworkLevel.NATIONAL,
            (Network.level == NetworkLevel.LOCAL) & local,
            (Network.level == NetworkLevel.REGIONAL) & regional,
        )

    def scoped(self, principal: Principal) -> Select[tuple[Network]]:
        clause = self.scope_clause(principal)
        stmt = select(Network)
        return stmt if clause is None else stmt.where(clause)

    async def get_visible(self, principal: Principal, ident: UUID) -> Network | None:
        return (await self.session.scalars(self.scoped(principal).where(Network.id == ident))).one_or_none()

    async def page(
        self,
        principal: Principal,
        *,
        level: NetworkLevel | None,
        kind: NetworkKind | None,
        municipality: str | None,
        county: str | None,
        parent_id: UUID | None,
        q: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Network], str | None]:
        stmt = self.scoped(principal)
        if level is not None:
            stmt = stmt.where(Network.level == level)
        if kind is not None:
            stmt = stmt.where(Network.kind == kind)
        if municipality is not None:
            stmt = stmt.where(Network.municipality_code == municipality)
        if county is not None:
            in_county = exists().where(
                NetworkCounty.network_id == Network.id, NetworkCounty.county_code == county
            )
            stmt = stmt.where(or_(_county_of(Network.municipality_code) == county, in_county))
        if parent_id is not None:
            stmt = stmt.where(Network.parent_id == parent_id)
        if q:
            stmt = stmt.where(contains_folded(Network.name, q))
        return await fetch_page(self.session, stmt, self.by_name, limit=limit, cursor=cursor)

    async def ancestor_ids(self, start: UUID) -> list[UUID]:
        """`start` and every network above it, nearest first (a recursive CTE)."""
        start_row = select(Network.id, Network.parent_id, literal(0).label("d")).where(Network.id == start)
        up = start_row.cte("ancestors", recursive=True)
        parent = aliased(Network)
        up = up.union_all(
            select(parent.id, parent.parent_id, up.c.d + 1).where(parent.id == up.c.parent_id, up.c.d < 64)
        )
        rows = await self.session.execute(select(up.c.id).order_by(up.c.d))
        return [r[0] for r in rows]

    async def descendants(self, root: UUID, principal: Principal) -> list[tuple[Network, int]]:
        """The network and everything below it that the principal may see, with depths,
        parents before children."""
        root_row = select(Network.id, literal(0).label("depth")).where(Network.id == root)
        down = root_row.cte("descendants", recursive=True)
        child = aliased(Network)
        down = down.union_all(
            select(child.id, down.c.depth + 1).where(child.parent_id == down.c.id, down.c.depth < 64)
        )
        stmt = (
            select(Network, down.c.depth)
            .join(down, down.c.id == Network.id)
            .order_by(down.c.depth, Network.name, Network.id)
        )
        if (clause := self.scope_clause(principal)) is not None:
            stmt = stmt.where(clause)
        return [(n, d) for n, d in (await self.session.execute(stmt)).tuples()]

    async def children(self, parent: UUID) -> list[Network]:
        return list(await self.session.scalars(select(Network).where(Network.parent_id == parent)))


class MemberRepository(SQLAlchemyAsyncRepository[NetworkMember]):
    model_type = NetworkMember
    by_joined = Ordering("member.id", (NetworkMember.id,), ("id",))

    def _with_names(self) -> Select[Any]:
        """Members with their person's and (outer-joined) organization's names."""
        return (
            select(NetworkMember, Participant.name, Organization.name)
            .join(Participant, Participant.id == NetworkMember.participant_id)
            .outerjoin(Organization, Organization.id == NetworkMember.organization_id)
        )

    async def get_with_names(
        self, network_id: UUID, member_id: UUID
    ) -> tuple[NetworkMember, str, str | None] | None:
        stmt = self._with_names().where(NetworkMember.network_id == network_id, NetworkMember.id == member_id)
        return (await self.session.execute(stmt)).tuples().one_or_none()

    async def active_for(self, network_id: UUID, participant_id: UUID) -> NetworkMember | None:
        stmt = select(NetworkMember).where(
            NetworkMember.network_id == network_id,
            NetworkMember.participant_id == participant_id,
            NetworkMember.left_at.is_(None),
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def page(
        self, network_id: UUID, *, role: str | None, include_former: bool, limit: int, cursor: str | None
    ) -> tuple[list[tuple[NetworkMember, str, str | None]], str | None]:
        stmt = self._with_names().where(NetworkMember.network_id == network_id)
        if role is not None:
            stmt = stmt.where(NetworkMember.role == role)
        if not include_former:
            stmt = stmt.where(NetworkMember.left_at.is_(None))
        return await fetch_page(self.session, stmt, self.by_joined, limit=limit, cursor=cursor, scalars=False)
