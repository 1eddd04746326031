"""GDPR rights: everything held about a person can be exported, and a person can be erased."""

from __future__ import annotations

from typing import Any

from tests.helpers import create, network_tree, pickup_point, problem
from tests.test_auth import bearer, make_key

ANNA = {
    "name": "Anna Lindqvist",
    "email": "Anna.Lindqvist@alvsbyn.example",
    "phone": "070-174 06 05",
    "roles": ["municipal_coordinator"],
    "mailing_list_consent": True,
}


async def anna_at_work(client: Any) -> tuple[dict[str, Any], dict[str, str]]:
    org = await create(client, "/v1/organizations", pickup_point())
    person = await create(client, "/v1/participants", ANNA | {"organization_id": org["id"]})
    tree = await network_tree(client)
    response = await client.post(
        f"/v1/networks/{tree['alvsbyn']}/members", json={"participant_id": person["id"], "role": "convenor"}
    )
    assert response.status_code == 201
    return person, tree


async def test_export_holds_everything_about_the_person(client) -> None:
    person, tree = await anna_at_work(client)
    export = (await client.get(f"/v1/participants/{person['id']}/export")).json()
    assert export["participant"]["email"] == "Anna.Lindqvist@alvsbyn.example"
    assert export["participant"]["phone"] == "+46701740605"
    assert [e["organization_name"] for e in export["employments"]] == ["Storgatans Livs"]
    assert [(m["network_id"], m["role"]) for m in export["memberships"]] == [(tree["alvsbyn"], "convenor")]
    assert [e["action"] for e in export["audit_events"]] == ["create"]
    assert export["exported_at"]


async def test_erase_removes_identity_and_keeps_the_counts(client) -> None:
    person, tree = await anna_at_work(client)
    path = f"/v1/participants/{person['id']}"
    erased = await client.post(f"{path}/erase")
    assert erased.status_code == 200
    body = erased.json()
    assert body["name"] == "Raderad person"
    assert body["phone"] is None and "lindqvist" not in body["email"].lower()
    assert body["mailing_list_consent"] is False and body["erased_at"]

    # What counts survives: the membership and the employment are still there.
    members = (await client.get(f"/v1/networks/{tree['alvsbyn']}/members")).json()["items"]
    assert [m["participant_id"] for m in members] == [person["id"]]
    assert members[0]["participant_name"] == "Raderad person"
    assert len((await client.get(f"{path}/employments")).json()) == 1

    # Nothing of the identity is left anywhere the API can show.
    export = (await client.get(f"{path}/export")).text
    for value in ("Anna", "Lindqvist", "+46701740605", "alvsbyn.example"):
        assert value not in export
    assert "Anna" not in (await client.get("/v1/audit-events", params={"limit": 200})).text

    # The address is free again, and the erased record no longer changes.
    assert (
        await client.post("/v1/participants", json={"name": "Anna L", "email": ANNA["email"]})
    ).status_code == 201
    problem(await client.patch(path, json={"name": "Anna"}), 409)
    assert (await client.post(f"{path}/erase")).status_code == 200  # idempotent
    actions = [e["action"] for e in (await client.get(f"{path}/export")).json()["audit_events"]]
    assert actions == ["create", "erase"]


async def test_gdpr_requests_follow_scope(client) -> None:
    person, _ = await anna_at_work(client)
    lulea = (await make_key(client, "municipal_coordinator", municipality_code="2580"))["key"]
    alvsbyn = (await make_key(client, "municipal_coordinator", municipality_code="2560"))["key"]
    viewer = (await make_key(client, "viewer", county_code="25"))["key"]
    problem(await client.get(f"/v1/participants/{person['id']}/export", headers=bearer(lulea)), 404)
    problem(await client.post(f"/v1/participants/{person['id']}/erase", headers=bearer(lulea)), 404)
    problem(await client.get(f"/v1/participants/{person['id']}/export", headers=bearer(viewer)), 403)
    assert (
        await client.get(f"/v1/participants/{person['id']}/export", headers=bearer(alvsbyn))
    ).status_code == 200
