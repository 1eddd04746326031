"""The request context every service call receives: session, principal, request id, clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.principal import Principal
from service.db import utcnow


@dataclass(frozen=True, slots=True)
class Context:
    session: AsyncSession
    principal: Principal
    request_id: str = field(default_factory=lambda: uuid4().hex)
    # What time it is for rules that depend on it (meetings, reminders, offers); tests inject one.
    clock: Callable[[], datetime] = utcnow
