from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import EntityBase, NaturalKeyBase, enum_type, utcnow


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its next attempt
    SENT = "sent"
    DEAD = "dead"  # attempts used up, or permanently rejected; an administrator may retry it
    HELD = "held"  # its address is on hold after a permanent rejection


class Category(enum.StrEnum):
    TRANSACTIONAL = "transactional"  # something the person asked for (an invitation, a certificate)
    MAILING = "mailing"  # a network mailing: needs consent, carries one-click unsubscribe


class OutboxMessage(EntityBase):
    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_message_due", "status", "next_attempt_at"),)

    kind: Mapped[str] = mapped_column(String(20), default="email")
    category: Mapped[Category] = mapped_column(enum_type(Category))
    recipient: Mapped[str] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(2), default="sv")
    subject: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # [{"filename", "content_type", "content_b64"}]
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[OutboxStatus] = mapped_column(enum_type(OutboxStatus), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=utcnow)
    # A worker's claim: others skip the row until the lease runs out (a crashed worker's too).
    locked_until: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    locked_by: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # The W3C traceparent of the request that queued it, when tracing was on: the worker's
    # delivery span links to that trace (service/observability/tracing.py).
    trace_context: Mapped[str | None] = mapped_column(String(55))


class EmailHold(NaturalKeyBase):
    """An address that rejected mail permanently: nothing more is sent until a coordinator clears it."""

    __tablename__ = "email_hold"

    address: Mapped[str] = mapped_column(String(254), primary_key=True)
    reason: Mapped[str] = mapped_column(String(500))
    held_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=utcnow)
