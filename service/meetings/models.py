from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db import EntityBase, NaturalKeyBase, enum_type
from service.networks.models import NetworkKind, NetworkLevel


class MeetingKind(enum.StrEnum):
    INSTRUCTOR_TRAINING = "instructor_training"
    LOCAL_WORKING_GROUP = "local_working_group"
    COLLABORATION_MEETING = "collaboration_meeting"
    WORKPLACE_MEETING = "workplace_meeting"
    FOLLOW_UP_MEETING = "follow_up_meeting"
    COUNTY_GROUP = "county_group"
    REGIONAL_MANAGEMENT_GROUP = "regional_management_group"
    REGIONAL_CONFERENCE = "regional_conference"


# Where each kind of meeting may be held: the level of its network, and for the groups that are
# networks themselves, the network's kind (a county group meets in the county group network).
LEVELS_OF_KIND: dict[MeetingKind, frozenset[NetworkLevel]] = {
    MeetingKind.INSTRUCTOR_TRAINING: frozenset({NetworkLevel.REGIONAL}),
    MeetingKind.LOCAL_WORKING_GROUP: frozenset({NetworkLevel.LOCAL}),
    MeetingKind.COLLABORATION_MEETING: frozenset({NetworkLevel.LOCAL}),
    MeetingKind.WORKPLACE_MEETING: frozenset({NetworkLevel.LOCAL}),
    MeetingKind.FOLLOW_UP_MEETING: frozenset({NetworkLevel.LOCAL}),
    MeetingKind.COUNTY_GROUP: frozenset({NetworkLevel.REGIONAL}),
    MeetingKind.REGIONAL_MANAGEMENT_GROUP: frozenset({NetworkLevel.REGIONAL}),
    MeetingKind.REGIONAL_CONFERENCE: frozenset({NetworkLevel.REGIONAL, NetworkLevel.NATIONAL}),
}
NETWORK_KIND_OF: dict[MeetingKind, NetworkKind] = {
    MeetingKind.LOCAL_WORKING_GROUP: NetworkKind.LOCAL_WORKING_GROUP,
    MeetingKind.COUNTY_GROUP: NetworkKind.COUNTY_GROUP,
    MeetingKind.REGIONAL_MANAGEMENT_GROUP: NetworkKind.REGIONAL_MANAGEMENT_GROUP,
}
# Meetings with pickup points: their staff register, attend and may be certified.
PICKUP_POINT_MEETINGS = frozenset(
    {MeetingKind.COLLABORATION_MEETING, MeetingKind.WORKPLACE_MEETING, MeetingKind.FOLLOW_UP_MEETING}
)


class MeetingStatus(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    INVITATIONS_SENT = "invitations_sent"
    HELD = "held"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class Meeting(EntityBase):
    __tablename__ = "meeting"
    __table_args__ = (Index("ix_meeting_municipality_starts", "municipality_code", "starts_at"),)

    network_id: Mapped[UUID] = mapped_column(ForeignKey("network.id"), index=True)
    kind: Mapped[MeetingKind] = mapped_column(enum_type(MeetingKind))
    status: Mapped[MeetingStatus] = mapped_column(enum_type(MeetingStatus), default=MeetingStatus.DRAFT)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(4000))
    # Stored in UTC; shown and entered in Europe/Stockholm local time.
    starts_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    ends_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    venue: Mapped[str | None] = mapped_column(String(300))
    online_url: Mapped[str | None] = mapped_column(String(500))
    capacity: Mapped[int | None] = mapped_column(Integer)
    agenda: Mapped[list[str]] = mapped_column(JSON, default=list)
    registration_deadline: Mapped[date | None] = mapped_column(Date)
    # The person invitations name as the one to ask (the municipal coordinator, usually).
    coordinator_id: Mapped[UUID | None] = mapped_column(ForeignKey("participant.id"))
    # Copied from the network (local meetings) so reports and feeds need no join.
    municipality_code: Mapped[str | None] = mapped_column(ForeignKey("municipality.code"))
    # iCalendar SEQUENCE: raised whenever a change is sent to the invited (RFC 5546).
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    invitations_sent_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    held_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    cancel_reason: Mapped[str | None] = mapped_column(String(500))
    minutes: Mapped[str | None] = mapped_column(Text)
    minutes_updated_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    minutes_distributed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    surveys_sent_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # A follow-up meeting proposed from a held collaboration meeting points back at it.
    follow_up_of_id: Mapped[UUID | None] = mapped_column(ForeignKey("meeting.id"), index=True)

    instructors: Mapped[list[MeetingInstructor]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="MeetingInstructor.participant_id"
    )


class MeetingInstructor(NaturalKeyBase):
    __tablename__ = "meeting_instructor"

    meeting_id: Mapped[UUID] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"), primary_key=True)
    participant_id: Mapped[UUID] = mapped_column(ForeignKey("participant.id"), primary_key=True, index=True)


class InvitationStatus(enum.StrEnum):
    PENDING = "pending"  # created, not sent yet (a draft meeting, or a recipient added late)
    SENT = "sent"
    REGISTERED = "registered"  # at least one person registered through the link
    DECLINED = "declined"
    UNREACHABLE = "unreachable"  # no e-mail address to send it to


