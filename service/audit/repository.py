from __future__ import annotations

from datetime import datetime

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import select

from service.audit.models import AuditEvent
from service.pagination import Ordering, fetch_page


class AuditRepository(SQLAlchemyAsyncRepository[AuditEvent]):
    model_type = AuditEvent
    newest_first = Ordering("audit.id.desc", (AuditEvent.id,), ("id",), descending=True)

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
    ) -> tuple[list[AuditEvent], str | None]:
        stmt = select(AuditEvent)
        if entity is not None:
            stmt = stmt.where(AuditEvent.entity == entity)
        if entity_id is not None:
            stmt = stmt.where(AuditEvent.entity_id == entity_id)
        if principal_id is not None:
            stmt = stmt.where(AuditEvent.principal_id == principal_id)
        if action is not None:
            stmt = stmt.where(AuditEvent.action == action)
        if since is not None:
            stmt = stmt.where(AuditEvent.occurred_at >= since)
        if until is not None:
            stmt = stmt.where(AuditEvent.occurred_at < until)
        return await fetch_page(self.session, stmt, self.newest_first, limit=limit, cursor=cursor)

    async def about(self, entity: str, entity_id: str) -> list[AuditEvent]:
        stmt = (
            select(AuditEvent)
            .where(AuditEvent.entity == entity, AuditEvent.entity_id == entity_id)
            .order_by(AuditEvent.id)
        )
        return list(await self.session.scalars(stmt))
