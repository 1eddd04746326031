"""Reading the audit log (writing happens in recorder.py, on every flush)."""

from __future__ import annotations

from datetime import datetime

from service.audit import schemas
from service.audit.models import AuditEvent
from service.audit.repository import AuditRepository
from service.context import Context
from service.problems import invalid


def to_schema(event: AuditEvent) -> schemas.AuditEvent:
    return schemas.AuditEvent(
        id=event.id,
        occurred_at=event.occurred_at,
        principal_id=event.principal_id,
        request_id=event.request_id,
        entity=event.entity,
        entity_id=event.entity_id,
        action=event.action,
        changes=event.changes,
    )


class AuditService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.repo = AuditRepository(session=ctx.session)

    async def page(
        self,
        *,
        entity: str | None,
        entity_id: str | None,
        principal_id: str | None,
        action: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> schemas.AuditEventPage:
        for field, value in (("since", since), ("until", until)):
            if value is not None and value.tzinfo is None:
                raise invalid(field, "give a time zone, e.g. 2026-11-25T00:00:00Z", "query")
        rows, next_cursor = await self.repo.page(
            entity=entity,
            entity_id=entity_id,
            principal_id=principal_id,
            action=action,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
        )
        return schemas.AuditEventPage(
            items=[to_schema(e) for e in rows], limit=limit, next_cursor=next_cursor
        )

    async def about(self, entity: str, entity_id: str) -> list[schemas.AuditEvent]:
        return [to_schema(e) for e in await self.repo.about(entity, entity_id)]
