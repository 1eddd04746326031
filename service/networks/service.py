"""Rules for networks: levels nest local < regional < national, scopes nest, no cycles."""

from __future__ import annotations

from uuid import UUID

import msgspec

from service.auth.principal import Principal
from service.context import Context
from service.db import utcnow
from service.geography.service import GeographyService
from service.networks import schemas
from service.networks.models import (
    LEVEL_OF_KIND,
    MemberRole,
    Network,
    NetworkCounty,
    NetworkKind,
    NetworkLevel,
    NetworkMember,
)
from service.networks.repository import MemberRepository, NetworkRepository
from service.organizations.service import OrganizationService
from service.participants.service import ParticipantService
from service.problems import FieldError, Problem, conflict, invalid, not_found
from service.validation import clean_name
from service.versioning import check_if_match, etag_of


def to_schema(network: Network) -> schemas.Network:
    return schemas.Network(
        id=network.id,
        name=network.name,
        level=network.level,
        kind=network.kind,
        parent_id=network.parent_id,
        municipality_code=network.municipality_code,
        county_codes=network.county_codes,
        description=network.description,
        created_at=network.created_at,
        updated_at=network.updated_at,
    )


def etag(network: Network) -> str:
    return etag_of("network", network.id, network.version)


def member_schema(
    member: NetworkMember, participant_name: str, organization_name: str | None
) -> schemas.Member:
    return schemas.Member(
        id=member.id,
        network_id=member.network_id,
        participant_id=member.participant_id,
        participant_name=participant_name,
        role=member.role,
        organization_id=member.organization_id,
        organization_name=organization_name,
        joined_at=member.joined_at,
        left_at=member.left_at,
    )


def member_etag(member: NetworkMember) -> str:
    return etag_of("network_member", member.id, member.version)


class _Shape(msgspec.Struct, kw_only=True):
    """A network's rule-relevant fields, as created or as they would be after a patch."""

    kind: NetworkKind
    parent_id: UUID | None
    municipality_code: str | None
    county_codes: list[str]


