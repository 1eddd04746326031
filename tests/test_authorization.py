"""The authorization matrix: every operation of the OpenAPI document × every role × own and
foreign scope, against an explicit table of expected answers (EXPECTED, below).

An operation missing from EXPECTED fails the build, so a new endpoint needs a rule here.
Own scope is Älvsbyn (2560, county 25); foreign is Stockholm (0180, county 01). Besides the
status code, the matrix checks that lists show the caller's own objects and that no answer a
scoped role gets about the foreign world names anything in it (existence does not leak).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import pytest

from service.db import utcnow
from service.outbox.models import EmailHold, OutboxStatus
from service.outbox.service import OutboxService
from service.pluginspec import DomainEvent
from service.signing import sign
from service.webhooks.service import WebhookService
from tests.helpers import context, pickup_point, problem

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
NONE_VISIBLE = (404, 404)  # carrier integrations see no organization yet
PUBLIC = "public"  # no Authorization at all; 200

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

EXPECTED: dict[str, Rule | str] = {
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
}
# The only rows a carrier integration sees are pickup points linked to it; none are, yet.
EMPTY_FOR_CARRIER = {"V1OrganizationsListOrganizations"}

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
    incomplete = [op for op, rule in EXPECTED.items() if rule != PUBLIC and set(rule) != set(ROLES)]
    assert incomplete == []


async def test_public_operations_need_no_credentials(client) -> None:
    world = World(client)
    await world.build()
    del client.headers["Authorization"]
    wrong: list[str] = []
    for op, (method, _) in sorted(operations(client.app).items()):
        if EXPECTED.get(op) != PUBLIC:
            continue
        path, _body = await world.request(op, world.own)
        response = await client.request(method, path)
        if response.status_code != 200:
            wrong.append(f"{op} {method} {path}: got {response.status_code}")
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
        if EXPECTED.get(op) == PUBLIC:
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
    ids: dict[str, str] = field(default_factory=dict)

    def names(self) -> set[str]:
        """Everything a scoped caller outside this place must never be told."""
        return {v for k, v in self.ids.items() if k != "national"}


class World:
    """The fixture world, created by the national administrator (the client's default header)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.own = Place("2560", "25")
        self.foreign = Place("0180", "01")
        self.counter = itertools.count()
        self.key_id = ""

    def unique(self) -> int:
        return next(self.counter)

    async def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.client.post(path, json=body)
        assert response.status_code in (200, 201), (path, response.text)
        result: dict[str, Any] = response.json()
        return result

    async def build(self) -> None:
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
        self.key_id = (await self.post("/v1/api-keys", {"name": "a viewer's key", "role": "viewer"}))["id"]

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

    # --- the request for each operation ----------------------------------------------------------

    async def request(self, op: str, place: Place) -> tuple[str, dict[str, Any] | None]:
        """The path (with parameters) and the body of an operation aimed at a place."""
        p, m, c, n = place.ids, place.municipality, place.county, self.unique()
        org, net, person, hook = p["org"], p["local"], p["person"], p["webhook"]
        simple: dict[str, tuple[str, dict[str, Any] | None]] = {
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
        }
        if op in simple:
            return simple[op]
        fresh: dict[str, Callable[[], Awaitable[tuple[str, dict[str, Any] | None]]]] = {
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
        }
        if op in fresh:
            return await fresh[op]()
        raise AssertionError(f"no request for {op}: add one to World.request")

    @staticmethod
    async def _path(template: str, ident: Awaitable[str]) -> tuple[str, None]:
        return template.format(await ident), None

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
    if role == "carrier_integration" and op in EMPTY_FOR_CARRIER:
        if response.json()["items"] != []:
            found.append(f"{op} {role} {scope}: a carrier integration sees organizations")
    elif op in LISTED and (scope == "own" or role in NATIONWIDE) and place.ids[LISTED[op]] not in text:
        found.append(f"{op} {role} {scope}: the {LISTED[op]} in scope is missing from the answer")
    if scope == "foreign" and role not in NATIONWIDE:
        leaked = sorted(name for name in place.names() if name in text)
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
    for op, (method, _) in sorted(operations(client.app).items()):
        rule = EXPECTED.get(op)
        if rule is None:
            continue  # test_every_operation_has_a_rule names it
        for scope, place in (("own", world.own), ("foreign", world.foreign)):
            client.headers["Authorization"] = admin  # fresh objects are the administrator's
            path, body = await world.request(op, place)
            if rule == PUBLIC:
                del client.headers["Authorization"]
                expected = 200
            else:
                assert isinstance(rule, dict)
                client.headers["Authorization"] = f"Bearer {key}"
                expected = rule[role][0 if scope == "own" else 1]
            response = await client.request(method, path, json=body)
            got = response.status_code
            if got != expected:
                detail = response.text[:160].replace("\n", " ")
                mismatches.append(f"{op} {role} {scope}: expected {expected}, got {got} — {detail}")
            elif 200 <= got < 300 and rule != PUBLIC and got != 204:
                mismatches.extend(_content_problems(op, role, scope, place, response))
    client.headers["Authorization"] = admin
    assert mismatches == [], "\n".join([f"{len(mismatches)} mismatches:", *mismatches])


@pytest.mark.parametrize("role", ["county_coordinator", "municipal_coordinator"])
async def test_only_national_administrators_change_a_national_network(client, role: str) -> None:
    """A national network is visible to every reader of networks, but only a national
    administrator may change it (PATCH answers 403). Its members are part of it: adding one,
    changing one's role or ending a membership is a change to the national network too."""
    world = World(client)
    await world.build()
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
