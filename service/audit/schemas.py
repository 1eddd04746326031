from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from service.pagination import Page
from service.schemas import Output


class AuditEvent(Output):
    id: UUID
    occurred_at: datetime
    principal_id: str
    request_id: str | None
    entity: str
    entity_id: str
    action: str
    changes: dict[str, Any]


class AuditEventPage(Page[AuditEvent]):
    """A page of audit events, newest first; `next_cursor` is null on the last page."""

    # Named again: the OpenAPI generator does not resolve the generic base.
    items: list[AuditEvent]
