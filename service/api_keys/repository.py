from __future__ import annotations

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import select

from service.api_keys.models import ApiKey
from service.pagination import Ordering, fetch_page


class ApiKeyRepository(SQLAlchemyAsyncRepository[ApiKey]):
    model_type = ApiKey
    by_id = Ordering("api_key.id", (ApiKey.id,), ("id",))

    async def by_prefix(self, prefix: str) -> ApiKey | None:
        return (await self.session.scalars(select(ApiKey).where(ApiKey.prefix == prefix))).one_or_none()

    async def page(self, *, limit: int, cursor: str | None) -> tuple[list[ApiKey], str | None]:
        return await fetch_page(self.session, select(ApiKey), self.by_id, limit=limit, cursor=cursor)
