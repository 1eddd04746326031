from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody

from service.api_keys import schemas
from service.api_keys.service import ApiKeyService, etag, to_schema
from service.auth.permissions import Permission, requires
from service.deps import RequestContext
from service.http import (
    ACTION_ERRORS,
    CREATE_ERRORS,
    LIST_ERRORS,
    READ_ERRORS,
    Cursor,
    IdempotencyKey,
    IfMatch,
    Limit,
    created_response,
    idempotent,
    page_response,
    resource_response,
)

MANAGE = requires(Permission.API_KEYS_MANAGE)


class ApiKeyController(Controller):
    path = "/v1/api-keys"
    tags = ["API keys"]

    @post("/", **MANAGE, summary="Create an API key (its secret is shown this once)", responses=CREATE_ERRORS)
    async def create_api_key(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        data: JSONBody[schemas.ApiKeyCreate],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[schemas.ApiKeyCreated]:
        async def create() -> Response[Any]:
            key, secret = await ApiKeyService(ctx).create(data)
            body = schemas.ApiKeyCreated(
                **{f: getattr(to_schema(key), f) for f in schemas.ApiKey.__struct_fields__}, key=secret
            )
            return created_response(request, body, etag(key), f"{self.path}/{key.id}")

        return await idempotent(request, ctx, idempotency_key, data, create)

    @get("/", **MANAGE, summary="List API keys", responses=LIST_ERRORS)
    async def list_api_keys(
        self, request: Request[Any, Any, Any], ctx: RequestContext, limit: Limit = 50, cursor: Cursor = None
    ) -> Response[schemas.ApiKeyPage]:
        return page_response(request, await ApiKeyService(ctx).page(limit=limit, cursor=cursor))

    @get("/{key_id:uuid}", **MANAGE, summary="One API key", responses=READ_ERRORS)
    async def get_api_key(
        self, request: Request[Any, Any, Any], ctx: RequestContext, key_id: FromPath[UUID]
    ) -> Response[schemas.ApiKey]:
        key = await ApiKeyService(ctx).get(key_id)
        return resource_response(request, to_schema(key), etag(key))

    @post(
        "/{key_id:uuid}/revoke",
        **MANAGE,
        status_code=200,
        summary="Revoke an API key",
        responses=ACTION_ERRORS,
    )
    async def revoke_api_key(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        key_id: FromPath[UUID],
        if_match: IfMatch = None,
    ) -> Response[schemas.ApiKey]:
        service = ApiKeyService(ctx)
        key = await service.revoke(await service.get(key_id), if_match)
        return resource_response(request, to_schema(key), etag(key))
