"""The authorization matrix: every operation of the OpenAPI document × every role × own and
foreign scope, against an explicit table of expected answers.

An operation missing from EXPECTED fails the build, so a new endpoint needs a rule here.
Own scope is Älvsbyn (2560, county 25); foreign is Stockholm (0180, county 01).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import pytest

from service.outbox.models import EmailHold, OutboxStatus
from service.outbox.service import OutboxService
from service.signing import sign
from service.webhooks.service import WebhookService
from tests.helpers import context, pickup_point
from tests.test_webhooks import event

ROLES: dict[str, dict[str, str]] = {
    "national_admin": {},
    "county_coordinator": {"county_code": "25"},
    "municipal_coordinator": {"municipality_code": "2560"},
    "instructor": {"county_code": "25"},
    "carrier_integration": {"carrier": "postnord"},
    "viewer": {"county_code": "25"},
    "auditor": {},
}
A, C, M, I, K, V, U = ROLES  # noqa: E741 - one letter per role keeps the table readable
ALL = tuple(ROLES)


def rule(default: tuple[int, int], **roles: tuple[int, int]) -> dict[str, tuple[int, int]]:
    """(own, foreign) answers: `default` for roles not named."""
    names = {"A": A, "C": C, "M": M, "I": I, "K": K, "V": V, "U": U}
    table = dict.fromkeys(ALL, default)
    table.update({names[k]: v for k, v in roles.items()})
    return table


DENY = (403, 403)
# Readers of places: everyone but the auditor; geography is not scoped.
GEO = rule((200, 200), U=DENY)
# Scoped reads of one object: admin everywhere, scoped readers in their scope, 404 elsewhere.
ORG_ONE = rule((200, 404), A=(200, 200), K=(404, 404), U=DENY)
ORG_LIST = rule((200, 200), U=DENY)
NET_ONE = rule((200, 404), A=(200, 200), K=DENY, U=DENY)
NET_LIST = rule((200, 200), K=DENY, U=DENY)
PART_ONE = rule(DENY, A=(200, 200), C=(200, 404), M=(200, 404), V=(200, 404))
PART_LIST = rule(DENY, A=(200, 200), C=(200, 200), M=(200, 200), V=(200, 200))


def writes(ok: int, foreign: int) -> dict[str, tuple[int, int]]:
    """Coordinators write in their scope; `foreign` is their answer elsewhere (403 for a create
    placed outside the scope, 404 for an object that does not exist for them)."""
    return rule(DENY, A=(ok, ok), C=(ok, foreign), M=(ok, foreign))


ADMIN_ONLY_200 = rule(DENY, A=(200, 200))
PUBLIC = "public"

EXPECTED: dict[str, Any] = {
    "HealthLiveLive": PUBLIC,
    "HealthReadyReady": PUBLIC,
    "ProblemsListProblemTypes": PUBLIC,
    "ProblemsSlugGetProblemType": PUBLIC,
    "V1UnsubscribeTokenUnsubscribePage": PUBLIC,
    "V1UnsubscribeTokenUnsubscribeNow": PUBLIC,
    "V1CountiesListCounties": GEO,
    "V1CountiesCodeGetCounty": GEO,
    "V1MunicipalitiesListMunicipalities": GEO,
    "V1MunicipalitiesCodeGetMunicipality": GEO,
    # Contacts are for everyone at work in the method; people appear only with their consent.
    "V1MunicipalitiesCodeContactsMunicipalityContacts": GEO,
    "V1MunicipalitiesCodeContactsVcfMunicipalityContactsVcard": GEO,
    "V1OrganizationsListOrganizations": ORG_LIST,
    "V1OrganizationsOrganizationIdGetOrganization": ORG_ONE,
    "V1OrganizationsCreateOrganization": writes(201, 403),
    "V1OrganizationsOrganizationIdUpdateOrganization": writes(200, 404),
    "V1OrganizationsOrganizationIdArchiveArchiveOrganization": writes(200, 404),
    "V1OrganizationsOrganizationIdRestoreRestoreOrganization": writes(200, 404),
    "V1NetworksListNetworks": NET_LIST,
    "V1NetworksNetworkIdGetNetwork": NET_ONE,
    "V1NetworksNetworkIdTreeGetTree": NET_ONE,
    "V1NetworksCreateNetwork": writes(201, 403),
    "V1NetworksNetworkIdUpdateNetwork": writes(200, 404),
    "V1NetworksNetworkIdMembersListMembers": NET_ONE,
    "V1NetworksNetworkIdMembersMemberIdGetMember": NET_ONE,
    "V1NetworksNetworkIdMembersAddMember": writes(201, 404),
    "V1NetworksNetworkIdMembersMemberIdUpdateMember": writes(200, 404),
    "V1NetworksNetworkIdMembersMemberIdEndMember": writes(204, 404),
    "V1ParticipantsListParticipants": PART_LIST,
    "V1ParticipantsParticipantIdGetParticipant": PART_ONE,
    "V1ParticipantsParticipantIdEmploymentsListEmployments": PART_ONE,
    # A foreign employer does not exist for the caller: the organization_id is a field error.
    "V1ParticipantsCreateParticipant": writes(201, 422),
    "V1ParticipantsParticipantIdUpdateParticipant": writes(200, 404),
    "V1ParticipantsParticipantIdLeaveLeaveOrganization": writes(200, 404),
    "V1ParticipantsParticipantIdExportExportParticipant": writes(200, 404),
    "V1ParticipantsParticipantIdEraseEraseParticipant": writes(200, 404),
    "V1ApiKeysListApiKeys": ADMIN_ONLY_200,
    "V1ApiKeysCreateApiKey": rule(DENY, A=(201, 201)),
    "V1ApiKeysKeyIdGetApiKey": ADMIN_ONLY_200,
    "V1ApiKeysKeyIdRevokeRevokeApiKey": ADMIN_ONLY_200,
    "V1AuditEventsListAuditEvents": rule(DENY, A=(200, 200), U=(200, 200)),
    "V1OutboxListOutbox": ADMIN_ONLY_200,
    "V1OutboxMessageIdGetOutboxMessage": ADMIN_ONLY_200,
    "V1OutboxMessageIdRetryRetryOutboxMessage": ADMIN_ONLY_200,
    "V1PluginsListPlugins": ADMIN_ONLY_200,
    "V1EmailHoldsListEmailHolds": writes(200, 200),
    "V1EmailHoldsAddressClearEmailHold": writes(204, 404),
    "V1WebhooksListWebhooks": writes(200, 200),
    "V1WebhooksCreateWebhook": writes(201, 403),
    "V1WebhooksWebhookIdGetWebhook": writes(200, 404),
    "V1WebhooksWebhookIdUpdateWebhook": writes(200, 404),
    "V1WebhooksWebhookIdRotateSecretRotateWebhookSecret": writes(200, 404),
    "V1WebhooksWebhookIdEnableEnableWebhook": writes(200, 404),
    "V1WebhooksWebhookIdDeliveriesListWebhookDeliveries": writes(200, 404),
    "V1WebhooksWebhookIdDeliveriesDeliveryIdReplayReplayWebhookDelivery": writes(202, 404),
}


def operations(client: Any) -> dict[str, tuple[str, str]]:
    """operationId -> (method, path template), from the app's own OpenAPI document."""
    paths = client.app.openapi_schema.to_schema()["paths"]
    return {
        op["operationId"]: (method.upper(), path)
        for path, item in paths.items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    }


