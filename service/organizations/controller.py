from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter

from service.auth.permissions import Permission, requires
from service.certifications.service import CertificationService
from service.deps import RequestContext
from service.http import (
    ACTION_ERRORS,
    CREATE_ERRORS,
    LIST_ERRORS,
    MERGE_PATCH_NOTE,
    READ_ERRORS,
    UPDATE_ERRORS,
    CountyFilter,
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
from service.meetings.controller import outside
from service.organizations import schemas
from service.organizations.models import OrganizationKind, OrganizationStatus
from service.organizations.service import OrganizationService, etag, to_schema


class OrganizationController(Controller):
    path = "/v1/organizations"
    tags = ["Organizations"]

    @post(
        "/",
        **requires(Permission.ORGANIZATIONS_WRITE),
        summary="Create an organization",
        responses=CREATE_ERRORS,
    )
    async def create_organization(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        data: JSONBody[schemas.OrganizationCreate],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[schemas.Organization]:
        async def create() -> Response[Any]:
            org = await OrganizationService(ctx).create(data)
            return created_response(request, to_schema(org), etag(org), f"{self.path}/{org.id}")

        return await idempotent(request, ctx, idempotency_key, data, create)

    @get("/", **requires(Permission.ORGANIZATIONS_READ), summary="List organizations", responses=LIST_ERRORS)
    async def list_organizations(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        kind: Annotated[OrganizationKind | None, QueryParameter(description="Only this kind")] = None,
        municipality: MunicipalityFilter = None,
        county: CountyFilter = None,
        q: Annotated[
            str | None, QueryParameter(max_length=100, description="Name contains (any case)")
        ] = None,
        status: Annotated[
            OrganizationStatus | None, QueryParameter(description="Default: active only")
        ] = OrganizationStatus.ACTIVE,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Response[schemas.OrganizationPage]:
        page = await OrganizationService(ctx).page(
            kind=kind,
            municipality=municipality,
            county=county,
            q=q,
            status=status,
            limit=limit,
            cursor=cursor,
        )
        return page_response(request, page)

    @get(
        "/{organization_id:uuid}",
        **requires(Permission.ORGANIZATIONS_READ),
        summary="One organization",
        responses=READ_ERRORS,
    )
    async def get_organization(
        self, request: Request[Any, Any, Any], ctx: RequestContext, organization_id: FromPath[UUID]
    ) -> Response[schemas.Organization]:
        org = await OrganizationService(ctx).get(organization_id)
        return resource_response(request, to_schema(org), etag(org))

    @patch(
        "/{organization_id:uuid}",
        **requires(Permission.ORGANIZATIONS_WRITE),
        summary="Change an organization",
        description=MERGE_PATCH_NOTE,
        responses=UPDATE_ERRORS,
    )
    async def update_organization(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        organization_id: FromPath[UUID],
        data: JSONBody[schemas.OrganizationUpdate],
        if_match: IfMatch = None,
    ) -> Response[schemas.Organization]:
        org = await OrganizationService(ctx).update(organization_id, data, if_match)
        return resource_response(request, to_schema(org), etag(org))

    @post(
        "/{organization_id:uuid}/archive",
        **requires(Permission.ORGANIZATIONS_WRITE),
        status_code=200,
        summary="Archive (never delete) an organization; its certification is revoked",
    )
    async def archive_organization(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        organization_id: FromPath[UUID],
        if_match: IfMatch = None,
    ) -> Response[schemas.Organization]:
        org = await OrganizationService(ctx).archive(organization_id, if_match)
        # A closed place cannot keep its sticker: the certification goes with it.
        await CertificationService(ctx, outside(request)).organization_closed(org)
        return resource_response(request, to_schema(org), etag(org))

    @post(
        "/{organization_id:uuid}/restore",
        **requires(Permission.ORGANIZATIONS_WRITE),
        status_code=200,
        summary="Bring an archived organization back",
        responses=ACTION_ERRORS,
    )
    async def restore_organization(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        organization_id: FromPath[UUID],
        if_match: IfMatch = None,
    ) -> Response[schemas.Organization]:
        org = await OrganizationService(ctx).restore(organization_id, if_match)
        return resource_response(request, to_schema(org), etag(org))
