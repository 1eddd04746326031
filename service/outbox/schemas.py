from __future__ import annotations

from datetime import datetime
from uuid import UUID

from service.outbox.models import Category, OutboxStatus
from service.pagination import Page
from service.schemas import Output


class OutboxMessage(Output):
    id: UUID
    category: Category
    recipient: str
    language: str
    subject: str
    message_id: str
    status: OutboxStatus
    attempts: int
    max_attempts: int
    next_attempt_at: datetime
    last_error: str | None
    sent_at: datetime | None
    created_at: datetime
    attachments: list[str]
    # Bodies only on the single-message view.
    text: str | None = None
    html: str | None = None


class OutboxPage(Page[OutboxMessage]):
    """A page of outbox messages, newest first; `next_cursor` is null on the last page."""

    # Named again: the OpenAPI generator does not resolve the generic base.
    items: list[OutboxMessage]
