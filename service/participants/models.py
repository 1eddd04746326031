from __future__ import annotations

import enum
from datetime import date, datetime
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Boolean, Date, ForeignKey, Index, String, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db import EntityBase, NaturalKeyBase, enum_type, utcnow


class ParticipantRoleKind(enum.StrEnum):
    MUNICIPAL_COORDINATOR = "municipal_coordinator"
    COUNTY_ANDT_COORDINATOR = "county_andt_coordinator"
    POLICE_OFFICER = "police_officer"
    CUSTOMS_OFFICER = "customs_officer"
    INSTRUCTOR = "instructor"
    PICKUP_POINT_STAFF = "pickup_point_staff"
    TERMINAL_STAFF = "terminal_staff"
    MAIL_CARRIER_STAFF = "mail_carrier_staff"
    REGIONAL_AGENT_MANAGER = "regional_agent_manager"


class Language(enum.StrEnum):
    SV = "sv"
    EN = "en"


class Participant(EntityBase):
    __tablename__ = "participant"

    name: Mapped[str] = mapped_column(String(200), index=True)
    email: Mapped[str] = mapped_column(String(254))
    # Lower-cased copy: e-mail addresses are unique regardless of case.
    email_normalized: Mapped[str] = mapped_column(String(254), unique=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    language: Mapped[Language] = mapped_column(enum_type(Language), default=Language.SV)
    # The current employer, kept in step with the open Employment row (history lives there).
    organization_id: Mapped[UUID | None] = mapped_column(ForeignKey("organization.id"), index=True)
    mailing_list_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_changed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # Consent to appear (name, role, e-mail, phone) in the municipality's contact directory.
    listed_in_directory: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Instructor qualification: the day of the instructor training the person attended (set from
    # that meeting's attendance when it closes, or recorded by hand for trainings before TMN).
    instructor_qualified_on: Mapped[date | None] = mapped_column(Date)
    # Set when the person was erased (GDPR): name, e-mail and phone are gone, the row stays so
    # attendance and memberships still count.
    erased_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))

    roles: Mapped[list[ParticipantRole]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="ParticipantRole.role"
    )


class ParticipantRole(NaturalKeyBase):
    __tablename__ = "participant_role"

    participant_id: Mapped[UUID] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[ParticipantRoleKind] = mapped_column(enum_type(ParticipantRoleKind), primary_key=True)


class Employment(EntityBase):
    """A participant's time at an organization; ended, never deleted, when they leave."""

    __tablename__ = "employment"
    __table_args__ = (
        # At most one open employment per person.
        Index(
            "uq_employment_open",
            "participant_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
            sqlite_where=text("ended_at IS NULL"),
        ),
    )

    participant_id: Mapped[UUID] = mapped_column(ForeignKey("participant.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[UUID] = mapped_column(ForeignKey("organization.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
