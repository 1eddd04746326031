from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, patch, post
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
from service.participants import schemas
from service.participants.models import ParticipantRoleKind
from service.participants.service import ParticipantService, etag, to_schema


class ParticipantController(Controller):
    path = "/v1/participants"
    tags = ["Participants"]

    @post(
        "/", **requires(Permission.PARTICIPANTS_WRITE), summary="Register a person", responses=CREATE_ERRORS
    )
    async def create_participant(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        data: JSONBody[schemas.ParticipantCreate],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[schemas.Participant]:
        async def create() -> Response[Any]:
            person = await ParticipantService(ctx).create(data)
            return created_response(request, to_schema(person), etag(person), f"{self.path}/{person.id}")

        return await idempotent(request, ctx, idempotency_key, data, create)

    @get("/", **requires(Permission.PARTICIPANTS_READ), summary="List people", responses=LIST_ERRORS)
    async def list_participants(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        organization: Annotated[UUID | None, QueryParameter(description="Current employer")] = None,
        role: FromQuery[ParticipantRoleKind | None] = None,
        municipality: MunicipalityFilter = None,
        county: CountyFilter = None,
        email: Annotated[str | None, QueryParameter(max_length=254, description="Exact, any case")] = None,
        q: Annotated[
            str | None, QueryParameter(max_length=100, description="Name contains (any case)")
        ] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Response[schemas.ParticipantPage]:
        page = await ParticipantService(ctx).page(
            organization_id=organization,
            role=role,
            municipality=municipality,
            county=county,
            email=email,
            q=q,
            limit=limit,
            cursor=cursor,
        )
        return page_response(request, page)

    @get(
        "/{participant_id:uuid}",
        **requires(Permission.PARTICIPANTS_READ),
        summary="One person",
        responses=READ_ERRORS,
    )
    async def get_participant(
        self, request: Request[Any, Any, Any], ctx: RequestContext, participant_id: FromPath[UUID]
    ) -> Response[schemas.Participant]:
        person = await ParticipantService(ctx).get(participant_id)
        return resource_response(request, to_schema(person), etag(person))

    @patch(
        "/{participant_id:uuid}",
        **requires(Permission.PARTICIPANTS_WRITE),
        summary="Change a person",
        description=MERGE_PATCH_NOTE,
        responses=UPDATE_ERRORS,
    )
    async def update_participant(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        participant_id: FromPath[UUID],
        data: JSONBody[schemas.ParticipantUpdate],
        if_match: IfMatch = None,
    ) -> Response[schemas.Participant]:
        person = await ParticipantService(ctx).update(participant_id, data, if_match)
        return resource_response(request, to_schema(person), etag(person))

    @post(
        "/{participant_id:uuid}/leave",
        **requires(Permission.PARTICIPANTS_WRITE),
        status_code=200,
        summary="The person left their organization",
        responses=ACTION_ERRORS,
    )
    async def leave_organization(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        participant_id: FromPath[UUID],
        if_match: IfMatch = None,
    ) -> Response[schemas.Participant]:
        person = await ParticipantService(ctx).leave(participant_id, if_match)
        return resource_response(request, to_schema(person), etag(person))

    @get(
        "/{participant_id:uuid}/export",
        **requires(Permission.PARTICIPANTS_GDPR),
        summary="Everything held about the person (GDPR access request)",
        responses=READ_ERRORS,
    )
    async def export_participant(
        self, ctx: RequestContext, participant_id: FromPath[UUID]
    ) -> schemas.ParticipantExport:
        return await ParticipantService(ctx).export(participant_id)

    @post(
        "/{participant_id:uuid}/erase",
        **requires(Permission.PARTICIPANTS_GDPR),
        status_code=200,
        summary="Erase the person's name, e-mail and phone for good (GDPR erasure); counts survive",
        responses=ACTION_ERRORS,
    )
    async def erase_participant(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        participant_id: FromPath[UUID],
        if_match: IfMatch = None,
    ) -> Response[schemas.Participant]:
        person = await ParticipantService(ctx).erase(participant_id, if_match)
        return resource_response(request, to_schema(person), etag(person))

    @get(
        "/{participant_id:uuid}/employments",
        **requires(Permission.PARTICIPANTS_READ),
        summary="Where the person has worked, newest first",
        responses=READ_ERRORS,
    )
    async def list_employments(
        self, ctx: RequestContext, participant_id: FromPath[UUID]
    ) -> list[schemas.Employment]:
        return await ParticipantService(ctx).employments(participant_id)
