from __future__ import annotations

import enum
from datetime import date, datetime
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import EntityBase, NaturalKeyBase, enum_type


class CertificationState(enum.StrEnum):
    """What people decided; the status shown is computed from this and the dates."""

    ACTIVE = "active"
    SUSPENDED = "suspended"  # e.g. the sticker removed pending review; may be reinstated
    REVOKED = "revoked"  # final


class CertificationStatus(enum.StrEnum):
    ACTIVE = "active"
    FOLLOW_UP_DUE = "follow_up_due"  # the renewal window is open
    IN_GRACE = "in_grace"  # past valid_until, before the grace period ends
    LAPSED = "lapsed"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


class Certification(EntityBase):
    """One organization's certification: a chain of periods (see CertificationPeriod). The dates
    of the newest period are copied here so lists filter by status in SQL."""

    __tablename__ = "certification"

    organization_id: Mapped[UUID] = mapped_column(ForeignKey("organization.id"), unique=True)
    # Sequential: the number on the documents and the index in the published status lists.
    serial: Mapped[int] = mapped_column(Integer, unique=True)
    number: Mapped[str] = mapped_column(String(30), unique=True)
    sticker_serial: Mapped[str] = mapped_column(String(30), unique=True)
    # What the sticker's QR code carries: unguessable, so the list of certified shops cannot be walked.
    verify_code: Mapped[str] = mapped_column(String(40), unique=True)
    municipality_code: Mapped[str] = mapped_column(ForeignKey("municipality.code"), index=True)
    state: Mapped[CertificationState] = mapped_column(
        enum_type(CertificationState), default=CertificationState.ACTIVE
    )
    state_reason: Mapped[str | None] = mapped_column(String(500))
    state_changed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    issued_on: Mapped[date] = mapped_column(Date)
    # The newest period.
    valid_from: Mapped[date] = mapped_column(Date)
    window_opens: Mapped[date] = mapped_column(Date, index=True)
    valid_until: Mapped[date] = mapped_column(Date, index=True)
    grace_until: Mapped[date] = mapped_column(Date, index=True)


class PeriodKind(enum.StrEnum):
    ISSUED = "issued"  # from a collaboration (or workplace) meeting
    RENEWED = "renewed"  # from a follow-up meeting inside the renewal window
    REISSUED = "reissued"  # a lapsed certification earned again at a collaboration meeting


class CertificationPeriod(EntityBase):
    __tablename__ = "certification_period"

    certification_id: Mapped[UUID] = mapped_column(
        ForeignKey("certification.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[PeriodKind] = mapped_column(enum_type(PeriodKind))
    valid_from: Mapped[date] = mapped_column(Date)
    window_opens: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    grace_until: Mapped[date] = mapped_column(Date)
    # The meeting that earned it (none when a coordinator issued it by hand without one).
    meeting_id: Mapped[UUID | None] = mapped_column(ForeignKey("meeting.id"))


class CertificationEvent(EntityBase):
    """The history: every change, decided (issued, suspended…) or come with time (due, lapsed)."""

    __tablename__ = "certification_event"

    certification_id: Mapped[UUID] = mapped_column(
        ForeignKey("certification.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(30))
    status: Mapped[CertificationStatus] = mapped_column(enum_type(CertificationStatus))
    reason: Mapped[str | None] = mapped_column(String(500))
    occurred_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    principal_id: Mapped[str] = mapped_column(String(200))


class CertificationNotice(NaturalKeyBase):
    """A status that came with time, noticed once per period (so `notify` never repeats itself)."""

    __tablename__ = "certification_notice"

    certification_id: Mapped[UUID] = mapped_column(
        ForeignKey("certification.id", ondelete="CASCADE"), primary_key=True
    )
    period_id: Mapped[UUID] = mapped_column(
        ForeignKey("certification_period.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[CertificationStatus] = mapped_column(enum_type(CertificationStatus), primary_key=True)
    noticed_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
