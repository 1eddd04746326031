from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

import msgspec

from service.certifications.models import CertificationState, CertificationStatus, PeriodKind
from service.pagination import Page
from service.schemas import Input, Output

Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class CertificationIssue(Input):
    """Issue by hand (the coordinator's call) from a held collaboration or workplace meeting."""

    organization_id: UUID
    meeting_id: UUID


class Renewal(Input):
    """Renew from a held follow-up meeting the organization's staff attended, inside the window."""

    meeting_id: UUID


class StateChange(Input):
    reason: Reason


class Reinstate(Input):
    reason: Reason | None = None


class TrainedPerson(Output):
    participant_id: UUID
    name: str


class Certification(Output):
    id: UUID
    organization_id: UUID
    organization_name: str
    municipality_code: str
    number: str
    sticker_serial: str
    status: CertificationStatus
    state: CertificationState
    state_reason: str | None
    issued_on: date
    valid_from: date
    window_opens: date
    valid_until: date
    grace_until: date
    # Which of the organization's current staff attended a meeting of the method; none left means
    # the place needs training again (staff turnover is the method's weak spot).
    trained_staff: list[TrainedPerson]
    needs_training: bool
    verify_url: str
    created_at: datetime
    updated_at: datetime


class CertificationPage(Page[Certification]):
    """A page of certifications, by number."""

    # Named again: the OpenAPI generator does not resolve the generic base.
    items: list[Certification]


class Period(Output):
    id: UUID
    kind: PeriodKind
    valid_from: date
    window_opens: date
    valid_until: date
    grace_until: date
    meeting_id: UUID | None


class Event(Output):
    id: UUID
    kind: str
    status: CertificationStatus
    reason: str | None
    occurred_at: datetime
    principal_id: str


class History(Output):
    certification: Certification
    periods: list[Period]
    events: list[Event]


class Credential(Output):
    """The certification as a W3C Verifiable Credential (Open Badges 3.0), signed as a VC-JWT with
    the service's Ed25519 key (published at /.well-known/jwks.json)."""

    format: str
    credential: str


class Verification(Output):
    """What anyone may know from a sticker: no personal data."""

    status: CertificationStatus
    valid: bool
    organization_name: str
    municipality_name: str
    certification_number: str
    valid_until: date
    checked_at: datetime


class NotifyReport(Output):
    follow_up_due: int
    in_grace: int
    lapsed: int
    messages_queued: int
