"""The authorization matrix: every operation of the OpenAPI document × every role × own and
foreign scope, against an explicit table of expected answers (EXPECTED, below).

An operation missing from EXPECTED fails the build, so a new endpoint needs a rule here.
Own scope is Älvsbyn (2560, county 25); foreign is Stockholm (0180, county 01); for the carriers'
push operations, own is the carrier key's carrier (postnord) and foreign another (dhl). Besides the
status code, the matrix checks that lists show the caller's own objects and that no answer a
scoped role gets about the foreign world names anything in it (existence does not leak).

Meetings follow the app's clock (client.app.state.clock): the world is built at EARLY and the
matrix runs at NOW, when some meetings have started (attendance, hold) and others are ahead
(registration through a link, cancellations).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest
from sqlalchemy import select

from service.certifications.models import Certification, CertificationPeriod, CertificationState, PeriodKind
from service.db import utcnow
from service.meetings import tokens
from service.meetings.models import Registration
from service.organizations.models import Organization, OrganizationKind
from service.outbox.models import EmailHold, OutboxStatus
from service.outbox.service import OutboxService
from service.pluginspec import DomainEvent
from service.registries.models import Carrier, CarrierPoint
from service.registries.schemas import PointIn
from service.registries.sync import digest
from service.signing import sign
from service.webhooks.service import WebhookService
from tests.helpers import context, pickup_point, problem
from tests.meeting_helpers import Clock

# The roles under test and the scope of each one's key.
ROLES: dict[str, dict[str, str]] = {
    "national_admin": {},
    "county_coordinator": {"county_code": "25"},
    "municipal_coordinator": {"municipality_code": "2560"},
    "instructor": {"county_code": "25"},
    "carrier_integration": {"carrier": "postnord"},
    "viewer": {"county_code": "25"},
    "auditor": {},
}
NATIONWIDE = {"national_admin", "auditor"}
CARRIER = "carrier_integration"
POSTNORD = ROLES[CARRIER]["carrier"]

Answers = tuple[int, int]  # (own scope, foreign scope)
Rule = dict[str, Answers]  # role -> answers


def row(
    admin: Answers,
    county: Answers,
    municipal: Answers,
    instructor: Answers,
    carrier: Answers,
    viewer: Answers,
    auditor: Answers,
) -> Rule:
    """One line of the table, a column per role in the order of ROLES."""
    answers = (admin, county, municipal, instructor, carrier, viewer, auditor)
    return dict(zip(ROLES, answers, strict=True))


OK, CREATED, NO_CONTENT, ACCEPTED = (200, 200), (201, 201), (204, 204), (202, 202)
DENY = (403, 403)  # the role lacks the route's permission: the guard answers first
HIDDEN = (200, 404)  # visible in the caller's scope, does not exist for them elsewhere
NONE_VISIBLE = (404, 404)  # a carrier integration sees only the shops its carrier lists


@dataclass(frozen=True)
class Public:
    """No Authorization at all: the route is open, or the signed token in its link is the authority."""

    status: int = 200


PUBLIC, PUBLIC_NO_CONTENT = Public(), Public(204)

# A request's body: JSON, or a JSON document as sent (a carrier's list of pickup points).
Body = dict[str, Any] | bytes | None


async def send(client: Any, method: str, path: str, body: Body) -> Any:
    if isinstance(body, bytes):
        return await client.request(method, path, content=body, headers={"Content-Type": "application/json"})
    return await client.request(method, path, json=body)


# Columns: row(national_admin, county_coordinator, municipal_coordinator, instructor,
#              carrier_integration, viewer, auditor); each cell is (own scope, foreign scope).
GEOGRAPHY = row(OK, OK, OK, OK, OK, OK, DENY)  # reference data: not scoped
ORG_LIST = row(OK, OK, OK, OK, OK, OK, DENY)  # scope narrows the rows, never the status
ORG_ONE = row(OK, HIDDEN, HIDDEN, HIDDEN, NONE_VISIBLE, HIDDEN, DENY)
ORG_CREATE = row(CREATED, (201, 403), (201, 403), DENY, DENY, DENY, DENY)
ORG_CHANGE = row(OK, HIDDEN, HIDDEN, DENY, DENY, DENY, DENY)
NET_LIST = row(OK, OK, OK, OK, DENY, OK, DENY)
NET_ONE = row(OK, HIDDEN, HIDDEN, HIDDEN, DENY, HIDDEN, DENY)
NET_CREATE = row(CREATED, (201, 403), (201, 403), DENY, DENY, DENY, DENY)
NET_CHANGE = row(OK, HIDDEN, HIDDEN, DENY, DENY, DENY, DENY)
# Adding to a foreign network: the network does not exist for the caller.
MEMBER_ADD = row(CREATED, (201, 404), (201, 404), DENY, DENY, DENY, DENY)
MEMBER_END = row(NO_CONTENT, (204, 404), (204, 404), DENY, DENY, DENY, DENY)
PART_LIST = row(OK, OK, OK, DENY, DENY, OK, DENY)
PART_ONE = row(OK, HIDDEN, HIDDEN, DENY, DENY, HIDDEN, DENY)
# A foreign employer does not exist for the caller, so organization_id is a field error (422),
# the same answer as for an organization that does not exist at all.
PART_CREATE = row(CREATED, (201, 422), (201, 422), DENY, DENY, DENY, DENY)
PART_CHANGE = row(OK, HIDDEN, HIDDEN, DENY, DENY, DENY, DENY)  # also export and erase (GDPR)
ADMIN_ONLY = row(OK, DENY, DENY, DENY, DENY, DENY, DENY)  # keys are not scoped
KEY_CREATE = row(CREATED, DENY, DENY, DENY, DENY, DENY, DENY)
AUDIT = row(OK, DENY, DENY, DENY, DENY, DENY, OK)
HOLD_LIST = row(OK, OK, OK, DENY, DENY, DENY, DENY)
HOLD_CLEAR = row(NO_CONTENT, (204, 404), (204, 404), DENY, DENY, DENY, DENY)
HOOK_LIST = row(OK, OK, OK, DENY, DENY, DENY, DENY)
HOOK_CREATE = row(CREATED, (201, 403), (201, 403), DENY, DENY, DENY, DENY)
HOOK_ONE = row(OK, HIDDEN, HIDDEN, DENY, DENY, DENY, DENY)
HOOK_REPLAY = row(ACCEPTED, (202, 404), (202, 404), DENY, DENY, DENY, DENY)
# Meetings are seen through their network: whoever sees the network sees its meetings, and a
# change needs authority to change the network (a foreign one does not exist for the caller).
MEET_LIST = row(OK, OK, OK, OK, DENY, OK, DENY)  # also feeds and survey results: scope narrows rows
MEET_ONE = row(OK, HIDDEN, HIDDEN, HIDDEN, DENY, HIDDEN, DENY)
# A foreign network does not exist for the caller, so network_id is a field error (as PART_CREATE).
MEET_CREATE = row(CREATED, (201, 422), (201, 422), DENY, DENY, DENY, DENY)
MEET_CHANGE = row(OK, HIDDEN, HIDDEN, DENY, DENY, DENY, DENY)
MEET_ADD = row(CREATED, (201, 404), (201, 404), DENY, DENY, DENY, DENY)
MEET_REMOVE = row(NO_CONTENT, (204, 404), (204, 404), DENY, DENY, DENY, DENY)
# Instructors check people in at meetings in their scope (meetings:attendance); viewers only read.
ATTENDANCE = row(OK, HIDDEN, HIDDEN, HIDDEN, DENY, DENY, DENY)

# Certifications lie where their organization is. Issuing and renewing are checked against the
# held working-group meeting, which earns nothing: allowed roles get the field error (422), a
# foreign certification does not exist for them (404).
CERT_LIST = row(OK, OK, OK, OK, DENY, OK, DENY)
CERT_ONE = row(OK, HIDDEN, HIDDEN, HIDDEN, DENY, HIDDEN, DENY)
CERT_ISSUE = row((422, 422), (422, 422), (422, 422), DENY, DENY, DENY, DENY)
CERT_RENEW = row((422, 422), (422, 404), (422, 404), DENY, DENY, DENY, DENY)
CERT_CHANGE = row(OK, HIDDEN, HIDDEN, DENY, DENY, DENY, DENY)

# Carriers' lists of pickup points. Only a carrier's own integration key sends its list; everyone
# else is refused, the national administrator too. Own scope is the key's carrier (postnord),
# foreign another carrier (dhl): see Place.carrier.
PUSH = row(DENY, DENY, DENY, DENY, (200, 403), DENY, DENY)
PUSH_CLOSE = row(DENY, DENY, DENY, DENY, (204, 403), DENY, DENY)
# Pickup points are organizations: scoped by place, and for a carrier integration by its listings,
# wherever they are (a postnord-listed shop in each place).
PICKUP_ONE = row(OK, HIDDEN, HIDDEN, HIDDEN, OK, HIDDEN, DENY)
PICKUP_SPLIT = row(CREATED, (201, 404), (201, 404), DENY, DENY, DENY, DENY)

# Reports hold the places in the caller's scope: a foreign municipality asked for by name does not
# exist for them; roll-ups of a foreign county hold no group. Decisions (step 1) lie in their
# municipality; coordinators record them, instructors and viewers read them.
REPORT_ONE = row(OK, HIDDEN, HIDDEN, HIDDEN, DENY, HIDDEN, DENY)
REPORT_ROLLUP = row(OK, OK, OK, OK, DENY, OK, DENY)
DECISION_WRITE = row(OK, HIDDEN, HIDDEN, DENY, DENY, DENY, DENY)
DECISION_DELETE = row(NO_CONTENT, (204, 404), (204, 404), DENY, DENY, DENY, DENY)

EXPECTED: dict[str, Rule | Public] = {
    "HealthLiveLive": PUBLIC,
    "HealthReadyReady": PUBLIC,
    "ProblemsListProblemTypes": PUBLIC,
    "ProblemsSlugGetProblemType": PUBLIC,
    # The signed token in the link is the authority.
    "V1UnsubscribeTokenUnsubscribePage": PUBLIC,
    "V1UnsubscribeTokenUnsubscribeNow": PUBLIC,
    "V1CountiesListCounties": GEOGRAPHY,
    "V1CountiesCodeGetCounty": GEOGRAPHY,
    "V1MunicipalitiesListMunicipalities": GEOGRAPHY,
    "V1MunicipalitiesCodeGetMunicipality": GEOGRAPHY,
    # Contacts are for everyone at work in the method (directory:read); people appear only with
    # their consent, so they are not scoped.
    "V1MunicipalitiesCodeContactsMunicipalityContacts": GEOGRAPHY,
    "V1MunicipalitiesCodeContactsVcfMunicipalityContactsVcard": GEOGRAPHY,
    "V1OrganizationsListOrganizations": ORG_LIST,
    "V1OrganizationsOrganizationIdGetOrganization": ORG_ONE,
    "V1OrganizationsCreateOrganization": ORG_CREATE,
    "V1OrganizationsOrganizationIdUpdateOrganization": ORG_CHANGE,
    "V1OrganizationsOrganizationIdArchiveArchiveOrganization": ORG_CHANGE,
    "V1OrganizationsOrganizationIdRestoreRestoreOrganization": ORG_CHANGE,
    "V1NetworksListNetworks": NET_LIST,
    "V1NetworksNetworkIdGetNetwork": NET_ONE,
    "V1NetworksNetworkIdTreeGetTree": NET_ONE,
    "V1NetworksCreateNetwork": NET_CREATE,
    "V1NetworksNetworkIdUpdateNetwork": NET_CHANGE,
    "V1NetworksNetworkIdMembersListMembers": NET_ONE,
    "V1NetworksNetworkIdMembersMemberIdGetMember": NET_ONE,
    "V1NetworksNetworkIdMembersAddMember": MEMBER_ADD,
    "V1NetworksNetworkIdMembersMemberIdUpdateMember": NET_CHANGE,
    "V1NetworksNetworkIdMembersMemberIdEndMember": MEMBER_END,
    "V1ParticipantsListParticipants": PART_LIST,
    "V1ParticipantsParticipantIdGetParticipant": PART_ONE,
    "V1ParticipantsParticipantIdEmploymentsListEmployments": PART_ONE,
    "V1ParticipantsCreateParticipant": PART_CREATE,
    "V1ParticipantsParticipantIdUpdateParticipant": PART_CHANGE,
    "V1ParticipantsParticipantIdLeaveLeaveOrganization": PART_CHANGE,
    "V1ParticipantsParticipantIdExportExportParticipant": PART_CHANGE,
    "V1ParticipantsParticipantIdEraseEraseParticipant": PART_CHANGE,
    "V1ApiKeysListApiKeys": ADMIN_ONLY,
    "V1ApiKeysCreateApiKey": KEY_CREATE,
    "V1ApiKeysKeyIdGetApiKey": ADMIN_ONLY,
    "V1ApiKeysKeyIdRevokeRevokeApiKey": ADMIN_ONLY,
    "V1AuditEventsListAuditEvents": AUDIT,
    "V1OutboxListOutbox": ADMIN_ONLY,
    "V1OutboxMessageIdGetOutboxMessage": ADMIN_ONLY,
    "V1OutboxMessageIdRetryRetryOutboxMessage": ADMIN_ONLY,
    "V1PluginsListPlugins": ADMIN_ONLY,
    # Holds of people in the caller's scope (participants:write); others' do not exist for them.
    "V1EmailHoldsListEmailHolds": HOLD_LIST,
    "V1EmailHoldsAddressClearEmailHold": HOLD_CLEAR,
    "V1WebhooksListWebhooks": HOOK_LIST,
    "V1WebhooksCreateWebhook": HOOK_CREATE,
    "V1WebhooksWebhookIdGetWebhook": HOOK_ONE,
    "V1WebhooksWebhookIdUpdateWebhook": HOOK_ONE,
    "V1WebhooksWebhookIdRotateSecretRotateWebhookSecret": HOOK_ONE,
    "V1WebhooksWebhookIdEnableEnableWebhook": HOOK_ONE,
    "V1WebhooksWebhookIdDeliveriesListWebhookDeliveries": HOOK_ONE,
    "V1WebhooksWebhookIdDeliveriesDeliveryIdReplayReplayWebhookDelivery": HOOK_REPLAY,
    "V1MeetingsListMeetings": MEET_LIST,
    "V1MunicipalitiesCodeMeetingsIcsMunicipalityFeed": MEET_LIST,
    "V1SurveyResultsSurveyResults": MEET_LIST,
    "V1MeetingsMeetingIdGetMeeting": MEET_ONE,
    "V1MeetingsMeetingIdChecklistGetChecklist": MEET_ONE,
    "V1MeetingsMeetingIdInvitationsListInvitations": MEET_ONE,
    "V1MeetingsMeetingIdRegistrationsListRegistrations": MEET_ONE,
    "V1MeetingsMeetingIdRemindersListReminders": MEET_ONE,
    "V1MeetingsMeetingIdMinutesGetMinutes": MEET_ONE,
    "V1MeetingsMeetingIdSurveyResultsMeetingSurveyResults": MEET_ONE,
    "V1NetworksNetworkIdMeetingsIcsNetworkFeed": MEET_ONE,
    "V1MeetingsCreateMeeting": MEET_CREATE,
    "V1MeetingsMeetingIdUpdateMeeting": MEET_CHANGE,
    "V1MeetingsMeetingIdScheduleScheduleMeeting": MEET_CHANGE,
    "V1MeetingsMeetingIdSendInvitationsSendInvitations": MEET_CHANGE,
    "V1MeetingsMeetingIdHoldHoldMeeting": MEET_CHANGE,
    "V1MeetingsMeetingIdCloseCloseMeeting": MEET_CHANGE,
    "V1MeetingsMeetingIdCancelCancelMeeting": MEET_CHANGE,
    "V1MeetingsMeetingIdInvitationsInvite": MEET_CHANGE,
    "V1MeetingsMeetingIdChecklistKeyTickChecklistItem": MEET_CHANGE,
    "V1MeetingsMeetingIdMinutesWriteMinutes": MEET_CHANGE,
    "V1MeetingsMeetingIdMinutesDistributeDistributeMinutes": MEET_CHANGE,
    "V1MeetingsMeetingIdSurveysSendSendSurveys": MEET_CHANGE,
    "V1MeetingsMeetingIdRemindersAddReminder": MEET_ADD,
    "V1MeetingsMeetingIdRemindersReminderIdDeleteReminder": MEET_REMOVE,
    "V1MeetingsMeetingIdRegistrationsRegistrationIdCancelRegistration": MEET_REMOVE,
    "V1MeetingsMeetingIdAttendanceRecordAttendance": ATTENDANCE,
    "V1MeetingsMeetingIdCheckInsCheckIn": ATTENDANCE,
    # The links of meeting e-mails, for people without an account: the signed token is the
    # authority. Answering a survey has nothing to say back (204).
    "V1InvitationsTokenViewInvitation": PUBLIC,
    "V1InvitationsTokenRegistrationsRegisterThroughInvitation": PUBLIC,
    "V1InvitationsTokenDeclineDeclineInvitation": PUBLIC,
    "V1InvitationsTokenRegistrationsRegistrationIdCancelThroughInvitation": PUBLIC,
    "V1RegistrationsTokenViewRegistration": PUBLIC,
    "V1RegistrationsTokenCancelOwnRegistration": PUBLIC,
    "V1RegistrationsTokenAcceptAcceptOffer": PUBLIC,
    "V1SurveysTokenViewSurvey": PUBLIC,
    "V1SurveysTokenAnswerSurvey": PUBLIC_NO_CONTENT,
    "V1CertificationsListCertifications": CERT_LIST,
    # Qualified instructors of the caller's counties (a foreign county answers an empty list).
    "V1InstructorsListInstructors": MEET_LIST,
    "V1CertificationsCertificationIdGetCertification": CERT_ONE,
    "V1CertificationsCertificationIdHistoryCertificationHistory": CERT_ONE,
    "V1CertificationsCertificationIdCertificatePdfCertificateDocument": CERT_ONE,
    "V1CertificationsCertificationIdStickerPdfStickerDocument": CERT_ONE,
    "V1CertificationsCertificationIdCredentialCertificationCredential": CERT_ONE,
    "V1CertificationsIssueCertification": CERT_ISSUE,
    "V1CertificationsCertificationIdRenewRenewCertification": CERT_RENEW,
    "V1CertificationsCertificationIdSuspendSuspendCertification": CERT_CHANGE,
    "V1CertificationsCertificationIdReinstateReinstateCertification": CERT_CHANGE,
    "V1CertificationsCertificationIdRevokeRevokeCertification": CERT_CHANGE,
    # Anyone verifies a sticker or a credential: the key, the status lists, the public check.
    "WellKnownJwksJsonCredentialKeys": PUBLIC,
    "V1CredentialsStatusPurposeCredentialStatusList": PUBLIC,
    "V1VerifyCodeVerifyCertification": PUBLIC,
    "V1CarriersListCarriers": GEOGRAPHY,  # reference data: the carriers and how many points each lists
    "V1CarriersCodePickupPointsPushSnapshot": PUSH,
    "V1CarriersCodePickupPointsExternalIdPushPoint": PUSH,
    "V1CarriersCodePickupPointsExternalIdClosePoint": PUSH_CLOSE,
    "V1PickupPointsListPickupPoints": ORG_LIST,
    "V1PickupPointsGeojsonPickupPointsGeojson": ORG_LIST,
    "V1PickupPointsOrganizationIdGetPickupPoint": PICKUP_ONE,
    # A coordinator's corrections: placing, merging and splitting change organizations.
    "V1PickupPointsOrganizationIdPlacementPlacePickupPoint": ORG_CHANGE,
    "V1PickupPointsOrganizationIdMergeMergePickupPoints": ORG_CHANGE,
    "V1PickupPointsOrganizationIdSplitSplitPickupPoint": PICKUP_SPLIT,
    "V1MunicipalitiesCodeProgressMunicipalityProgress": REPORT_ONE,
    "V1MunicipalitiesCodeDecisionGetDecision": REPORT_ONE,
    "V1MunicipalitiesCodeDecisionPutDecision": DECISION_WRITE,
    "V1MunicipalitiesCodeDecisionDeleteDecision": DECISION_DELETE,
    **{
        f"V1Reports{name}": REPORT_ONE
        for name in (
            "ProgressProgress",
            "ProgressCsvProgressCsv",
            "ProgressGeojsonProgressGeojson",
            "CoverageCoverage",
            "CoverageCsvCoverageCsv",
            "CoverageGeojsonCoverageGeojson",
            "CoverageUnreachedUnreached",
            "CoverageUnreachedCsvUnreachedCsv",
            "CoverageUnreachedGeojsonUnreachedGeojson",
            "EvaluationsEvaluations",
            "EvaluationsCsvEvaluationsCsv",
        )
    },
    **{
        f"V1Reports{name}": REPORT_ROLLUP
        for name in (
            "ProgressRollupProgressRollup",
            "ProgressRollupCsvProgressRollupCsv",
            "ProgressRollupGeojsonProgressRollupGeojson",
            "CoverageRollupCoverageRollup",
            "CoverageRollupCsvCoverageRollupCsv",
            "CoverageRollupGeojsonCoverageRollupGeojson",
        )
    },
}

REPORT_PATHS = {
    "V1ReportsProgressProgress": "progress",
    "V1ReportsProgressCsvProgressCsv": "progress.csv",
    "V1ReportsProgressGeojsonProgressGeojson": "progress.geojson",
    "V1ReportsCoverageCoverage": "coverage",
    "V1ReportsCoverageCsvCoverageCsv": "coverage.csv",
    "V1ReportsCoverageGeojsonCoverageGeojson": "coverage.geojson",
    "V1ReportsCoverageUnreachedUnreached": "coverage/unreached",
    "V1ReportsCoverageUnreachedCsvUnreachedCsv": "coverage/unreached.csv",
    "V1ReportsCoverageUnreachedGeojsonUnreachedGeojson": "coverage/unreached.geojson",
    "V1ReportsEvaluationsEvaluations": "evaluations",
    "V1ReportsEvaluationsCsvEvaluationsCsv": "evaluations.csv",
    "V1ReportsProgressRollupProgressRollup": "progress/rollup",
    "V1ReportsProgressRollupCsvProgressRollupCsv": "progress/rollup.csv",
    "V1ReportsProgressRollupGeojsonProgressRollupGeojson": "progress/rollup.geojson",
    "V1ReportsCoverageRollupCoverageRollup": "coverage/rollup",
    "V1ReportsCoverageRollupCsvCoverageRollupCsv": "coverage/rollup.csv",
    "V1ReportsCoverageRollupGeojsonCoverageRollupGeojson": "coverage/rollup.geojson",
}
DECISION = {
    "decided_on": "2027-02-01",
    "bodies": [{"party": "municipality", "name": "Kommunstyrelsen"}],
    "document_reference": "KS 2027/1 § 1",
}

# Lists and the world object (a key of Place.ids) a 2xx answer must name when the caller's scope
# covers the place: so a list answering 200 with nothing in it cannot pass for a scoped one.
LISTED = {
    "V1OrganizationsListOrganizations": "org",
    "V1NetworksListNetworks": "local",
    "V1NetworksNetworkIdTreeGetTree": "local",
    "V1NetworksNetworkIdMembersListMembers": "member",
    "V1ParticipantsListParticipants": "person",
    "V1ParticipantsParticipantIdEmploymentsListEmployments": "org",
    "V1EmailHoldsListEmailHolds": "hold",
    "V1WebhooksListWebhooks": "webhook",
    "V1WebhooksWebhookIdDeliveriesListWebhookDeliveries": "delivery",
    "V1MeetingsListMeetings": "meeting",
    # Feeds carry every meeting past draft; an event's UID names its meeting.
    "V1MunicipalitiesCodeMeetingsIcsMunicipalityFeed": "open",
    "V1NetworksNetworkIdMeetingsIcsNetworkFeed": "open",
    "V1MeetingsMeetingIdInvitationsListInvitations": "invitation",
    "V1MeetingsMeetingIdRegistrationsListRegistrations": "registration",
    "V1CertificationsListCertifications": "cert",
    "V1PickupPointsListPickupPoints": "listed",
    "V1PickupPointsGeojsonPickupPointsGeojson": "listed",
}
# A carrier integration sees the shops its carrier lists, wherever they are, and no others: these
# lists name the place's postnord-listed shop in both places, and never the place's plain `org`.
CARRIER_LISTS = {
    "V1OrganizationsListOrganizations",
    "V1PickupPointsListPickupPoints",
    "V1PickupPointsGeojsonPickupPointsGeojson",
}

# Public routes outside the OpenAPI document: the docs, their assets and the Prometheus metrics.
UNDOCUMENTED_PUBLIC = ("/docs", "/docs/openapi.json", "/docs/assets/swagger-ui.css", "/metrics")


def operations(app: Any) -> dict[str, tuple[str, str]]:
    """operationId -> (method, path template), from the app's own OpenAPI document."""
    paths = app.openapi_schema.to_schema()["paths"]
    return {
        op["operationId"]: (method.upper(), path)
        for path, item in paths.items()
        for method, op in item.items()
        if method in ("get", "put", "post", "patch", "delete")
    }


