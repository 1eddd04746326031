from __future__ import annotations

from datetime import datetime
from typing import Any

from advanced_alchemy.base import UUIDv7Base
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import utcnow


class AuditEvent(UUIDv7Base):
    """One change to one entity. Rows are never updated or deleted (triggers refuse it)."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_entity", "entity", "entity_id"),)

    occurred_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=utcnow, index=True)
    principal_id: Mapped[str] = mapped_column(String(100), index=True)
    request_id: Mapped[str | None] = mapped_column(String(100))
    entity: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(20), index=True)
    # {field: {"from": old, "to": new}}; personal values appear as "[redacted]".
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
