"""Every model, imported once so the metadata is complete (Alembic and tests use this)."""

from service.api_keys.models import ApiKey
from service.audit import recorder as _recorder  # noqa: F401  (registers the audit flush listener)
from service.audit.models import AuditEvent
from service.certifications.models import (
    Certification,
    CertificationEvent,
    CertificationNotice,
    CertificationPeriod,
)
from service.db import metadata
from service.geography.models import County, Municipality
from service.idempotency.models import IdempotencyRecord
from service.meetings.models import (
    ChecklistItem,
    Invitation,
    Meeting,
    MeetingInstructor,
    Registration,
    Reminder,
    SurveyDispatch,
    SurveyResponse,
    SurveyTokenUse,
)
from service.networks.models import Network, NetworkCounty, NetworkMember
from service.organizations.models import Organization
from service.outbox.models import EmailHold, OutboxMessage
from service.participants.models import Employment, Participant, ParticipantRole
from service.registries.models import Carrier, CarrierPoint
from service.reports.models import MunicipalityDecision
from service.webhooks.models import WebhookEndpoint

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Carrier",
    "CarrierPoint",
    "Certification",
    "CertificationEvent",
    "CertificationNotice",
    "CertificationPeriod",
    "ChecklistItem",
    "County",
    "EmailHold",
    "Employment",
    "IdempotencyRecord",
    "Invitation",
    "Meeting",
    "MeetingInstructor",
    "Municipality",
    "MunicipalityDecision",
    "Network",
    "NetworkCounty",
    "NetworkMember",
    "Organization",
    "OutboxMessage",
    "Participant",
    "ParticipantRole",
    "Registration",
    "Reminder",
    "SurveyDispatch",
    "SurveyResponse",
    "SurveyTokenUse",
    "WebhookEndpoint",
    "metadata",
]