def test_every_operation_has_a_rule(client) -> None:
    documented = set(operations(client.app))
    assert sorted(documented - set(EXPECTED)) == [], "operations without a rule in EXPECTED"
    assert sorted(set(EXPECTED) - documented) == [], "rules for operations that no longer exist"


def test_every_rule_names_every_role(client) -> None:
    incomplete = [
        op for op, rule in EXPECTED.items() if not isinstance(rule, Public) and set(rule) != set(ROLES)
    ]
    assert incomplete == []


async def test_public_operations_need_no_credentials(client) -> None:
    """Public operations answer without any Authorization, in every place alike; no role is
    involved, so the matrix leaves them to this test."""
    world = World(client)
    await world.build()
    admin = client.headers["Authorization"]
    wrong: list[str] = []
    for op, (method, _) in sorted(operations(client.app).items()):
        rule = EXPECTED.get(op)
        if not isinstance(rule, Public):
            continue
        for place in (world.own, world.foreign):
            client.headers["Authorization"] = admin  # fresh objects are the administrator's
            path, body = await world.request(op, place)
            del client.headers["Authorization"]
            response = await send(client, method, path, body)
            if response.status_code != rule.status:
                detail = response.text[:160].replace("\n", " ")
                wrong.append(f"{op} {method} {path}: got {response.status_code} — {detail}")
    client.headers.pop("Authorization", None)
    for path in UNDOCUMENTED_PUBLIC:
        response = await client.get(path)
        if response.status_code != 200:
            wrong.append(f"GET {path}: got {response.status_code}")
    assert wrong == []


