from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType

from service.audit.schemas import AuditEvent
from service.pagination import Page
from service.participants.models import Language, ParticipantRoleKind
from service.schemas import Input, Name, Output

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254, description="Unique regardless of case")]
Phone = Annotated[
    str,
    msgspec.Meta(max_length=30, description="E.164 (+46701234567); Swedish national notation is converted"),
]
Roles = Annotated[list[ParticipantRoleKind], msgspec.Meta(max_length=9)]


class ParticipantCreate(Input):
    name: Name
    email: Email
    phone: Phone | None = None
    language: Language = Language.SV
    organization_id: UUID | None = None
    roles: Roles = msgspec.field(default_factory=list)
    mailing_list_consent: bool = False
    listed_in_directory: bool = False
    instructor_qualified_on: date | None = None


class ParticipantUpdate(Input):
    """Merge patch. Setting `organization_id` ends the current employment and starts a new one;
    null ends it (the person left)."""

    name: Name | UnsetType = UNSET
    email: Email | UnsetType = UNSET
    phone: Phone | UnsetType | None = UNSET
    language: Language | UnsetType = UNSET
    organization_id: UUID | UnsetType | None = UNSET
    roles: Roles | UnsetType = UNSET
    mailing_list_consent: bool | UnsetType = UNSET
    listed_in_directory: bool | UnsetType = UNSET
    instructor_qualified_on: date | UnsetType | None = UNSET


class Participant(Output):
    id: UUID
    name: str
    email: str
    phone: str | None
    language: Language
    organization_id: UUID | None
    roles: list[ParticipantRoleKind]
    mailing_list_consent: bool
    consent_changed_at: datetime | None
    listed_in_directory: bool
    instructor_qualified_on: date | None
    erased_at: datetime | None
    created_at: datetime
    updated_at: datetime


class Employment(Output):
    id: UUID
    organization_id: UUID
    organization_name: str
    started_at: datetime
    ended_at: datetime | None


class Membership(Output):
    id: UUID
    network_id: UUID
    network_name: str
    role: str
    organization_id: UUID | None
    joined_at: datetime
    left_at: datetime | None


class MeetingRegistration(Output):
    meeting_id: UUID
    meeting_title: str
    starts_at: datetime
    organization_id: UUID | None
    status: str
    attendance: str | None
    registered_at: datetime


class ParticipantExport(Output):
    """Everything TMN holds about one person (GDPR art. 15). Survey answers are not here: they
    are kept without any link to the person, so they cannot be found (nor exported) by person."""

    exported_at: datetime
    participant: Participant
    employments: list[Employment]
    memberships: list[Membership]
    meeting_registrations: list[MeetingRegistration]
    audit_events: list[AuditEvent]


class ParticipantPage(Page[Participant]):
    """A page of participants; `next_cursor` is null on the last page."""

    # Named again: the OpenAPI generator does not resolve the generic base.
    items: list[Participant]