class NetworkService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.repo = NetworkRepository(session=ctx.session)
        self.members = MemberRepository(session=ctx.session)
        self.geography = GeographyService(ctx)

    @property
    def principal(self) -> Principal:
        return self.ctx.principal

    # --- networks -----------------------------------------------------------------------

    async def create(self, data: schemas.NetworkCreate) -> Network:
        if data.level is not None and data.level is not LEVEL_OF_KIND[data.kind]:
            raise invalid("level", f"a {data.kind.value} is a {LEVEL_OF_KIND[data.kind].value} network")
        await self._check_counties_exist(data.county_codes)
        shape = _Shape(
            kind=data.kind,
            parent_id=data.parent_id,
            municipality_code=data.municipality_code,
            county_codes=sorted(set(data.county_codes or [])),
        )
        await self._check(shape, self_id=None)
        network = Network(
            name=clean_name(data.name),
            kind=data.kind,
            level=LEVEL_OF_KIND[data.kind],
            description=data.description,
            parent_id=data.parent_id,
            municipality_code=data.municipality_code,
            counties=[NetworkCounty(county_code=c) for c in shape.county_codes],
        )
        return await self.repo.add(network)

    async def get(self, ident: UUID) -> Network:
        network = await self.repo.get_visible(self.principal, ident)
        if network is None:
            raise not_found("network", ident)
        return network

    async def page(
        self,
        *,
        level: NetworkLevel | None,
        kind: NetworkKind | None,
        municipality: str | None,
        county: str | None,
        parent_id: UUID | None,
        q: str | None,
        limit: int,
        cursor: str | None,
    ) -> schemas.NetworkPage:
        if level is not None and kind is not None and LEVEL_OF_KIND[kind] is not level:
            raise invalid("kind", f"a {kind.value} is never a {level.value} network", "query")
        if municipality is not None:
            await self.geography.require_municipality(municipality, field="municipality", source="query")
        if county is not None:
            await self.geography.require_county(county, field="county", source="query")
        rows, next_cursor = await self.repo.page(
            self.principal,
            level=level,
            kind=kind,
            municipality=municipality,
            county=county,
            parent_id=parent_id,
            q=q,
            limit=limit,
            cursor=cursor,
        )
        return schemas.NetworkPage(items=[to_schema(n) for n in rows], limit=limit, next_cursor=next_cursor)

    async def update(self, ident: UUID, patch: schemas.NetworkUpdate, if_match: str | None) -> Network:
        network = await self.get(ident)
        check_if_match(if_match, etag(network))
        changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
        if not changes:
            return network
        kind = changes.get("kind", network.kind)
        if LEVEL_OF_KIND[kind] is not network.level:
            raise invalid("kind", f"a {network.level.value} network cannot become a {kind.value}")
        counties = changes.get("county_codes", network.county_codes)
        if "county_codes" in changes:
            await self._check_counties_exist(changes["county_codes"])
        shape = _Shape(
            kind=kind,
            parent_id=changes.get("parent_id", network.parent_id),
            municipality_code=changes.get("municipality_code", network.municipality_code),
            county_codes=sorted(set(counties or [])),
        )
        await self._check(shape, self_id=network.id)
        await self._check_children(network, shape)
        if "name" in changes:
            network.name = clean_name(changes["name"])
        if "description" in changes:
            network.description = changes["description"]
        network.kind = shape.kind
        network.parent_id = shape.parent_id
        network.municipality_code = shape.municipality_code
        if shape.county_codes != network.county_codes:
            network.counties = [NetworkCounty(county_code=c) for c in shape.county_codes]
            # A child-collection change alone does not touch the row; bump it so the ETag moves.
            network.updated_at = utcnow()
        await self.ctx.session.flush()
        return network

    async def tree(self, ident: UUID) -> schemas.NetworkTree:
        root = await self.get(ident)
        nodes = await self.repo.descendants(root.id, self.principal)
        return schemas.NetworkTree(
            root_id=root.id,
            nodes=[
                schemas.NetworkTreeNode(
                    id=n.id,
                    name=n.name,
                    level=n.level,
                    kind=n.kind,
                    parent_id=n.parent_id,
                    municipality_code=n.municipality_code,
                    county_codes=n.county_codes,
                    depth=depth,
                )
                for n, depth in nodes
            ],
        )

    async def _check(self, shape: _Shape, *, self_id: UUID | None) -> None:
        level = LEVEL_OF_KIND[shape.kind]
        if level is NetworkLevel.NATIONAL:
            for field, value in (
                ("parent_id", shape.parent_id),
                ("municipality_code", shape.municipality_code),
                ("county_codes", shape.county_codes or None),
            ):
                if value is not None:
                    raise invalid(field, "a national network has no parent and covers the whole nation")
            if not self.principal.scope.nation:
                raise Problem("forbidden", "only national administrators create national networks")
            return

        if level is NetworkLevel.REGIONAL:
            if shape.municipality_code is not None:
                raise invalid("municipality_code", "a regional network covers counties, not a municipality")
            if not shape.county_codes:
                raise invalid("county_codes", "a regional network covers at least one county")
            if not self.principal.scope.covers_counties(shape.county_codes):
                raise Problem(
                    "forbidden",
                    "county_codes: outside your geographic scope",
                    errors=[FieldError("county_codes", "outside your scope")],
                )
            counties = set(shape.county_codes)
        else:
            if shape.county_codes:
                raise invalid("county_codes", "a local network covers one municipality, not counties")
            if shape.municipality_code is None:
                raise invalid("municipality_code", "a local network covers exactly one municipality")
            municipality = await self.geography.require_municipality(
                shape.municipality_code, field="municipality_code"
            )
            if not self.principal.scope.covers_municipality(municipality.code, municipality.county_code):
                raise Problem(
                    "forbidden",
                    "municipality_code: outside your geographic scope",
                    errors=[FieldError("municipality_code", "outside your scope")],
                )
            counties = {municipality.county_code}

        if shape.parent_id is None:
            above = "a national or regional" if level is NetworkLevel.REGIONAL else "a regional"
            raise invalid("parent_id", f"a {level.value} network hangs under {above} network")
        parent = await self.repo.get_visible(self.principal, shape.parent_id)
        if parent is None:
            raise invalid("parent_id", f"no network {shape.parent_id}")
        if level is NetworkLevel.LOCAL:
            if parent.level is not NetworkLevel.REGIONAL:
                raise invalid("parent_id", "a local network hangs under a regional network")
        elif parent.level is NetworkLevel.LOCAL:
            raise invalid("parent_id", "a regional network hangs under a national or regional network")
        if parent.level is NetworkLevel.REGIONAL and not counties <= set(parent.county_codes):
            raise invalid(
                "parent_id",
                f"the parent covers counties {', '.join(parent.county_codes)}, "
                f"which do not include {', '.join(sorted(counties - set(parent.county_codes)))}",
            )
        if self_id is not None and self_id in await self.repo.ancestor_ids(parent.id):
            raise invalid("parent_id", "this parent would make the network its own ancestor (a cycle)")

    async def _check_counties_exist(self, codes: list[str] | None) -> None:
        # In the client's order, so the error names the entry they sent (county_codes[1]).
        for i, code in enumerate(codes or []):
            await self.geography.require_county(code, field=f"county_codes[{i}]")

    async def _check_children(self, network: Network, shape: _Shape) -> None:
        if LEVEL_OF_KIND[shape.kind] is not NetworkLevel.REGIONAL:
            return
        counties = set(shape.county_codes)
        for child in await self.repo.children(network.id):
            needed = (
                set(child.county_codes) if child.municipality_code is None else {child.municipality_code[:2]}
            )
            if not needed <= counties:
                raise invalid(
                    "county_codes",
                    f"sub-network {child.id} ({child.name}) covers counties outside this scope",
                )

    # --- members ------------------------------------------------------------------------

    async def list_members(
        self,
        network_id: UUID,
        *,
        role: MemberRole | None,
        include_former: bool,
        limit: int,
        cursor: str | None,
    ) -> schemas.MemberPage:
        await self.get(network_id)
        rows, next_cursor = await self.members.page(
            network_id, role=role, include_former=include_former, limit=limit, cursor=cursor
        )
        return schemas.MemberPage(
            items=[member_schema(*r) for r in rows], limit=limit, next_cursor=next_cursor
        )

    async def get_member(self, network_id: UUID, member_id: UUID) -> tuple[schemas.Member, str]:
        await self.get(network_id)
        row = await self.members.get_with_names(network_id, member_id)
        if row is None:
            raise not_found("member", member_id)
        return member_schema(*row), member_etag(row[0])

    async def add_member(self, network_id: UUID, data: schemas.MemberCreate) -> NetworkMember:
        await self.writable(network_id)
        participant = await ParticipantService(self.ctx).require(data.participant_id, field="participant_id")
        if await self.members.active_for(network_id, participant.id) is not None:
            raise conflict("participant_id", "already a member of this network")
        organization_id = data.organization_id or participant.organization_id
        if data.organization_id is not None:
            await OrganizationService(self.ctx).require_active(data.organization_id, field="organization_id")
        member = NetworkMember(
            network_id=network_id,
            participant_id=participant.id,
            role=data.role,
            organization_id=organization_id,
        )
        return await self.members.add(member)

    async def update_member(
        self, network_id: UUID, member_id: UUID, patch: schemas.MemberUpdate, if_match: str | None
    ) -> NetworkMember:
        member = await self._member(network_id, member_id)
        check_if_match(if_match, member_etag(member))
        if member.left_at is not None:
            raise Problem("conflict", "this membership has ended; add the person again instead")
        if patch.role is not msgspec.UNSET:
            member.role = patch.role
        if patch.organization_id is not msgspec.UNSET:
            if patch.organization_id is not None:
                await OrganizationService(self.ctx).require_active(
                    patch.organization_id, field="organization_id"
                )
            member.organization_id = patch.organization_id
        await self.ctx.session.flush()
        return member

    async def end_member(self, network_id: UUID, member_id: UUID, if_match: str | None) -> None:
        member = await self._member(network_id, member_id)
        check_if_match(if_match, member_etag(member))
        if member.left_at is None:
            member.left_at = utcnow()
            await self.ctx.session.flush()

    async def writable(self, network_id: UUID) -> Network:
        """A network the principal may change: seeing it (a national one, say) is not enough."""
        network = await self.get(network_id)
        scope = self.principal.scope
        if network.level is NetworkLevel.NATIONAL:
            allowed = scope.nation
        elif network.level is NetworkLevel.REGIONAL:
            allowed = scope.covers_counties(network.county_codes)
        else:
            allowed = scope.covers_municipality(network.municipality_code)
        if not allowed:
            raise Problem("forbidden", "this network is outside the area you may change")
        return network

    async def _member(self, network_id: UUID, member_id: UUID) -> NetworkMember:
        await self.writable(network_id)
        member = await self.members.get_one_or_none(id=member_id, network_id=network_id)
        if member is None:
            raise not_found("member", member_id)
        return member