def _placeholder(match: re.Match[str]) -> str:
    name = match.group(1)
    if name.endswith("_id"):
        return str(uuid4())
    return {"code": "2560", "address": "someone@ombud.example"}.get(name, "x")


async def test_every_other_operation_needs_credentials(client) -> None:
    del client.headers["Authorization"]
    wrong: list[str] = []
    for op, (method, template) in sorted(operations(client.app).items()):
        if isinstance(EXPECTED.get(op), Public):
            continue
        path = re.sub(r"\{([a-z_]+)\}", _placeholder, template)
        body = {} if method in ("POST", "PATCH", "PUT") else None
        response = await client.request(method, path, json=body)
        if response.status_code != 401:
            wrong.append(f"{op} {method} {path}: expected 401, got {response.status_code}")
            continue
        problem(response, 401)
        if "Bearer" not in response.headers.get("WWW-Authenticate", ""):
            wrong.append(f"{op}: 401 without a Bearer challenge")
    assert wrong == []


@dataclass
class Place:
    """The objects of one scope: Älvsbyn (own) or Stockholm (foreign)."""

    municipality: str
    county: str
    # Where the place's pickup points stand: latitude, longitude, postal code, city.
    site: tuple[float, float, str, str]
    # The carrier whose list the push operations send: the matrix's carrier key is postnord's, so
    # its own carrier in the own scope and another one in the foreign scope.
    carrier: str
    ids: dict[str, str] = field(default_factory=dict)
    # postnord's listing of the place's shop `listed`, as the carrier sends it (a row of its list).
    row: dict[str, Any] = field(default_factory=dict)

    def names(self) -> set[str]:
        """Everything a scoped caller outside this place must never be told."""
        return {v for k, v in self.ids.items() if k != "national"}


