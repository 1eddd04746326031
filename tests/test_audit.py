"""The audit log: every write, who and when, fields changed, personal values redacted, append-only."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tests.helpers import create, pickup_point, problem
from tests.test_auth import bearer, make_key


async def events(client: Any, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/v1/audit-events", params={"limit": 200} | params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_create_is_recorded_with_who_when_and_what(client) -> None:
    response = await client.post(
        "/v1/organizations",
        json=pickup_point(email="ombud@storgatan.example", phone="0920-123 45"),
        headers={"X-Request-ID": "req-audit-1"},
    )
    org = response.json()
    [event] = await events(client, entity="organization", entity_id=org["id"])
    assert event["action"] == "create"
    assert event["principal_id"] == "key:testadmn"
    assert event["request_id"] == "req-audit-1"
    assert event["changes"]["name"] == {"from": None, "to": "Storgatans Livs"}
    assert event["changes"]["municipality_code"]["to"] == "2560"
    # Contact details are personal data: the event says they were set, not what they are.
    assert event["changes"]["email"] == {"from": None, "to": "[redacted]"}
    assert event["changes"]["phone"] == {"from": None, "to": "[redacted]"}


async def test_updates_list_changed_fields_and_redact_people(client) -> None:
    person = await create(client, "/v1/participants", {"name": "Anna Berg", "email": "anna@alvsby.example"})
    await client.patch(f"/v1/participants/{person['id']}", json={"name": "Anna Lind", "language": "en"})
    [update] = await events(client, entity="participant", entity_id=person["id"], action="update")
    assert update["changes"] == {
        "name": {"from": "[redacted]", "to": "[redacted]"},
        "language": {"from": "sv", "to": "en"},
    }
    dump = str(await events(client, entity="participant"))
    assert "Anna" not in dump and "anna@" not in dump


async def test_archive_and_membership_actions(client) -> None:
    org = await create(client, "/v1/organizations", pickup_point())
    await client.post(f"/v1/organizations/{org['id']}/archive")
    await client.post(f"/v1/organizations/{org['id']}/restore")
    actions = [e["action"] for e in await events(client, entity="organization", entity_id=org["id"])]
    assert actions == ["restore", "archive", "create"]  # newest first


async def test_a_failed_request_leaves_no_audit_event(client) -> None:
    before = len(await events(client))
    response = await client.post("/v1/organizations", json=pickup_point(municipality_code="9999"))
    assert response.status_code == 422
    assert len(await events(client)) == before


async def test_filters_and_paging(client) -> None:
    for i in range(3):
        await create(client, "/v1/organizations", {"kind": "customs", "name": f"Tull {i}"})
    page = (await client.get("/v1/audit-events", params={"entity": "organization", "limit": 2})).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = (
        await client.get(
            "/v1/audit-events", params={"entity": "organization", "limit": 2, "cursor": page["next_cursor"]}
        )
    ).json()
    ids = [e["id"] for e in page["items"] + rest["items"]]
    assert len(ids) == len(set(ids)) == 3
    assert ids == sorted(ids, reverse=True)
    assert await events(client, principal="key:nobody") == []
    since = page["items"][0]["occurred_at"]
    assert len(await events(client, since=since)) >= 1
    response = await client.get("/v1/audit-events", params={"since": "2026-01-01T00:00:00"})
    assert problem(response, 422)["errors"][0]["field"] == "since"


async def test_who_may_read_the_audit_log(client) -> None:
    auditor = (await make_key(client, "auditor"))["key"]
    coordinator = (await make_key(client, "municipal_coordinator", municipality_code="2560"))["key"]
    assert (await client.get("/v1/audit-events", headers=bearer(auditor))).status_code == 200
    problem(await client.get("/v1/audit-events", headers=bearer(coordinator)), 403)
    # Auditors read the log only.
    problem(await client.get("/v1/organizations", headers=bearer(auditor)), 403)


async def test_the_log_is_append_only_in_the_database(client) -> None:
    await create(client, "/v1/organizations", {"kind": "customs", "name": "Tullverket"})

    async def tamper(statement: str) -> str:
        async with client.app.state.sessionmaker() as session:
            try:
                await session.execute(text(statement))
            except Exception as exc:
                await session.rollback()
                return type(exc).__name__
            await session.rollback()
            return "allowed"

    for statement in ("UPDATE audit_event SET action = 'nothing'", "DELETE FROM audit_event"):
        assert client.blocking_portal.call(tamper, statement) != "allowed", statement


@pytest.mark.parametrize("action", ["create", "update"])
async def test_key_secrets_never_reach_the_log(client, action: str) -> None:
    created = await make_key(client, "viewer")
    if action == "update":
        await client.post(f"/v1/api-keys/{created['id']}/revoke")
    for event in await events(client, entity="api_key", entity_id=created["id"]):
        assert created["key"] not in str(event)
        assert event["changes"].get("secret_hash", {"to": "[redacted]"})["to"] == "[redacted]"
