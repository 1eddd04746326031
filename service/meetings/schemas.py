from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType

from service.meetings.models import (
    Attendance,
    InvitationStatus,
    MeetingKind,
    MeetingStatus,
    RegistrationStatus,
    ReminderAudience,
    ReminderStatus,
)
from service.pagination import Page
from service.schemas import Input, LongText, Name, Output

LocalTime = Annotated[
    datetime,
    msgspec.Meta(
        description="ISO 8601. Without an offset it is Europe/Stockholm local time (summer time "
        "included); answers always carry Stockholm's offset for that date."
    ),
]
Url = Annotated[str, msgspec.Meta(min_length=8, max_length=500, pattern=r"^https?://\S+$")]
Venue = Annotated[str, msgspec.Meta(min_length=1, max_length=300, description="Address of the venue")]
Agenda = Annotated[
    list[Annotated[str, msgspec.Meta(min_length=1, max_length=300)]], msgspec.Meta(max_length=30)
]
Capacity = Annotated[
    int, msgspec.Meta(ge=1, le=10000, description="Seats; further registrations wait in line")
]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Ids = Annotated[list[UUID], msgspec.Meta(max_length=500)]


class MeetingCreate(Input):
    network_id: UUID
    kind: MeetingKind
    title: Name
    starts_at: LocalTime
    ends_at: LocalTime
    venue: Venue | None = None
    online_url: Url | None = None
    capacity: Capacity | None = None
    agenda: Agenda = msgspec.field(default_factory=list)
    description: LongText | None = None
    registration_deadline: date | None = None
    coordinator_id: UUID | None = None
    instructor_ids: Ids = msgspec.field(default_factory=list)


class MeetingUpdate(Input):
    """Merge patch. Once invitations are out, a change of time or place is sent to everyone invited
    (an updated calendar entry with a higher SEQUENCE)."""

    title: Name | UnsetType = UNSET
    starts_at: LocalTime | UnsetType = UNSET
    ends_at: LocalTime | UnsetType = UNSET
    venue: Venue | UnsetType | None = UNSET
    online_url: Url | UnsetType | None = UNSET
    capacity: Capacity | UnsetType | None = UNSET
    agenda: Agenda | UnsetType = UNSET
    description: LongText | UnsetType | None = UNSET
    registration_deadline: date | UnsetType | None = UNSET
    coordinator_id: UUID | UnsetType | None = UNSET
    instructor_ids: Ids | UnsetType = UNSET


class CancelMeeting(Input):
    reason: Reason | None = None


class Instructor(Output):
    participant_id: UUID
    name: str
    organization_id: UUID | None
    # police, customs or municipality (from the instructor's employer); null for others.
    represents: str | None


class InstructorListing(Output):
    """A qualified instructor a coordinator may book (no e-mail or phone: reach them through TMN)."""

    participant_id: UUID
    name: str
    organization_id: UUID | None
    organization_name: str | None
    county_code: str | None
    represents: str | None
    qualified_on: date


class Counts(Output):
    invited: int
    declined: int
    registered: int
    waitlisted: int
    attended: int
    no_show: int


class Progress(Output):
    done: int
    total: int


class Meeting(Output):
    id: UUID
    network_id: UUID
    kind: MeetingKind
    status: MeetingStatus
    title: str
    description: str | None
    starts_at: datetime
    ends_at: datetime
    timezone: str
    venue: str | None
    online_url: str | None
    capacity: int | None
    agenda: list[str]
    registration_deadline: date | None
    coordinator_id: UUID | None
    municipality_code: str | None
    instructors: list[Instructor]
    sequence: int
    invitations_sent_at: datetime | None
    held_at: datetime | None
    closed_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    minutes_distributed_at: datetime | None
    follow_up_of_id: UUID | None
    counts: Counts
    checklist: Progress
    # What this meeting may move to next (the lifecycle's allowed transitions).
    allowed_transitions: list[MeetingStatus]
    created_at: datetime
    updated_at: datetime


class MeetingPage(Page[Meeting]):
    """A page of meetings, soonest first; `next_cursor` is null on the last page."""

    # Named again: the OpenAPI generator does not resolve the generic base.
    items: list[Meeting]


class InvitationCreate(Input):
    """Whom to invite. `audience: "municipality"` invites every active pickup point, terminal and
    mail-carrier office of the meeting's municipality and the carriers' regional agent managers of
    its county; `"network"` invites every current member of the meeting's network. Add chosen
    organizations and people by id. Someone already invited is skipped, not invited twice."""

    audience: Literal["municipality", "network"] | None = None
    organization_ids: Ids = msgspec.field(default_factory=list)
    participant_ids: Ids = msgspec.field(default_factory=list)