# The app's time: the world is built at EARLY and the matrix runs at NOW (18.30 in Stockholm),
# when meetings that start at STARTED have begun and those at LATER are still ahead.
EARLY = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2027, 3, 10, 17, 30, tzinfo=UTC)
STARTED = ("2027-03-10T18:00:00", "2027-03-10T20:00:00")  # Stockholm wall time, as clients send it
LATER = ("2027-04-20T18:00:00", "2027-04-20T20:00:00")
LINKS_EXPIRE = datetime(2028, 1, 1, tzinfo=UTC)
# How far World.meeting takes a meeting; "invited" is scheduled with an invitation not yet sent.
STAGES = ("draft", "scheduled", "invited", "invitations_sent", "held")


class World:
    """The fixture world, created by the national administrator (the client's default header)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.settings = client.app.state.settings
        self.clock = Clock(NOW)
        client.app.state.clock = self.clock
        self.own = Place("2560", "25", (65.676, 21.004, "94231", "Älvsbyn"), POSTNORD)
        self.foreign = Place("0180", "01", (59.334, 18.06, "11122", "Stockholm"), "dhl")
        self.counter = itertools.count()
        self.key_id = ""
        self.carrier_ids: dict[str, UUID] = {}

    def unique(self) -> int:
        return next(self.counter)

    async def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.client.post(path, json=body)
        assert response.status_code in (200, 201), (path, response.text)
        result: dict[str, Any] = response.json()
        return result

    async def put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.put(path, json=body)
        assert response.status_code == 200, (path, response.text)
        result: dict[str, Any] = response.json()
        return result

    async def build(self, *, meetings: bool = True) -> None:
        national = await self.post(
            "/v1/networks", {"name": "Nationella kontakter", "kind": "national_contacts"}
        )
        for place in (self.own, self.foreign):
            p = place.ids
            p["national"] = national["id"]
            p["regional"] = (
                await self.post(
                    "/v1/networks",
                    {
                        "name": f"Länsgrupp {place.county}",
                        "kind": "county_group",
                        "parent_id": national["id"],
                        "county_codes": [place.county],
                    },
                )
            )["id"]
            p["local"] = (
                await self.post(
                    "/v1/networks",
                    {
                        "name": f"Lokal arbetsgrupp {place.municipality}",
                        "kind": "local_working_group",
                        "parent_id": p["regional"],
                        "municipality_code": place.municipality,
                    },
                )
            )["id"]
            p["org"] = await self.org(place)
            person = await self.person(place)
            p["person"], p["email"] = person["id"], person["email"]
            p["member"] = await self.member(place, p["person"])
            p["webhook"] = (
                await self.post(
                    "/v1/webhooks",
                    {
                        "name": f"Kommunens system {place.municipality}",
                        "url": "https://hooks.example/tmn",
                        "municipality_code": place.municipality,
                    },
                )
            )["id"]
            p["delivery"] = self.delivery(place)
            p["hold"] = self.hold(p["email"])
            # A shop postnord lists: the carrier integration sees it, wherever it is.
            place.row = self.point_row(
                place, f"matrix-{place.municipality}", f"Postombud {place.municipality}"
            )
            p["listed"] = self.listing(place, POSTNORD, row=place.row)[0]
            if meetings:
                await self.meetings(place)
                p["cert"], p["verify"] = await self.certification(place)
            await self.decision(place)
        self.key_id = (await self.post("/v1/api-keys", {"name": "a viewer's key", "role": "viewer"}))["id"]

    async def meetings(self, place: Place) -> None:
        """A meeting at each stage the operations need, in the place's local working group; the
        ones a request ends or moves on are made fresh for it instead (see request)."""
        p = place.ids
        p["meeting"] = (await self.meeting(place))["meeting"]  # a draft
        # Invitations out and the start ahead: it has a checklist and reminders, it is in the
        # feeds, and its invitation's link registers, declines and cancels.
        open_ = await self.meeting(place, "invitations_sent", register=True)
        p["open"], p["invitation"], p["registration"] = (
            open_["meeting"],
            open_["invitation"],
            open_["registration"],
        )
        # Started and held: minutes and surveys; attendance and check-in (with the code of its
        # registration) are still taken once a meeting is held, so it serves those too.
        held = await self.meeting(place, "held", starts=STARTED, register=True)
        p["held"], p["checkin"] = held["meeting"], self.checkin_code(held["registration"])

    async def decision(self, place: Place) -> str:
        """The place's decision (step 1), recorded again if a request removed it."""
        path = f"/v1/municipalities/{place.municipality}/decision"
        response = await self.client.put(path, json=DECISION)
        assert response.status_code in (200, 201), response.text
        return path

    # --- fresh objects, so a request that changes or ends something disturbs no other ---------

    async def org(self, place: Place) -> str:
        body = pickup_point(f"Ombud {self.unique()}", municipality=place.municipality)
        return str((await self.post("/v1/organizations", body))["id"])

    async def archived_org(self, place: Place) -> str:
        ident = await self.org(place)
        await self.post(f"/v1/organizations/{ident}/archive")
        return ident

    async def person(self, place: Place) -> dict[str, Any]:
        body = {
            "name": f"Person {self.unique()}",
            "email": f"p{self.unique()}-{uuid4().hex[:8]}@ombud.example",
            "organization_id": place.ids["org"],
            "mailing_list_consent": True,
        }
        return await self.post("/v1/participants", body)

    async def member(self, place: Place, participant_id: str | None = None) -> str:
        participant_id = participant_id or (await self.person(place))["id"]
        body = {"participant_id": participant_id, "role": "member"}
        return str((await self.post(f"/v1/networks/{place.ids['local']}/members", body))["id"])

    async def held_address(self, place: Place) -> str:
        return self.hold((await self.person(place))["email"])

    async def new_key(self) -> str:
        return str((await self.post("/v1/api-keys", {"name": f"k{self.unique()}", "role": "viewer"}))["id"])

    async def meeting(
        self,
        place: Place,
        stage: str = "draft",
        *,
        starts: tuple[str, str] = LATER,
        capacity: int | None = None,
        register: bool = False,
    ) -> dict[str, str]:
        """A meeting of the place's local working group taken to a stage (STAGES): the place's
        person is invited, and with register=True a newcomer registers through the link.
        A meeting that has started by NOW is prepared at EARLY, when it was still ahead:
        scheduling and registering need a start in the future. Returns the ids made."""
        p, reached = place.ids, STAGES.index(stage)
        made: dict[str, str] = {}
        now = self.clock.now
        if starts == STARTED:
            self.clock.now = EARLY
        try:
            body = self.meeting_body(place, starts, capacity=capacity)
            ident = made["meeting"] = (await self.post("/v1/meetings", body))["id"]
            if reached >= STAGES.index("scheduled"):
                await self.post(f"/v1/meetings/{ident}/schedule")
            if reached >= STAGES.index("invited"):
                invite = {"participant_ids": [p["person"]]}
                [invitation] = (await self.post(f"/v1/meetings/{ident}/invitations", invite))["created"]
                made["invitation"] = invitation["id"]
            if reached >= STAGES.index("invitations_sent"):
                await self.post(f"/v1/meetings/{ident}/send-invitations")
                if register:
                    made["registration"] = await self.register(made["invitation"])
        finally:
            self.clock.now = now
        if reached >= STAGES.index("held"):
            await self.post(f"/v1/meetings/{ident}/hold")
        return made

    def meeting_body(
        self, place: Place, starts: tuple[str, str] = LATER, capacity: int | None = None
    ) -> dict[str, Any]:
        # A local working group's meeting: unlike a collaboration meeting it needs no police instructor.
        return {
            "network_id": place.ids["local"],
            "kind": "local_working_group",
            "title": f"Arbetsgruppsmöte {self.unique()}",
            "starts_at": starts[0],
            "ends_at": starts[1],
            "venue": "Kommunhuset",
            "capacity": capacity,
        }

    def newcomer(self) -> dict[str, str]:
        """Someone an invited shop registers through its link (a new participant)."""
        return {
            "name": f"Anmäld {self.unique()}",
            "email": f"a{self.unique()}-{uuid4().hex[:8]}@ombud.example",
        }

    async def register(self, invitation_id: str) -> str:
        """Register a newcomer through the invitation's link; the registration's id."""
        person = self.newcomer()
        path = f"/v1/invitations/{self.invitation_token(invitation_id)}/registrations"
        outcome = await self.post(path, {"people": [person]})
        # The answer lists every registration made through the invitation; the name is unique.
        [ident] = [r["id"] for r in outcome["registrations"] if r["name"] == person["name"]]
        return str(ident)

    def invitation_token(self, invitation_id: str) -> str:
        return tokens.invitation_token(self.settings, UUID(invitation_id), LINKS_EXPIRE)

    def registration_token(self, registration_id: str) -> str:
        return tokens.registration_token(self.settings, UUID(registration_id), LINKS_EXPIRE)

    def survey_token(self, place: Place) -> str:
        # Each token carries a new nonce: a link answers once, so every request gets its own.
        return tokens.survey_token(self.settings, UUID(place.ids["held"]), "attendee", self.clock.now)

    # --- objects the API cannot create: straight into the test's transaction -----------------

    def in_session(self, fn: Callable[[Any], Awaitable[Any]]) -> Any:
        async def run() -> Any:
            async with self.client.app.state.sessionmaker() as session:
                session.info["principal_id"] = "tests"
                result = await fn(session)
                await session.commit()
                return result

        return self.client.blocking_portal.call(run)

    def hold(self, email: str) -> str:
        address = email.lower()

        async def make(session: Any) -> None:
            session.add(EmailHold(address=address, reason="550 no such user"))

        self.in_session(make)
        return address

    def dead_message(self) -> str:
        async def make(session: Any) -> str:
            outbox = OutboxService(context(session), self.client.app.state.settings)
            message = await outbox.enqueue_email(to="x@ombud.example", subject="S", text="T")
            message.status = OutboxStatus.DEAD
            return str(message.id)

        return str(self.in_session(make))

    def delivery(self, place: Place) -> str:
        event = DomainEvent(
            id=uuid4().hex,
            type="meeting.scheduled",
            occurred_at=utcnow().isoformat(),
            municipality_code=place.municipality,
            county_code=place.county,
            data={"meeting_id": "m-1"},
        )

        async def make(session: Any) -> str:
            service = WebhookService(context(session), self.client.app.state.settings)
            assert await service.publish(event) == 1
            [found] = await service.deliveries(UUID(place.ids["webhook"]))
            return str(found.id)

        return str(self.in_session(make))

    def token(self, place: Place) -> str:
        return sign(self.client.app.state.settings, "unsubscribe", place.ids["person"])

    async def certification(
        self, place: Place, state: CertificationState = CertificationState.ACTIVE
    ) -> tuple[str, str]:
        """A certified place of its own (id, verify code), written straight into the database:
        earning one through the API takes a whole collaboration meeting (tests/test_certifications.py)."""
        org = UUID(await self.org(place))
        serial, code = 100_000 + self.unique(), f"matrix-{uuid4().hex}"
        valid_from = date(2026, 12, 1)

        async def make(session: Any) -> str:
            cert = Certification(
                id=uuid4(),
                organization_id=org,
                serial=serial,
                number=f"TMN-{place.municipality}-{serial}",
                sticker_serial=f"D-{serial}",
                verify_code=code,
                municipality_code=place.municipality,
                state=state,
                issued_on=valid_from,
                valid_from=valid_from,
                window_opens=date(2027, 11, 1),
                valid_until=date(2027, 12, 1),
                grace_until=date(2028, 3, 1),
            )
            session.add(cert)
            await session.flush()
            session.add(
                CertificationPeriod(
                    certification_id=cert.id,
                    kind=PeriodKind.ISSUED,
                    valid_from=valid_from,
                    window_opens=cert.window_opens,
                    valid_until=cert.valid_until,
                    grace_until=cert.grace_until,
                )
            )
            return str(cert.id)

        return str(self.in_session(make)), code

    async def _certification_id(
        self, place: Place, state: CertificationState = CertificationState.ACTIVE
    ) -> str:
        return (await self.certification(place, state))[0]

    def point_row(self, place: Place, ident: str, name: str) -> dict[str, Any]:
        """A pickup point in the place as a carrier lists it (a row of its list)."""
        latitude, longitude, postal_code, city = place.site
        return {
            "id": ident,
            "name": name,
            "street_address": "Storgatan 10",
            "postal_code": postal_code,
            "city": city,
            "latitude": latitude,
            "longitude": longitude,
        }

    def postnord_list(self) -> bytes:
        """postnord's whole list in this world, as its integration sends it (a snapshot): its shop
        in each place, the same every time, so a snapshot closes nothing. (A list of one place's
        shop would close the other place's listing: half of postnord's open points, past the
        close-share limit, 409.)"""
        return json.dumps([self.own.row, self.foreign.row]).encode()

    def listing(
        self, place: Place, carrier: str, *, org: str | None = None, row: dict[str, Any] | None = None
    ) -> tuple[str, str]:
        """A carrier's open listing of a shop in the place, written straight into the database
        (the API takes listings only from the carrier's own key, one key per carrier); a new shop
        unless `org` is given. `row` is the listing as the carrier sends it (default: a new one).
        Returns (organization id, listing id)."""
        row = row or self.point_row(place, f"{carrier}-{uuid4().hex[:12]}", f"Butik {self.unique()}")
        point = msgspec.convert(row, PointIn)
        now = self.clock.now

        async def make(session: Any) -> tuple[str, str]:
            if carrier not in self.carrier_ids:
                found = await session.scalar(select(Carrier.id).where(Carrier.code == carrier))
                assert found is not None, f"no carrier {carrier}"
                self.carrier_ids[carrier] = found
            shop = UUID(org) if org is not None else uuid4()
            if org is None:
                session.add(
                    Organization(
                        id=shop,
                        kind=OrganizationKind.PICKUP_POINT,
                        name=point.name,
                        street_address=point.street_address,
                        postal_code=point.postal_code,
                        city=point.city,
                        latitude=point.latitude,
                        longitude=point.longitude,
                        municipality_code=place.municipality,
                        county_code=place.county,
                        placement="polygon",
                    )
                )
                await session.flush()
            listing = CarrierPoint(
                id=uuid4(),
                carrier_id=self.carrier_ids[carrier],
                external_id=point.id,
                organization_id=shop,
                name=point.name,
                kind=point.kind,
                street_address=point.street_address,
                postal_code=point.postal_code,
                city=point.city,
                latitude=point.latitude,
                longitude=point.longitude,
                last_seen_at=now,
                # As a sync records it: the same row sent again is unchanged.
                content_hash=digest(point, point.postal_code or ""),
            )
            session.add(listing)
            await session.flush()
            return str(shop), str(listing.id)

        result: tuple[str, str] = self.in_session(make)
        return result

    async def _open_point(self, place: Place) -> str:
        """The carrier's id of a new open listing of the place's carrier (closing one ends it)."""
        row = self.point_row(place, f"close-{uuid4().hex[:12]}", f"Butik som stänger {self.unique()}")
        self.listing(place, place.carrier, row=row)
        return str(row["id"])

    async def _merge(self, place: Place) -> tuple[str, dict[str, Any]]:
        """Two shops of the place that two carriers list (so they may be one)."""
        shop = self.listing(place, "bring")[0]
        other = self.listing(place, "budbee")[0]
        return f"/v1/pickup-points/{shop}/merge", {"organization_id": other}

    async def _split(self, place: Place) -> tuple[str, dict[str, Any]]:
        """A shop of the place with two carriers' listings: one of them moves to a shop of its own."""
        shop = self.listing(place, "bring")[0]
        listing = self.listing(place, "budbee", org=shop)[1]
        return f"/v1/pickup-points/{shop}/split", {"listing_id": listing}

    def checkin_code(self, registration_id: str) -> str:
        """The code of a registration's QR code: only its confirmation e-mail carries it."""

        async def read(session: Any) -> str:
            registration = await session.get(Registration, UUID(registration_id))
            return str(registration.checkin_code)

        return str(self.in_session(read))

    # --- the request for each operation ----------------------------------------------------------

    async def request(self, op: str, place: Place, *, stand_in: str | None = None) -> tuple[str, Body]:
        """The path (with parameters) and the body of an operation aimed at a place.

        A caller denied the route (403) is answered by its guard before any object is looked up:
        for them the matrix passes the path template as stand_in, and an operation that needs a
        fresh object gets the template with placeholders instead of an object made for nothing."""
        p, m, c, n = place.ids, place.municipality, place.county, self.unique()
        org, net, person, hook = p["org"], p["local"], p["person"], p["webhook"]
        meeting, held, invitation = p["meeting"], p["held"], self.invitation_token(p["invitation"])
        push = f"/v1/carriers/{place.carrier}/pickup-points"
        simple: dict[str, tuple[str, Body]] = {
            "HealthLiveLive": ("/health/live", None),
            "HealthReadyReady": ("/health/ready", None),
            "ProblemsListProblemTypes": ("/problems", None),
            "ProblemsSlugGetProblemType": ("/problems/not-found", None),
            "V1UnsubscribeTokenUnsubscribePage": (f"/v1/unsubscribe/{self.token(place)}", None),
            "V1UnsubscribeTokenUnsubscribeNow": (f"/v1/unsubscribe/{self.token(place)}", None),
            "V1CountiesListCounties": ("/v1/counties", None),
            "V1CountiesCodeGetCounty": (f"/v1/counties/{c}", None),
            "V1MunicipalitiesListMunicipalities": (f"/v1/municipalities?county={c}", None),
            "V1MunicipalitiesCodeGetMunicipality": (f"/v1/municipalities/{m}", None),
            "V1MunicipalitiesCodeContactsMunicipalityContacts": (f"/v1/municipalities/{m}/contacts", None),
            "V1MunicipalitiesCodeContactsVcfMunicipalityContactsVcard": (
                f"/v1/municipalities/{m}/contacts.vcf",
                None,
            ),
            "V1OrganizationsListOrganizations": (f"/v1/organizations?municipality={m}", None),
            "V1OrganizationsOrganizationIdGetOrganization": (f"/v1/organizations/{org}", None),
            "V1OrganizationsCreateOrganization": (
                "/v1/organizations",
                pickup_point(f"Nytt ombud {n}", municipality=m),
            ),
            "V1OrganizationsOrganizationIdUpdateOrganization": (
                f"/v1/organizations/{org}",
                {"name": f"Ombud {n}"},
            ),
            "V1NetworksListNetworks": (f"/v1/networks?county={c}", None),
            "V1NetworksNetworkIdGetNetwork": (f"/v1/networks/{net}", None),
            "V1NetworksNetworkIdTreeGetTree": (f"/v1/networks/{p['regional']}/tree", None),
            "V1NetworksCreateNetwork": (
                "/v1/networks",
                {
                    "name": f"Nätverk {n}",
                    "kind": "local_network",
                    "parent_id": p["regional"],
                    "municipality_code": m,
                },
            ),
            "V1NetworksNetworkIdUpdateNetwork": (f"/v1/networks/{net}", {"description": f"Möten {n}"}),
            "V1NetworksNetworkIdMembersListMembers": (f"/v1/networks/{net}/members", None),
            "V1NetworksNetworkIdMembersMemberIdGetMember": (
                f"/v1/networks/{net}/members/{p['member']}",
                None,
            ),
            "V1NetworksNetworkIdMembersMemberIdUpdateMember": (
                f"/v1/networks/{net}/members/{p['member']}",
                {"role": "representative" if n % 2 else "member"},
            ),
            "V1ParticipantsListParticipants": (f"/v1/participants?municipality={m}", None),
            "V1ParticipantsParticipantIdGetParticipant": (f"/v1/participants/{person}", None),
            "V1ParticipantsParticipantIdEmploymentsListEmployments": (
                f"/v1/participants/{person}/employments",
                None,
            ),
            "V1ParticipantsParticipantIdExportExportParticipant": (f"/v1/participants/{person}/export", None),
            "V1ParticipantsCreateParticipant": (
                "/v1/participants",
                {
                    "name": "Ny person",
                    "email": f"ny{n}-{uuid4().hex[:8]}@ombud.example",
                    "organization_id": org,
                },
            ),
            "V1ParticipantsParticipantIdUpdateParticipant": (
                f"/v1/participants/{person}",
                {"language": "en" if n % 2 else "sv"},
            ),
            "V1ApiKeysListApiKeys": ("/v1/api-keys", None),
            "V1ApiKeysCreateApiKey": ("/v1/api-keys", {"name": f"k{n}", "role": "viewer"}),
            "V1ApiKeysKeyIdGetApiKey": (f"/v1/api-keys/{self.key_id}", None),
            "V1AuditEventsListAuditEvents": ("/v1/audit-events", None),
            "V1OutboxListOutbox": ("/v1/outbox", None),
            "V1PluginsListPlugins": ("/v1/plugins", None),
            "V1EmailHoldsListEmailHolds": ("/v1/email-holds", None),
            "V1WebhooksListWebhooks": ("/v1/webhooks", None),
            "V1WebhooksCreateWebhook": (
                "/v1/webhooks",
                {"name": f"System {n}", "url": "https://hooks.example/new", "municipality_code": m},
            ),
            "V1WebhooksWebhookIdGetWebhook": (f"/v1/webhooks/{hook}", None),
            "V1WebhooksWebhookIdUpdateWebhook": (f"/v1/webhooks/{hook}", {"name": f"System {n}"}),
            "V1WebhooksWebhookIdRotateSecretRotateWebhookSecret": (
                f"/v1/webhooks/{hook}/rotate-secret",
                None,
            ),
            "V1WebhooksWebhookIdEnableEnableWebhook": (f"/v1/webhooks/{hook}/enable", None),
            "V1WebhooksWebhookIdDeliveriesListWebhookDeliveries": (f"/v1/webhooks/{hook}/deliveries", None),
            "V1WebhooksWebhookIdDeliveriesDeliveryIdReplayReplayWebhookDelivery": (
                f"/v1/webhooks/{hook}/deliveries/{p['delivery']}/replay",
                None,
            ),
            "V1MeetingsListMeetings": (f"/v1/meetings?municipality={m}", None),
            "V1MeetingsCreateMeeting": ("/v1/meetings", self.meeting_body(place)),
            "V1MeetingsMeetingIdGetMeeting": (f"/v1/meetings/{meeting}", None),
            "V1MeetingsMeetingIdUpdateMeeting": (
                f"/v1/meetings/{meeting}",
                {"description": f"Dagordning {n}"},
            ),
            "V1MeetingsMeetingIdInvitationsInvite": (
                f"/v1/meetings/{meeting}/invitations",
                {"participant_ids": [person]},
            ),
            "V1MeetingsMeetingIdRemindersAddReminder": (
                f"/v1/meetings/{meeting}/reminders",
                {"minutes_before": 60 + n, "audience": "not_answered"},
            ),
            "V1MeetingsMeetingIdRemindersListReminders": (f"/v1/meetings/{p['open']}/reminders", None),
            "V1MeetingsMeetingIdChecklistGetChecklist": (f"/v1/meetings/{p['open']}/checklist", None),
            "V1MeetingsMeetingIdChecklistKeyTickChecklistItem": (
                f"/v1/meetings/{p['open']}/checklist/venue_booked",
                {"done": True},
            ),
            "V1MeetingsMeetingIdInvitationsListInvitations": (f"/v1/meetings/{p['open']}/invitations", None),
            "V1MeetingsMeetingIdRegistrationsListRegistrations": (
                f"/v1/meetings/{p['open']}/registrations",
                None,
            ),
            "V1MeetingsMeetingIdAttendanceRecordAttendance": (
                f"/v1/meetings/{held}/attendance",
                {"participant_id": person, "attendance": "attended"},
            ),
            "V1MeetingsMeetingIdCheckInsCheckIn": (
                f"/v1/meetings/{held}/check-ins",
                {"code": p["checkin"]},
            ),
            "V1MeetingsMeetingIdMinutesGetMinutes": (f"/v1/meetings/{held}/minutes", None),
            "V1MeetingsMeetingIdMinutesWriteMinutes": (
                f"/v1/meetings/{held}/minutes",
                {"text": f"# Minnesanteckningar {n}"},
            ),
            "V1MeetingsMeetingIdSurveysSendSendSurveys": (f"/v1/meetings/{held}/surveys/send", None),
            "V1MeetingsMeetingIdSurveyResultsMeetingSurveyResults": (
                f"/v1/meetings/{held}/survey-results",
                None,
            ),
            "V1SurveyResultsSurveyResults": (f"/v1/survey-results?municipality={m}", None),
            "V1CertificationsListCertifications": (f"/v1/certifications?municipality={m}", None),
            "V1InstructorsListInstructors": (f"/v1/instructors?county={c}", None),
            "V1CertificationsCertificationIdGetCertification": (f"/v1/certifications/{p['cert']}", None),
            "V1CertificationsCertificationIdHistoryCertificationHistory": (
                f"/v1/certifications/{p['cert']}/history",
                None,
            ),
            "V1CertificationsCertificationIdCertificatePdfCertificateDocument": (
                f"/v1/certifications/{p['cert']}/certificate.pdf",
                None,
            ),
            "V1CertificationsCertificationIdStickerPdfStickerDocument": (
                f"/v1/certifications/{p['cert']}/sticker.pdf",
                None,
            ),
            "V1CertificationsCertificationIdCredentialCertificationCredential": (
                f"/v1/certifications/{p['cert']}/credential",
                None,
            ),
            "V1CertificationsIssueCertification": (
                "/v1/certifications",
                {"organization_id": org, "meeting_id": held},
            ),
            "V1CertificationsCertificationIdRenewRenewCertification": (
                f"/v1/certifications/{p['cert']}/renew",
                {"meeting_id": held},
            ),
            "WellKnownJwksJsonCredentialKeys": ("/.well-known/jwks.json", None),
            "V1CredentialsStatusPurposeCredentialStatusList": ("/v1/credentials/status/revocation", None),
            "V1VerifyCodeVerifyCertification": (f"/v1/verify/{p['verify']}", None),
            "V1NetworksNetworkIdMeetingsIcsNetworkFeed": (f"/v1/networks/{net}/meetings.ics", None),
            "V1MunicipalitiesCodeMeetingsIcsMunicipalityFeed": (f"/v1/municipalities/{m}/meetings.ics", None),
            "V1InvitationsTokenViewInvitation": (f"/v1/invitations/{invitation}", None),
            "V1InvitationsTokenRegistrationsRegisterThroughInvitation": (
                f"/v1/invitations/{invitation}/registrations",
                {"people": [self.newcomer()]},
            ),
            "V1RegistrationsTokenViewRegistration": (
                f"/v1/registrations/{self.registration_token(p['registration'])}",
                None,
            ),
            "V1SurveysTokenViewSurvey": (f"/v1/surveys/{self.survey_token(place)}", None),
            "V1SurveysTokenAnswerSurvey": (
                f"/v1/surveys/{self.survey_token(place)}",
                {"answers": {"meeting_useful": 4, "know_whom_to_contact": 5}},
            ),
            "V1CarriersListCarriers": ("/v1/carriers", None),
            "V1CarriersCodePickupPointsPushSnapshot": (push, self.postnord_list()),
            "V1CarriersCodePickupPointsExternalIdPushPoint": (
                f"{push}/{place.row['id']}",
                {k: v for k, v in place.row.items() if k != "id"},
            ),
            "V1PickupPointsListPickupPoints": (f"/v1/pickup-points?municipality={m}", None),
            "V1MunicipalitiesCodeProgressMunicipalityProgress": (f"/v1/municipalities/{m}/progress", None),
            **{
                op: (f"/v1/reports/{path}?municipality={m}", None)
                for op, path in REPORT_PATHS.items()
                if EXPECTED[op] is REPORT_ONE
            },
            **{
                op: (f"/v1/reports/{path}?county={place.county}", None)
                for op, path in REPORT_PATHS.items()
                if EXPECTED[op] is REPORT_ROLLUP
            },
            "V1PickupPointsGeojsonPickupPointsGeojson": (f"/v1/pickup-points/geojson?municipality={m}", None),
            "V1PickupPointsOrganizationIdGetPickupPoint": (f"/v1/pickup-points/{p['listed']}", None),
            "V1PickupPointsOrganizationIdPlacementPlacePickupPoint": (
                f"/v1/pickup-points/{p['listed']}/placement",
                {"municipality_code": m},
            ),
        }
        if op in simple:
            return simple[op]
        fresh: dict[str, Callable[[], Awaitable[tuple[str, Body]]]] = {
            "V1OrganizationsOrganizationIdArchiveArchiveOrganization": lambda: self._path(
                "/v1/organizations/{}/archive", self.org(place)
            ),
            "V1OrganizationsOrganizationIdRestoreRestoreOrganization": lambda: self._path(
                "/v1/organizations/{}/restore", self.archived_org(place)
            ),
            "V1NetworksNetworkIdMembersAddMember": self._new_member_body(place),
            "V1NetworksNetworkIdMembersMemberIdEndMember": lambda: self._path(
                f"/v1/networks/{net}/members/{{}}", self.member(place)
            ),
            "V1ParticipantsParticipantIdLeaveLeaveOrganization": lambda: self._path(
                "/v1/participants/{}/leave", self._person_id(place)
            ),
            "V1ParticipantsParticipantIdEraseEraseParticipant": lambda: self._path(
                "/v1/participants/{}/erase", self._person_id(place)
            ),
            "V1ApiKeysKeyIdRevokeRevokeApiKey": lambda: self._path("/v1/api-keys/{}/revoke", self.new_key()),
            "V1EmailHoldsAddressClearEmailHold": lambda: self._path(
                "/v1/email-holds/{}", self.held_address(place)
            ),
            "V1OutboxMessageIdGetOutboxMessage": lambda: self._path("/v1/outbox/{}", self._dead()),
            "V1OutboxMessageIdRetryRetryOutboxMessage": lambda: self._path(
                "/v1/outbox/{}/retry", self._dead()
            ),
            # Meeting steps move a meeting on, so each gets a meeting at the stage it starts from.
            "V1MeetingsMeetingIdScheduleScheduleMeeting": lambda: self._path(
                "/v1/meetings/{}/schedule", self._meeting_id(place, "draft")
            ),
            "V1MeetingsMeetingIdSendInvitationsSendInvitations": lambda: self._path(
                "/v1/meetings/{}/send-invitations", self._meeting_id(place, "invited")
            ),
            "V1MeetingsMeetingIdHoldHoldMeeting": lambda: self._path(
                "/v1/meetings/{}/hold", self._meeting_id(place, "invitations_sent", STARTED)
            ),
            "V1MeetingsMeetingIdCloseCloseMeeting": lambda: self._path(
                "/v1/meetings/{}/close", self._meeting_id(place, "held", STARTED)
            ),
            "V1MeetingsMeetingIdCancelCancelMeeting": lambda: self._path(
                "/v1/meetings/{}/cancel", self._meeting_id(place, "draft"), {"reason": "Ingen lokal"}
            ),
            # Minutes go out once per version: write a new one first.
            "V1MeetingsMeetingIdMinutesDistributeDistributeMinutes": lambda: self._path(
                "/v1/meetings/{}/minutes/distribute", self._new_minutes(place)
            ),
            "V1MeetingsMeetingIdRemindersReminderIdDeleteReminder": lambda: self._path(
                f"/v1/meetings/{meeting}/reminders/{{}}", self._reminder(place)
            ),
            "V1MeetingsMeetingIdRegistrationsRegistrationIdCancelRegistration": lambda: self._path(
                f"/v1/meetings/{p['open']}/registrations/{{}}", self.register(p["invitation"])
            ),
            "V1InvitationsTokenDeclineDeclineInvitation": lambda: self._path(
                "/v1/invitations/{}/decline", self._new_invitation(place), {"reason": "Ingen personal då"}
            ),
            "V1InvitationsTokenRegistrationsRegistrationIdCancelThroughInvitation": lambda: self._path(
                f"/v1/invitations/{invitation}/registrations/{{}}", self.register(p["invitation"])
            ),
            "V1RegistrationsTokenCancelOwnRegistration": lambda: self._path(
                "/v1/registrations/{}", self._registration_link(place)
            ),
            "V1RegistrationsTokenAcceptAcceptOffer": lambda: self._path(
                "/v1/registrations/{}/accept", self._offered_seat(place)
            ),
            # Each finds the place's decision recorded (a delete before it may have removed it).
            "V1MunicipalitiesCodeDecisionGetDecision": lambda: self._path("{}", self.decision(place)),
            "V1MunicipalitiesCodeDecisionPutDecision": lambda: self._path(
                "{}", self.decision(place), DECISION
            ),
            "V1MunicipalitiesCodeDecisionDeleteDecision": lambda: self._path("{}", self.decision(place)),
            # Decisions change a certification's state: each gets one in the state it starts from.
            "V1CertificationsCertificationIdSuspendSuspendCertification": lambda: self._path(
                "/v1/certifications/{}/suspend",
                self._certification_id(place),
                {"reason": "Dekalen borttagen"},
            ),
            "V1CertificationsCertificationIdReinstateReinstateCertification": lambda: self._path(
                "/v1/certifications/{}/reinstate",
                self._certification_id(place, CertificationState.SUSPENDED),
                {},
            ),
            "V1CertificationsCertificationIdRevokeRevokeCertification": lambda: self._path(
                "/v1/certifications/{}/revoke", self._certification_id(place), {"reason": "Butiken stängd"}
            ),
            # The carrier's own key closes an open point of its own; corrections change shops.
            "V1CarriersCodePickupPointsExternalIdClosePoint": lambda: self._path(
                f"{push}/{{}}", self._open_point(place)
            ),
            "V1PickupPointsOrganizationIdMergeMergePickupPoints": lambda: self._merge(place),
            "V1PickupPointsOrganizationIdSplitSplitPickupPoint": lambda: self._split(place),
        }
        if op in fresh:
            if stand_in is not None:
                # A carrier's code is the carrier aimed at in this scope, not a placeholder.
                fill = {"code": place.carrier} if stand_in.startswith("/v1/carriers/") else {}
                return re.sub(
                    r"\{([a-z_]+)\}", lambda name: fill.get(name.group(1)) or _placeholder(name), stand_in
                ), None
            return await fresh[op]()
        raise AssertionError(f"no request for {op}: add one to World.request")

    @staticmethod
    async def _path(template: str, ident: Awaitable[str], body: Body = None) -> tuple[str, Body]:
        return template.format(await ident), body

    async def _meeting_id(self, place: Place, stage: str, starts: tuple[str, str] = LATER) -> str:
        return (await self.meeting(place, stage, starts=starts))["meeting"]

    async def _new_minutes(self, place: Place) -> str:
        held = place.ids["held"]
        await self.put(f"/v1/meetings/{held}/minutes", {"text": f"# Minnesanteckningar {self.unique()}"})
        return held

    async def _reminder(self, place: Place) -> str:
        body = {"minutes_before": 60 + self.unique(), "audience": "registered"}
        return str((await self.post(f"/v1/meetings/{place.ids['meeting']}/reminders", body))["id"])

    async def _new_invitation(self, place: Place) -> str:
        """The link of a new invitation to the open meeting (sent at once: its invitations are out)."""
        body = {"participant_ids": [await self._person_id(place)]}
        [invitation] = (await self.post(f"/v1/meetings/{place.ids['open']}/invitations", body))["created"]
        return self.invitation_token(invitation["id"])

    async def _registration_link(self, place: Place) -> str:
        return self.registration_token(await self.register(place.ids["invitation"]))

    async def _offered_seat(self, place: Place) -> str:
        """The link of a registration offered a seat. The line meeting has one seat: a newcomer
        waits in line, the coordinator cancels whoever holds the seat, the seat is offered to the
        newcomer, and accepting it makes them the next holder."""
        p = place.ids
        if "line" not in p:  # made when first needed: only the public accept link uses it
            line = await self.meeting(place, "invitations_sent", capacity=1, register=True)
            p["line"], p["line_invitation"], p["holder"] = (
                line["meeting"],
                line["invitation"],
                line["registration"],
            )
        newcomer = await self.register(p["line_invitation"])
        response = await self.client.delete(f"/v1/meetings/{p['line']}/registrations/{p['holder']}")
        assert response.status_code == 204, response.text
        p["holder"] = newcomer
        return self.registration_token(newcomer)

    async def _person_id(self, place: Place) -> str:
        return str((await self.person(place))["id"])

    async def _dead(self) -> str:
        return self.dead_message()

    def _new_member_body(self, place: Place) -> Callable[[], Awaitable[tuple[str, dict[str, Any]]]]:
        async def make() -> tuple[str, dict[str, Any]]:
            body = {"participant_id": await self._person_id(place), "role": "member"}
            return f"/v1/networks/{place.ids['local']}/members", body

        return make


