from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from service.auth.permissions import Permission, requires
from service.deps import RequestContext
from service.http import (
    ACTION_ERRORS,
    CREATE_ERRORS,
    LIST_ERRORS,
    MERGE_PATCH_NOTE,
    READ_ERRORS,
    UPDATE_ERRORS,
    Cursor,
    IdempotencyKey,
    IfMatch,
    Limit,
    MunicipalityFilter,
    created_response,
    idempotent,
    page_response,
    resource_response,
)
from service.networks import schemas
from service.networks.models import MemberRole, NetworkKind, NetworkLevel
from service.networks.service import NetworkService, etag, member_etag, member_schema, to_schema


class NetworkController(Controller):
    path = "/v1/networks"
    tags = ["Networks"]

    @post("/", **requires(Permission.NETWORKS_WRITE), summary="Create a network", responses=CREATE_ERRORS)
    async def create_network(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        data: JSONBody[schemas.NetworkCreate],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[schemas.Network]:
        async def create() -> Response[Any]:
            network = await NetworkService(ctx).create(data)
            return created_response(request, to_schema(network), etag(network), f"{self.path}/{network.id}")

        return await idempotent(request, ctx, idempotency_key, data, create)

    @get("/", **requires(Permission.NETWORKS_READ), summary="List networks", responses=LIST_ERRORS)
    async def list_networks(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        level: FromQuery[NetworkLevel | None] = None,
        kind: FromQuery[NetworkKind | None] = None,
        municipality: MunicipalityFilter = None,
        county: Annotated[
            str | None, QueryParameter(pattern=r"^[0-9]{2}$", description="Networks in or covering")
        ] = None,
        parent: Annotated[UUID | None, QueryParameter(description="Direct children of this network")] = None,
        q: Annotated[
            str | None, QueryParameter(max_length=100, description="Name contains (any case)")
        ] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Response[schemas.NetworkPage]:
        page = await NetworkService(ctx).page(
            level=level,
            kind=kind,
            municipality=municipality,
            county=county,
            parent_id=parent,
            q=q,
            limit=limit,
            cursor=cursor,
        )
        return page_response(request, page)

    @get(
        "/{network_id:uuid}",
        **requires(Permission.NETWORKS_READ),
        summary="One network",
        responses=READ_ERRORS,
    )
    async def get_network(
        self, request: Request[Any, Any, Any], ctx: RequestContext, network_id: FromPath[UUID]
    ) -> Response[schemas.Network]:
        network = await NetworkService(ctx).get(network_id)
        return resource_response(request, to_schema(network), etag(network))

    @patch(
        "/{network_id:uuid}",
        **requires(Permission.NETWORKS_WRITE),
        summary="Change a network",
        description=MERGE_PATCH_NOTE,
        responses=UPDATE_ERRORS,
    )
    async def update_network(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        network_id: FromPath[UUID],
        data: JSONBody[schemas.NetworkUpdate],
        if_match: IfMatch = None,
    ) -> Response[schemas.Network]:
        network = await NetworkService(ctx).update(network_id, data, if_match)
        return resource_response(request, to_schema(network), etag(network))

    @get(
        "/{network_id:uuid}/tree",
        **requires(Permission.NETWORKS_READ),
        summary="The network and every network below it",
        responses=READ_ERRORS,
    )
    async def get_tree(self, ctx: RequestContext, network_id: FromPath[UUID]) -> schemas.NetworkTree:
        return await NetworkService(ctx).tree(network_id)


class NetworkMemberController(Controller):
    path = "/v1/networks/{network_id:uuid}/members"
    tags = ["Networks"]

    @get("/", **requires(Permission.NETWORKS_READ), summary="A network's members", responses=LIST_ERRORS)
    async def list_members(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        network_id: FromPath[UUID],
        role: FromQuery[MemberRole | None] = None,
        include_former: Annotated[bool, QueryParameter(description="Also members who left")] = False,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Response[schemas.MemberPage]:
        page = await NetworkService(ctx).list_members(
            network_id, role=role, include_former=include_former, limit=limit, cursor=cursor
        )
        return page_response(request, page)

    @post(
        "/",
        **requires(Permission.NETWORKS_WRITE),
        summary="Add a person to a network",
        responses=CREATE_ERRORS,
    )
    async def add_member(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        network_id: FromPath[UUID],
        data: JSONBody[schemas.MemberCreate],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[schemas.Member]:
        async def create() -> Response[Any]:
            service = NetworkService(ctx)
            member = await service.add_member(network_id, data)
            body, tag = await service.get_member(network_id, member.id)
            return created_response(request, body, tag, f"/v1/networks/{network_id}/members/{member.id}")

        return await idempotent(request, ctx, idempotency_key, data, create)

    @get(
        "/{member_id:uuid}",
        **requires(Permission.NETWORKS_READ),
        summary="One membership",
        responses=READ_ERRORS,
    )
    async def get_member(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        network_id: FromPath[UUID],
        member_id: FromPath[UUID],
    ) -> Response[schemas.Member]:
        body, tag = await NetworkService(ctx).get_member(network_id, member_id)
        return resource_response(request, body, tag)

    @patch(
        "/{member_id:uuid}",
        **requires(Permission.NETWORKS_WRITE),
        summary="Change a member's role or represented organization",
        responses=UPDATE_ERRORS,
    )
    async def update_member(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        network_id: FromPath[UUID],
        member_id: FromPath[UUID],
        data: JSONBody[schemas.MemberUpdate],
        if_match: IfMatch = None,
    ) -> Response[schemas.Member]:
        service = NetworkService(ctx)
        await service.update_member(network_id, member_id, data, if_match)
        body, tag = await service.get_member(network_id, member_id)
        return resource_response(request, body, tag)

    @delete(
        "/{member_id:uuid}",
        **requires(Permission.NETWORKS_WRITE),
        summary="End a membership (kept as history)",
        responses=ACTION_ERRORS,
    )
    async def end_member(
        self,
        ctx: RequestContext,
        network_id: FromPath[UUID],
        member_id: FromPath[UUID],
        if_match: IfMatch = None,
    ) -> None:
        await NetworkService(ctx).end_member(network_id, member_id, if_match)


__all__ = ["NetworkController", "NetworkMemberController", "member_etag", "member_schema"]
