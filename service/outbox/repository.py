from __future__ import annotations

from datetime import datetime
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import or_, select, update

from service.outbox.models import Category, EmailHold, OutboxMessage, OutboxStatus
from service.pagination import Ordering, fetch_page


class OutboxRepository(SQLAlchemyAsyncRepository[OutboxMessage]):
    model_type = OutboxMessage
    newest_first = Ordering("outbox.id.desc", (OutboxMessage.id,), ("id",), descending=True)

    async def claim(self, *, now: datetime, lease_until: datetime, worker: str, limit: int) -> list[UUID]:
        """Lease up to `limit` due messages to `worker`.

        PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent workers never wait for or take each
        other's rows. SQLite (one writer at a time) drops FOR UPDATE; the single UPDATE below is
        atomic there on its own.
        """
        due = (
            select(OutboxMessage.id)
            .where(
                OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.next_attempt_at <= now,
                or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until < now),
            )
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        stmt = (
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(due.scalar_subquery()))
            .values(locked_until=lease_until, locked_by=worker)
            .returning(OutboxMessage.id)
            .execution_options(synchronize_session=False)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def by_ids(self, ids: list[UUID]) -> list[OutboxMessage]:
        return list(await self.session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids))))

    async def page(
        self, *, status: OutboxStatus | None, category: Category | None, limit: int, cursor: str | None
    ) -> tuple[list[OutboxMessage], str | None]:
        stmt = select(OutboxMessage)
        if status is not None:
            stmt = stmt.where(OutboxMessage.status == status)
        if category is not None:
            stmt = stmt.where(OutboxMessage.category == category)
        return await fetch_page(self.session, stmt, self.newest_first, limit=limit, cursor=cursor)

    async def held(self, addresses: list[str]) -> set[str]:
        rows = await self.session.scalars(select(EmailHold.address).where(EmailHold.address.in_(addresses)))
        return set(rows)
