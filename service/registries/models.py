from __future__ import annotations

import enum
from datetime import datetime
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db import EntityBase, enum_type


class Carrier(EntityBase):
    """A postal operator or logistics company whose registry lists pickup points."""

    __tablename__ = "carrier"

    code: Mapped[str] = mapped_column(String(30), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class PointStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # absent from a snapshot, or closed by a delta: kept, never deleted


class CarrierPoint(EntityBase):
    """One carrier's listing of a pickup point, linked to the organization (the physical shop)
    it belongs to; a shop listed by two carriers is one organization with two listings."""

    __tablename__ = "carrier_point"
    __table_args__ = (
        UniqueConstraint("carrier_id", "external_id", name="uq_carrier_point_external"),
        Index("ix_carrier_point_carrier_status", "carrier_id", "status"),
    )

    carrier_id: Mapped[UUID] = mapped_column(ForeignKey("carrier.id"))
    # The carrier's own identifier of the point (PostNord's servicePointId, Budbee's box id…).
    external_id: Mapped[str] = mapped_column(String(100))
    organization_id: Mapped[UUID] = mapped_column(ForeignKey("organization.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30), default="pickup_point")
    street_address: Mapped[str | None] = mapped_column(String(200))
    postal_code: Mapped[str | None] = mapped_column(String(5))
    city: Mapped[str | None] = mapped_column(String(100))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    opening_hours: Mapped[str | None] = mapped_column(Text)
    status: Mapped[PointStatus] = mapped_column(enum_type(PointStatus), default=PointStatus.OPEN)
    closed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    # A digest of the listed values: an unchanged row in a snapshot is recognised without comparing fields.
    content_hash: Mapped[str] = mapped_column(String(32))
