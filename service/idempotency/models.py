from __future__ import annotations

from datetime import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db import EntityBase


class IdempotencyRecord(EntityBase):
    """The first answer to a request made with an Idempotency-Key, kept for replays."""

    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("principal_id", "key", name="uq_idempotency_record_principal_key"),)

    principal_id: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    # sha256 of method, path and the decoded body re-encoded canonically.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    location: Mapped[str | None] = mapped_column(String(1000))
    etag: Mapped[str | None] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
