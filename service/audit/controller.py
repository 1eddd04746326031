from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.params import QueryParameter

from service.audit import schemas
from service.audit.service import AuditService
from service.auth.permissions import Permission, requires
from service.deps import RequestContext
from service.http import LIST_ERRORS, Cursor, Limit, page_response

Text = Annotated[str | None, QueryParameter(max_length=100)]


class AuditController(Controller):
    path = "/v1/audit-events"
    tags = ["Audit"]

    @get("/", **requires(Permission.AUDIT_READ), summary="The audit log, newest first", responses=LIST_ERRORS)
    async def list_audit_events(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        entity: Annotated[str | None, QueryParameter(max_length=50, description="e.g. participant")] = None,
        entity_id: Text = None,
        principal_id: Annotated[
            str | None, QueryParameter(name="principal", max_length=100, description="e.g. key:demoadmn")
        ] = None,
        action: Annotated[str | None, QueryParameter(max_length=20, description="create, update, …")] = None,
        since: Annotated[datetime | None, QueryParameter(description="From this time (inclusive)")] = None,
        until: Annotated[datetime | None, QueryParameter(description="Before this time")] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Response[schemas.AuditEventPage]:
        page = await AuditService(ctx).page(
            entity=entity,
            entity_id=entity_id,
            principal_id=principal_id,
            action=action,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
        )
        return page_response(request, page)
