"""The request context every service call receives: session, principal, request id."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.principal import Principal


@dataclass(frozen=True, slots=True)
class Context:
    session: AsyncSession
    principal: Principal
    request_id: str = field(default_factory=lambda: uuid4().hex)