def test_every_operation_has_a_rule(client) -> None:
    assert set(operations(client)) == set(EXPECTED)


@dataclass
class Place:
    """The objects of one scope: Älvsbyn (own) or Stockholm (foreign)."""

    municipality: str
    county: str
    ids: dict[str, str] = field(default_factory=dict)


class World:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.own = Place("2560", "25")
        self.foreign = Place("0180", "01")
        self.counter = itertools.count()

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post(path, json=body)
        assert response.status_code in (200, 201, 202), (path, response.text)
        result: dict[str, Any] = response.json()
        return result

    def unique(self) -> int:
        return next(self.counter)

    async def build(self) -> None:
        national = await self.post("/v1/networks", {"name": "Nationellt", "kind": "national_contacts"})
        for place in (self.own, self.foreign):
            place.ids["regional"] = (
                await self.post(
                    "/v1/networks",
                    {
                        "name": f"Län {place.county}",
                        "kind": "county_group",
                        "parent_id": national["id"],
                        "county_codes": [place.county],
                    },
                )
            )["id"]
            place.ids["local"] = (
                await self.post(
                    "/v1/networks",
                    {
                        "name": f"LAG {place.municipality}",
                        "kind": "local_working_group",
                        "parent_id": place.ids["regional"],
                        "municipality_code": place.municipality,
                    },
                )
            )["id"]
            place.ids["org"] = await self.org(place)
            place.ids["person"] = await self.person(place)
            place.ids["member"] = await self.member(place)
            place.ids["webhook"] = (
                await self.post(
                    "/v1/webhooks",
                    {
                        "name": f"Hook {place.municipality}",
                        "url": "https://hooks.example/tmn",
                        "municipality_code": place.municipality,
                    },
                )
            )["id"]

    async def org(self, place: Place) -> str:
        body = pickup_point(f"Ombud {self.unique()}", municipality=place.municipality)
        return str((await self.post("/v1/organizations", body))["id"])

    async def person(self, place: Place) -> str:
        body = {
            "name": "Person",
            "email": f"p{self.unique()}-{uuid4().hex[:6]}@ombud.example",
            "organization_id": place.ids["org"],
            "mailing_list_consent": True,
        }
        return str((await self.post("/v1/participants", body))["id"])

    async def member(self, place: Place) -> str:
        body = {"participant_id": await self.person(place), "role": "member"}
        return str((await self.post(f"/v1/networks/{place.ids['local']}/members", body))["id"])

    async def key(self) -> str:
        return str((await self.post("/v1/api-keys", {"name": "k", "role": "viewer"}))["id"])

    def portal(self, fn: Callable[..., Any], *args: Any) -> Any:
        async def run() -> Any:
            async with self.client.app.state.sessionmaker() as session:
                result = await fn(session, *args)
                await session.commit()
                return result

        return self.client.blocking_portal.call(run)

    def dead_message(self) -> str:
        async def make(session: Any) -> str:
            message = await OutboxService(context(session), self.client.app.state.settings).enqueue_email(
                to="x@ombud.example", subject="S", text="T"
            )
            message.status = OutboxStatus.DEAD
            return str(message.id)

        return str(self.portal(make))

    async def hold(self, place: Place) -> str:
        email = (await self.client.get(f"/v1/participants/{await self.person(place)}")).json()["email"]

        async def make(session: Any) -> None:
            session.add(EmailHold(address=email.lower(), reason="SMTP 550"))

        self.portal(make)
        return str(email)

    def delivery(self, place: Place) -> str:
        async def make(session: Any) -> str:
            service = WebhookService(context(session), self.client.app.state.settings)
            await service.publish(event(municipality=place.municipality))
            [found] = await service.deliveries(UUID(place.ids["webhook"]))
            return str(found.id)

        return str(self.portal(make))

    async def request(self, op: str, place: Place) -> tuple[str, dict[str, Any] | None]:
        """The path (with parameters) and body for an operation aimed at a place."""
        p = place.ids
        n, m = self.unique(), place.municipality
        table: dict[str, Callable[[], Any]] = {
            "HealthLiveLive": lambda: ("/health/live", None),
            "HealthReadyReady": lambda: ("/health/ready", None),
            "ProblemsListProblemTypes": lambda: ("/problems", None),
            "ProblemsSlugGetProblemType": lambda: ("/problems/not-found", None),
            "V1UnsubscribeTokenUnsubscribePage": lambda: (f"/v1/unsubscribe/{self.token(p['person'])}", None),
            "V1UnsubscribeTokenUnsubscribeNow": lambda: (f"/v1/unsubscribe/{self.token(p['person'])}", None),
            "V1CountiesListCounties": lambda: ("/v1/counties", None),
            "V1CountiesCodeGetCounty": lambda: (f"/v1/counties/{place.county}", None),
            "V1MunicipalitiesListMunicipalities": lambda: (f"/v1/municipalities?county={place.county}", None),
            "V1MunicipalitiesCodeGetMunicipality": lambda: (f"/v1/municipalities/{m}", None),
            "V1MunicipalitiesCodeContactsMunicipalityContacts": lambda: (
                f"/v1/municipalities/{m}/contacts",
                None,
            ),
            "V1MunicipalitiesCodeContactsVcfMunicipalityContactsVcard": lambda: (
                f"/v1/municipalities/{m}/contacts.vcf",
                None,
            ),
            "V1OrganizationsListOrganizations": lambda: (f"/v1/organizations?municipality={m}", None),
            "V1OrganizationsOrganizationIdGetOrganization": lambda: (f"/v1/organizations/{p['org']}", None),
            "V1OrganizationsCreateOrganization": lambda: (
                "/v1/organizations",
                pickup_point(f"Nytt {n}", municipality=m),
            ),
            "V1OrganizationsOrganizationIdUpdateOrganization": lambda: (
                f"/v1/organizations/{p['org']}",
                {"name": f"Namn {n}"},
            ),
            "V1NetworksListNetworks": lambda: (f"/v1/networks?county={place.county}", None),
            "V1NetworksNetworkIdGetNetwork": lambda: (f"/v1/networks/{p['local']}", None),
            "V1NetworksNetworkIdTreeGetTree": lambda: (f"/v1/networks/{p['regional']}/tree", None),
            "V1NetworksCreateNetwork": lambda: (
                "/v1/networks",
                {
                    "name": f"Nätverk {n}",
                    "kind": "local_network",
                    "parent_id": p["regional"],
                    "municipality_code": m,
                },
            ),
            "V1NetworksNetworkIdUpdateNetwork": lambda: (
                f"/v1/networks/{p['local']}",
                {"description": f"d{n}"},
            ),
            "V1NetworksNetworkIdMembersListMembers": lambda: (f"/v1/networks/{p['local']}/members", None),
            "V1NetworksNetworkIdMembersMemberIdGetMember": lambda: (
                f"/v1/networks/{p['local']}/members/{p['member']}",
                None,
            ),
            "V1NetworksNetworkIdMembersMemberIdUpdateMember": lambda: (
                f"/v1/networks/{p['local']}/members/{p['member']}",
                {"role": "representative"},
            ),
            "V1ParticipantsListParticipants": lambda: (f"/v1/participants?municipality={m}", None),
            "V1ParticipantsParticipantIdGetParticipant": lambda: (f"/v1/participants/{p['person']}", None),
            "V1ParticipantsParticipantIdEmploymentsListEmployments": lambda: (
                f"/v1/participants/{p['person']}/employments",
                None,
            ),
            "V1ParticipantsParticipantIdExportExportParticipant": lambda: (
                f"/v1/participants/{p['person']}/export",
                None,
            ),
            "V1ParticipantsCreateParticipant": lambda: (
                "/v1/participants",
                {
                    "name": "Ny",
                    "email": f"ny{n}-{uuid4().hex[:6]}@ombud.example",
                    "organization_id": p["org"],
                },
            ),
            "V1ParticipantsParticipantIdUpdateParticipant": lambda: (
                f"/v1/participants/{p['person']}",
                {"language": "en"},
            ),
            "V1ApiKeysListApiKeys": lambda: ("/v1/api-keys", None),
            "V1ApiKeysCreateApiKey": lambda: ("/v1/api-keys", {"name": f"k{n}", "role": "viewer"}),
            "V1AuditEventsListAuditEvents": lambda: ("/v1/audit-events", None),
            "V1OutboxListOutbox": lambda: ("/v1/outbox", None),
            "V1PluginsListPlugins": lambda: ("/v1/plugins", None),
            "V1EmailHoldsListEmailHolds": lambda: ("/v1/email-holds", None),
            "V1WebhooksListWebhooks": lambda: ("/v1/webhooks", None),
            "V1WebhooksCreateWebhook": lambda: (
                "/v1/webhooks",
                {"name": f"h{n}", "url": "https://h.example", "municipality_code": m},
            ),
            "V1WebhooksWebhookIdGetWebhook": lambda: (f"/v1/webhooks/{p['webhook']}", None),
            "V1WebhooksWebhookIdUpdateWebhook": lambda: (f"/v1/webhooks/{p['webhook']}", {"name": f"h{n}"}),
            "V1WebhooksWebhookIdRotateSecretRotateWebhookSecret": lambda: (
                f"/v1/webhooks/{p['webhook']}/rotate-secret",
                None,
            ),
            "V1WebhooksWebhookIdEnableEnableWebhook": lambda: (f"/v1/webhooks/{p['webhook']}/enable", None),
            "V1WebhooksWebhookIdDeliveriesListWebhookDeliveries": lambda: (
                f"/v1/webhooks/{p['webhook']}/deliveries",
                None,
            ),
        }
        if op in table:
            path, body = table[op]()
            return path, body
        # Operations that change or end something act on a fresh object, so they cannot disturb
        # the next request.
        if op.startswith("V1OrganizationsOrganizationId"):
            verb = "archive" if "Archive" in op else "restore"
            return f"/v1/organizations/{await self.org(place)}/{verb}", None
        if op == "V1NetworksNetworkIdMembersAddMember":
            return f"/v1/networks/{p['local']}/members", {"participant_id": await self.person(place)}
        if op == "V1NetworksNetworkIdMembersMemberIdEndMember":
            return f"/v1/networks/{p['local']}/members/{await self.member(place)}", None
        if op == "V1ParticipantsParticipantIdLeaveLeaveOrganization":
            return f"/v1/participants/{await self.person(place)}/leave", None
        if op == "V1ParticipantsParticipantIdEraseEraseParticipant":
            return f"/v1/participants/{await self.person(place)}/erase", None
        if op == "V1ApiKeysKeyIdGetApiKey":
            return f"/v1/api-keys/{await self.key()}", None
        if op == "V1ApiKeysKeyIdRevokeRevokeApiKey":
            return f"/v1/api-keys/{await self.key()}/revoke", None
        if op == "V1OutboxMessageIdGetOutboxMessage":
            return f"/v1/outbox/{self.dead_message()}", None
        if op == "V1OutboxMessageIdRetryRetryOutboxMessage":
            return f"/v1/outbox/{self.dead_message()}/retry", None
        if op == "V1EmailHoldsAddressClearEmailHold":
            return f"/v1/email-holds/{await self.hold(place)}", None
        if op == "V1WebhooksWebhookIdDeliveriesDeliveryIdReplayReplayWebhookDelivery":
            return f"/v1/webhooks/{p['webhook']}/deliveries/{self.delivery(place)}/replay", None
        raise AssertionError(f"no request for {op}")

    def token(self, participant_id: str) -> str:
        return sign(self.client.app.state.settings, "unsubscribe", participant_id)


@pytest.mark.parametrize("role", ALL)
async def test_matrix(client, role: str) -> None:
    world = World(client)
    await world.build()
    created = await client.post("/v1/api-keys", json={"name": f"matrix {role}", "role": role, **ROLES[role]})
    key = created.json()["key"]
    admin = client.headers["Authorization"]
    mismatches: list[str] = []
    for op, (method, _template) in sorted(operations(client).items()):
        rule_for = EXPECTED.get(op)
        if rule_for is None:
            continue  # test_every_operation_has_a_rule reports it
        for scope, place in (("own", world.own), ("foreign", world.foreign)):
            client.headers["Authorization"] = admin
            path, body = await world.request(op, place)
            if rule_for == PUBLIC:
                client.headers.pop("Authorization")
                expected = 200
            else:
                client.headers["Authorization"] = f"Bearer {key}"
                expected = rule_for[role][0 if scope == "own" else 1]
            response = await client.request(method, path, json=body)
            if response.status_code != expected:
                mismatches.append(f"{op} {scope}: expected {expected}, got {response.status_code}")
    client.headers["Authorization"] = admin
    assert mismatches == []