async def key_for(client: Any, role: str) -> str:
    """A key of the role with its scope, made by the administrator; its secret is shown once."""
    body = {"name": f"matrix: {role}", "role": role, **ROLES[role]}
    response = await client.post("/v1/api-keys", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


def _content_problems(op: str, role: str, scope: str, place: Place, response: Any) -> list[str]:
    """What a 2xx answer shows that it should not, or lacks that it should."""
    found: list[str] = []
    text = response.text
    if role == CARRIER and op in CARRIER_LISTS:
        if place.ids["listed"] not in text:
            found.append(f"{op} {role} {scope}: the shop its carrier lists is missing from the answer")
        if place.ids["org"] in text:
            found.append(f"{op} {role} {scope}: the answer names a shop its carrier does not list")
    elif op in LISTED and (scope == "own" or role in NATIONWIDE) and place.ids[LISTED[op]] not in text:
        found.append(f"{op} {role} {scope}: the {LISTED[op]} in scope is missing from the answer")
    if scope == "foreign" and role not in NATIONWIDE:
        # A carrier integration sees the shops its carrier lists, wherever they are.
        seen = {place.ids["listed"]} if role == CARRIER else set()
        leaked = sorted(name for name in place.names() - seen if name in text)
        if leaked:
            found.append(f"{op} {role} {scope}: the answer names foreign objects {leaked}")
    return found


@pytest.mark.parametrize("role", list(ROLES))
async def test_matrix(client, role: str) -> None:
    world = World(client)
    await world.build()
    key = await key_for(client, role)
    admin = client.headers["Authorization"]
    mismatches: list[str] = []
    for op, (method, template) in sorted(operations(client.app).items()):
        rule = EXPECTED.get(op)
        if rule is None:
            continue  # test_every_operation_has_a_rule names it
        if isinstance(rule, Public):
            continue  # no credentials, so no role: test_public_operations_need_no_credentials
        for scope, place in (("own", world.own), ("foreign", world.foreign)):
            expected = rule[role][0 if scope == "own" else 1]
            client.headers["Authorization"] = admin  # fresh objects are the administrator's
            path, body = await world.request(op, place, stand_in=template if expected == 403 else None)
            client.headers["Authorization"] = f"Bearer {key}"
            response = await send(client, method, path, body)
            got = response.status_code
            if got != expected:
                detail = response.text[:160].replace("\n", " ")
                mismatches.append(f"{op} {role} {scope}: expected {expected}, got {got} — {detail}")
            elif 200 <= got < 300 and got != 204:
                mismatches.extend(_content_problems(op, role, scope, place, response))
    client.headers["Authorization"] = admin
    assert mismatches == [], "\n".join([f"{len(mismatches)} mismatches:", *mismatches])


@pytest.mark.parametrize("role", ["county_coordinator", "municipal_coordinator"])
async def test_only_national_administrators_change_a_national_network(client, role: str) -> None:
    """A national network is visible to every reader of networks, but only a national
    administrator may change it (PATCH answers 403). Its members are part of it: adding one,
    changing one's role or ending a membership is a change to the national network too."""
    world = World(client)
    await world.build(meetings=False)
    national = world.own.ids["national"]
    admin = client.headers["Authorization"]
    own_person = await world._person_id(world.own)
    foreign_member = (
        await world.post(
            f"/v1/networks/{national}/members",
            {"participant_id": await world._person_id(world.foreign), "role": "member"},
        )
    )["id"]
    client.headers["Authorization"] = f"Bearer {await key_for(client, role)}"
    members = f"/v1/networks/{national}/members"
    answers = {
        "read": (await client.get(f"/v1/networks/{national}")).status_code,
        "change": (await client.patch(f"/v1/networks/{national}", json={"description": "x"})).status_code,
        "add own person": (await client.post(members, json={"participant_id": own_person})).status_code,
        "change foreign member": (
            await client.patch(f"{members}/{foreign_member}", json={"role": "convenor"})
        ).status_code,
        "end foreign member": (await client.delete(f"{members}/{foreign_member}")).status_code,
    }
    client.headers["Authorization"] = admin
    after = (await client.get(f"{members}/{foreign_member}")).json()
    answers["foreign member afterwards"] = (after["role"], after["left_at"])
    assert answers == {
        "read": 200,
        "change": 403,
        "add own person": 403,
        "change foreign member": 403,
        "end foreign member": 403,
        "foreign member afterwards": ("member", None),
    }
