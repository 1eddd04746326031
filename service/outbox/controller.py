from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, QueryParameter

from service.auth.permissions import Permission, requires
from service.deps import RequestContext
from service.http import ACTION_ERRORS, LIST_ERRORS, READ_ERRORS, Cursor, Limit, page_response
from service.outbox import schemas
from service.outbox.models import Category, OutboxStatus
from service.outbox.service import OutboxService, to_schema
from service.pluginhost import PluginHost, PluginStatus

MANAGE = requires(Permission.OUTBOX_MANAGE)


class OutboxController(Controller):
    path = "/v1/outbox"
    tags = ["Outbox"]

    @get("/", **MANAGE, summary="Queued, sent, dead and held e-mail, newest first", responses=LIST_ERRORS)
    async def list_outbox(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        status: Annotated[OutboxStatus | None, QueryParameter()] = None,
        category: Annotated[Category | None, QueryParameter()] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Response[schemas.OutboxPage]:
        service = OutboxService(ctx, request.app.state.settings)
        return page_response(
            request, await service.page(status=status, category=category, limit=limit, cursor=cursor)
        )

    @get("/{message_id:uuid}", **MANAGE, summary="One message, with its bodies", responses=READ_ERRORS)
    async def get_outbox_message(
        self, request: Request[Any, Any, Any], ctx: RequestContext, message_id: FromPath[UUID]
    ) -> schemas.OutboxMessage:
        message = await OutboxService(ctx, request.app.state.settings).get(message_id)
        return to_schema(message, full=True)

    @post(
        "/{message_id:uuid}/retry",
        **MANAGE,
        status_code=200,
        summary="Send a dead or held message again",
        responses=ACTION_ERRORS,
    )
    async def retry_outbox_message(
        self, request: Request[Any, Any, Any], ctx: RequestContext, message_id: FromPath[UUID]
    ) -> schemas.OutboxMessage:
        message = await OutboxService(ctx, request.app.state.settings).retry(message_id)
        return to_schema(message)


class PluginController(Controller):
    path = "/v1/plugins"
    tags = ["Plugins"]

    @get("/", **requires(Permission.PLUGINS_READ), summary="Installed plugins and their health")
    async def list_plugins(self, request: Request[Any, Any, Any]) -> list[PluginStatus]:
        host: PluginHost = request.app.state.plugins
        return host.status()