class Invitation(EntityBase):
    """An invitation to an organization (its e-mail) or a person; its link acts without an account."""

    __tablename__ = "meeting_invitation"
    __table_args__ = (
        Index(
            "uq_invitation_organization",
            "meeting_id",
            "organization_id",
            unique=True,
            postgresql_where=text("participant_id IS NULL"),
            sqlite_where=text("participant_id IS NULL"),
        ),
        Index(
            "uq_invitation_participant",
            "meeting_id",
            "participant_id",
            unique=True,
            postgresql_where=text("participant_id IS NOT NULL"),
            sqlite_where=text("participant_id IS NOT NULL"),
        ),
    )

    meeting_id: Mapped[UUID] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[UUID | None] = mapped_column(ForeignKey("organization.id"), index=True)
    participant_id: Mapped[UUID | None] = mapped_column(ForeignKey("participant.id"), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    status: Mapped[InvitationStatus] = mapped_column(
        enum_type(InvitationStatus), default=InvitationStatus.PENDING
    )
    sent_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    responded_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    decline_reason: Mapped[str | None] = mapped_column(String(500))


class RegistrationStatus(enum.StrEnum):
    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    OFFERED = "offered"  # a freed seat offered to this person until offer_expires_at
    CANCELLED = "cancelled"


class Attendance(enum.StrEnum):
    ATTENDED = "attended"
    NO_SHOW = "no_show"


class Registration(EntityBase):
    """A person's seat (or place in line) at a meeting, and afterwards whether they came."""

    __tablename__ = "meeting_registration"
    __table_args__ = (
        Index(
            "uq_registration_active",
            "meeting_id",
            "participant_id",
            unique=True,
            postgresql_where=text("status <> 'cancelled'"),
            sqlite_where=text("status <> 'cancelled'"),
        ),
        Index("ix_registration_meeting_status", "meeting_id", "status"),
    )

    meeting_id: Mapped[UUID] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"))
    participant_id: Mapped[UUID] = mapped_column(ForeignKey("participant.id"), index=True)
    # The organization the person represents at this meeting (their employer when registered).
    organization_id: Mapped[UUID | None] = mapped_column(ForeignKey("organization.id"), index=True)
    invitation_id: Mapped[UUID | None] = mapped_column(ForeignKey("meeting_invitation.id"), index=True)
    status: Mapped[RegistrationStatus] = mapped_column(enum_type(RegistrationStatus))
    offer_expires_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # Shown as a QR code in the confirmation; unguessable, unique.
    checkin_code: Mapped[str] = mapped_column(String(40), unique=True)
    attendance: Mapped[Attendance | None] = mapped_column(enum_type(Attendance))
    attendance_recorded_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class ReminderAudience(enum.StrEnum):
    REGISTERED = "registered"  # people with a seat
    NOT_ANSWERED = "not_answered"  # invitations nobody registered for or declined
    INSTRUCTORS = "instructors"


class ReminderStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    SKIPPED = "skipped"  # its time came after the meeting started, or the meeting was cancelled


class Reminder(EntityBase):
    """A reminder is data: when (minutes before the start) and to whom; sent once at most."""

    __tablename__ = "meeting_reminder"

    meeting_id: Mapped[UUID] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"), index=True)
    minutes_before: Mapped[int] = mapped_column(Integer)
    audience: Mapped[ReminderAudience] = mapped_column(enum_type(ReminderAudience))
    status: Mapped[ReminderStatus] = mapped_column(
        enum_type(ReminderStatus), default=ReminderStatus.PENDING, index=True
    )
    sent_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    recipients: Mapped[int] = mapped_column(Integer, default=0)


class ChecklistItem(NaturalKeyBase):
    """One line of the coordinator's checklist (appendix 3), made from the kind's template when
    the meeting is scheduled. Automatic items are ticked from the data when read."""

    __tablename__ = "meeting_checklist_item"

    meeting_id: Mapped[UUID] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    required: Mapped[bool] = mapped_column(Boolean, default=True)
    done_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    done_by: Mapped[str | None] = mapped_column(String(200))


class SurveyDispatch(NaturalKeyBase):
    """Who was sent a survey link for a meeting (so nobody gets two); says nothing of answers."""

    __tablename__ = "meeting_survey_dispatch"

    meeting_id: Mapped[UUID] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"), primary_key=True)
    participant_id: Mapped[UUID] = mapped_column(ForeignKey("participant.id"), primary_key=True)


class SurveyTokenUse(NaturalKeyBase):
    """A survey link that was used: a hash of its nonce, nothing else (no time, no person)."""

    __tablename__ = "meeting_survey_token_use"

    nonce_hash: Mapped[str] = mapped_column(String(64), primary_key=True)


class SurveyResponse(NaturalKeyBase):
    """Anonymous answers: a random key, the day, and no link to a person or a token."""

    __tablename__ = "meeting_survey_response"

    id: Mapped[UUID] = mapped_column(GUID, primary_key=True, default=uuid4)
    meeting_id: Mapped[UUID] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"), index=True)
    respondent: Mapped[str] = mapped_column(String(20))
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    submitted_on: Mapped[date] = mapped_column(Date)