class Invitation(Output):
    id: UUID
    meeting_id: UUID
    organization_id: UUID | None
    organization_name: str | None
    participant_id: UUID | None
    email: str | None
    status: InvitationStatus
    sent_at: datetime | None
    responded_at: datetime | None


class Skipped(Output):
    reason: str
    organization_id: UUID | None = None
    participant_id: UUID | None = None


class InvitationReport(Output):
    created: list[Invitation]
    skipped: list[Skipped]


class InvitationPage(Page[Invitation]):
    """A page of invitations."""

    # Named again: the OpenAPI generator does not resolve the generic base.
    items: list[Invitation]


class Registration(Output):
    id: UUID
    meeting_id: UUID
    participant_id: UUID
    participant_name: str
    organization_id: UUID | None
    organization_name: str | None
    invitation_id: UUID | None
    status: RegistrationStatus
    offer_expires_at: datetime | None
    attendance: Attendance | None
    attendance_recorded_at: datetime | None
    created_at: datetime


class RegistrationPage(Page[Registration]):
    """A page of registrations, in the order they came in (the waitlist's order)."""

    # Named again: the OpenAPI generator does not resolve the generic base.
    items: list[Registration]


class AttendanceRecord(Input):
    """Record whether a person came. A person without a registration (a walk-in) gets one."""

    participant_id: UUID
    attendance: Attendance
    # The organization they represented; defaults to their registration's, then their employer.
    organization_id: UUID | None = None


class CheckIn(Input):
    code: Annotated[str, msgspec.Meta(min_length=10, max_length=100, description="From the QR code")]


class ReminderCreate(Input):
    minutes_before: Annotated[int, msgspec.Meta(ge=5, le=60 * 24 * 60, description="Before the start")]
    audience: ReminderAudience


class Reminder(Output):
    id: UUID
    meeting_id: UUID
    minutes_before: int
    audience: ReminderAudience
    due_at: datetime
    status: ReminderStatus
    sent_at: datetime | None
    recipients: int


class ChecklistItem(Output):
    key: str
    label: str
    label_en: str
    automatic: bool
    # False for what is recommended rather than required (a customs instructor).
    required: bool
    done: bool
    done_at: datetime | None
    done_by: str | None


class Checklist(Output):
    meeting_id: UUID
    progress: Progress
    items: list[ChecklistItem]


class ChecklistTick(Input):
    done: bool


class Minutes(Input):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=100_000, description="Markdown")]


class MinutesOut(Output):
    meeting_id: UUID
    text: str | None
    updated_at: datetime | None
    distributed_at: datetime | None


class Distribution(Output):
    queued: int
    attendees: int
    mailing_list: int


class SurveyDispatchReport(Output):
    queued: int


# --- public, through a link -------------------------------------------------------------------


class PersonIn(Input):
    name: Name
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    # Consent to stay on the local network's mailing list (needed for certification).
    mailing_list_consent: bool = False


class RegistrationRequest(Input):
    people: Annotated[list[PersonIn], msgspec.Meta(min_length=1, max_length=20)]


class Decline(Input):
    reason: Reason | None = None


class PublicRegistration(Output):
    id: UUID
    name: str
    status: RegistrationStatus
    offer_expires_at: datetime | None
    # Place in the waiting line (1 is next), for waitlisted people.
    waitlist_position: int | None


class PublicInvitation(Output):
    """What the link shows the invited: the meeting, and the staff they registered."""

    meeting_title: str
    meeting_kind: MeetingKind
    meeting_status: MeetingStatus
    starts_at: datetime
    ends_at: datetime
    venue: str | None
    online_url: str | None
    agenda: list[str]
    registration_deadline: date | None
    organization_name: str | None
    status: InvitationStatus
    seats_left: int | None
    registrations: list[PublicRegistration]
    expires_at: datetime


class RegistrationOutcome(Output):
    registrations: list[PublicRegistration]


class SurveyQuestion(Output):
    key: str
    text: str
    text_en: str


class PublicSurvey(Output):
    meeting_title: str
    held_on: date
    respondent: str
    scale: str
    questions: list[SurveyQuestion]


class SurveyAnswer(Input):
    answers: Annotated[
        dict[Annotated[str, msgspec.Meta(max_length=50)], Annotated[int, msgspec.Meta(ge=1, le=5)]],
        msgspec.Meta(min_length=1, max_length=20, description="Question key to 1 (disagree) … 5 (agree)"),
    ]


class QuestionResult(Output):
    key: str
    text: str
    responses: int
    mean: float | None
    # How many answered 1, 2, 3, 4, 5.
    distribution: list[int]


class SurveyResults(Output):
    """Anonymous results: counts and means, never single answers tied to anyone."""

    meetings: int
    responses: int
    questions: list[QuestionResult]
    by_month: list[MonthResult]


class MonthResult(Output):
    month: str
    responses: int
    mean: float | None
