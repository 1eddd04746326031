from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, patch, post
from litestar.params import FromPath, JSONBody

from service.auth.permissions import Permission, requires
from service.deps import RequestContext
from service.http import (
    ACTION_ERRORS,
    CREATE_ERRORS,
    LIST_ERRORS,
    READ_ERRORS,
    UPDATE_ERRORS,
    Cursor,
    IfMatch,
    Limit,
    created_response,
    page_response,
    resource_response,
)
from service.webhooks import schemas
from service.webhooks.models import WebhookEndpoint
from service.webhooks.service import WebhookService, etag, to_schema

MANAGE = requires(Permission.WEBHOOKS_MANAGE)


def _with_secret(endpoint: WebhookEndpoint, secret: str) -> schemas.WebhookWithSecret:
    plain = to_schema(endpoint)
    return schemas.WebhookWithSecret(
        **{f: getattr(plain, f) for f in schemas.Webhook.__struct_fields__}, secret=secret
    )


class WebhookController(Controller):
    path = "/v1/webhooks"
    tags = ["Webhooks"]

    @post(
        "/",
        **MANAGE,
        summary="Subscribe an endpoint to domain events (its secret is shown once)",
        responses=CREATE_ERRORS,
    )
    async def create_webhook(
        self, request: Request[Any, Any, Any], ctx: RequestContext, data: JSONBody[schemas.WebhookCreate]
    ) -> Response[schemas.WebhookWithSecret]:
        endpoint, secret = await WebhookService(ctx, request.app.state.settings).create(data)
        return created_response(
            request, _with_secret(endpoint, secret), etag(endpoint), f"{self.path}/{endpoint.id}"
        )

    @get("/", **MANAGE, summary="Webhook endpoints in your scope", responses=LIST_ERRORS)
    async def list_webhooks(
        self, request: Request[Any, Any, Any], ctx: RequestContext, limit: Limit = 50, cursor: Cursor = None
    ) -> Response[schemas.WebhookPage]:
        page = await WebhookService(ctx, request.app.state.settings).page(limit=limit, cursor=cursor)
        return page_response(request, page)

    @get("/{webhook_id:uuid}", **MANAGE, summary="One webhook endpoint", responses=READ_ERRORS)
    async def get_webhook(
        self, request: Request[Any, Any, Any], ctx: RequestContext, webhook_id: FromPath[UUID]
    ) -> Response[schemas.Webhook]:
        endpoint = await WebhookService(ctx, request.app.state.settings).get(webhook_id)
        return resource_response(request, to_schema(endpoint), etag(endpoint))

    @patch(
        "/{webhook_id:uuid}",
        **MANAGE,
        summary="Change an endpoint's name, URL or event types",
        responses=UPDATE_ERRORS,
    )
    async def update_webhook(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        webhook_id: FromPath[UUID],
        data: JSONBody[schemas.WebhookUpdate],
        if_match: IfMatch = None,
    ) -> Response[schemas.Webhook]:
        endpoint = await WebhookService(ctx, request.app.state.settings).update(webhook_id, data, if_match)
        return resource_response(request, to_schema(endpoint), etag(endpoint))

    @post(
        "/{webhook_id:uuid}/rotate-secret",
        **MANAGE,
        status_code=200,
        summary="A new signing secret; the old one keeps signing for 24 hours",
        responses=ACTION_ERRORS,
    )
    async def rotate_webhook_secret(
        self, request: Request[Any, Any, Any], ctx: RequestContext, webhook_id: FromPath[UUID]
    ) -> schemas.WebhookWithSecret:
        endpoint, secret = await WebhookService(ctx, request.app.state.settings).rotate(webhook_id)
        return _with_secret(endpoint, secret)

    @post(
        "/{webhook_id:uuid}/enable",
        **MANAGE,
        status_code=200,
        summary="Enable an endpoint again (after a 410 Gone disabled it)",
        responses=ACTION_ERRORS,
    )
    async def enable_webhook(
        self, request: Request[Any, Any, Any], ctx: RequestContext, webhook_id: FromPath[UUID]
    ) -> schemas.Webhook:
        return to_schema(await WebhookService(ctx, request.app.state.settings).enable(webhook_id))

    @get(
        "/{webhook_id:uuid}/deliveries",
        **MANAGE,
        summary="Recent deliveries, newest first",
        responses=READ_ERRORS,
    )
    async def list_webhook_deliveries(
        self, request: Request[Any, Any, Any], ctx: RequestContext, webhook_id: FromPath[UUID]
    ) -> list[schemas.Delivery]:
        return await WebhookService(ctx, request.app.state.settings).deliveries(webhook_id)

    @post(
        "/{webhook_id:uuid}/deliveries/{delivery_id:uuid}/replay",
        **MANAGE,
        status_code=202,
        summary="Send a delivery again (same webhook-id)",
        responses=ACTION_ERRORS,
    )
    async def replay_webhook_delivery(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        webhook_id: FromPath[UUID],
        delivery_id: FromPath[UUID],
    ) -> dict[str, str]:
        message = await WebhookService(ctx, request.app.state.settings).replay(webhook_id, delivery_id)
        return {"delivery_id": str(message.id), "status": message.status.value}
