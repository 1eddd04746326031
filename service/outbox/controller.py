from __future__ import annotations

import html
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, MediaType, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.permissions import PUBLIC, Permission, requires
from service.auth.principal import Principal, Role, Scope
from service.context import Context
from service.deps import RequestContext
from service.http import (
    ACTION_ERRORS,
    LIST_ERRORS,
    READ_ERRORS,
    Cursor,
    Limit,
    page_response,
    problem_responses,
)
from service.outbox import schemas
from service.outbox.consent import clear_hold, unsubscribe, visible_holds
from service.outbox.models import Category, OutboxStatus
from service.outbox.service import OutboxService, to_schema
from service.pluginhost import PluginHost, PluginStatus
from service.problems import not_found

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


class EmailHold(msgspec.Struct):
    address: str
    reason: str
    held_at: datetime


class EmailHoldController(Controller):
    path = "/v1/email-holds"
    tags = ["Outbox"]

    @get(
        "/",
        **requires(Permission.PARTICIPANTS_WRITE),
        summary="Addresses on hold after a permanent rejection",
    )
    async def list_email_holds(self, ctx: RequestContext) -> list[EmailHold]:
        return [
            EmailHold(address=h.address, reason=h.reason, held_at=h.held_at) for h in await visible_holds(ctx)
        ]

    @delete(
        "/{address:str}",
        **requires(Permission.PARTICIPANTS_WRITE),
        summary="Clear a hold: mail may go out again",
        responses=ACTION_ERRORS,
    )
    async def clear_email_hold(self, ctx: RequestContext, address: FromPath[str]) -> None:
        await clear_hold(ctx, address)


_PAGE = """<!doctype html>
<html lang="sv"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Tillsammans mot nätdroger</title></head>
<body style="font-family: sans-serif; max-width: 36rem; margin: 2rem auto; padding: 0 1rem">
<h1>Tillsammans mot nätdroger</h1>{body}</body></html>"""
LINK_PRINCIPAL = Principal(
    id="link:unsubscribe", name="unsubscribe link", roles=frozenset({Role.SYSTEM}), scope=Scope.national()
)


class UnsubscribeController(Controller):
    """RFC 8058 one-click unsubscribe. Public: the signed token is the authority."""

    path = "/v1/unsubscribe"
    tags = ["Outbox"]

    @get(
        "/{token:str}",
        **PUBLIC,
        summary="A page to confirm leaving the mailing list",
        media_type=MediaType.HTML,
    )
    async def unsubscribe_page(self, token: FromPath[str]) -> str:
        # A GET never changes anything: link scanners open links too.
        return _PAGE.format(
            body=(
                "<p>Vill du inte längre få utskick från nätverket? / No more mailings from the network?</p>"
                f'<form method="post" action="{html.escape(token)}">'
                '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
                '<button type="submit">Avregistrera / Unsubscribe</button></form>'
            )
        )

    @post(
        "/{token:str}",
        **PUBLIC,
        status_code=200,
        summary="Leave the mailing list (one click)",
        media_type=MediaType.HTML,
        responses=problem_responses(404),
    )
    async def unsubscribe_now(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], token: FromPath[str]
    ) -> str:
        db_session.info["principal_id"] = LINK_PRINCIPAL.id
        ctx = Context(session=db_session, principal=LINK_PRINCIPAL)
        if not await unsubscribe(ctx, request.app.state.settings, token):
            raise not_found("unsubscribe link", "(invalid)")
        return _PAGE.format(body="<p>Du får inga fler utskick. / You will get no more mailings.</p>")
