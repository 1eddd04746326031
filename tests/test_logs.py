"""No name, e-mail or phone number ever reaches the logs, whatever a full working day does."""

from __future__ import annotations

import logging

from tests.helpers import create, network_tree, pickup_point

PEOPLE = [
    {"name": "Zlatana Örnsköld", "email": "zlatana.ornskold@alvsby.example", "phone": "070-174 06 11"},
    {"name": "Quentin Vargklo", "email": "Quentin.Vargklo@lulea.example", "phone": "+46701740612"},
]
SECRETS = [
    "Zlatana",
    "Örnsköld",
    "ornskold",
    "Quentin",
    "Vargklo",
    "vargklo",
    "1740611",
    "1740612",
    "174 06 11",
    "ombudsmejl",
    "0920-55 44 33",
    "92055443",
]


async def test_a_full_scenario_logs_no_personal_data(client, tmn_logs, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    org = await create(
        client, "/v1/organizations", pickup_point(email="ombudsmejl@storgatan.example", phone="0920-55 44 33")
    )
    tree = await network_tree(client)
    people = [await create(client, "/v1/participants", p | {"organization_id": org["id"]}) for p in PEOPLE]
    for person in people:
        await client.post(f"/v1/networks/{tree['alvsbyn']}/members", json={"participant_id": person["id"]})
    # Searches, mistakes and conflicts carry the values in the request; none may be logged.
    await client.get("/v1/participants", params={"email": PEOPLE[0]["email"], "q": "Zlatana"})
    assert (await client.post("/v1/participants", json=PEOPLE[0])).status_code == 409
    assert (
        await client.post(
            "/v1/participants", json=PEOPLE[1] | {"email": "vargklo2@lulea.example", "phone": "Vargklo 12"}
        )
    ).status_code == 422
    assert (await client.post("/v1/participants", content=b'{"name": "Zlatana", ')).status_code == 400
    await client.patch(f"/v1/participants/{people[0]['id']}", json={"name": "Zlatana Ö. Örnsköld"})
    await client.get(f"/v1/participants/{people[0]['id']}/export")
    await client.post(f"/v1/participants/{people[1]['id']}/erase")
    await client.get("/v1/audit-events")
    await client.delete(f"/v1/email-holds/{PEOPLE[0]['email']}")  # an address in the path itself

    server_lines = list(tmn_logs) + [
        record.getMessage() for record in caplog.records if not record.name.startswith("httpx")
    ]
    assert any('"tmn.request"' in line for line in server_lines)
    leaks = [(secret, line) for line in server_lines for secret in SECRETS if secret.lower() in line.lower()]
    assert leaks == []


async def test_a_refused_request_is_logged_with_its_status_and_answered_with_its_id(
    client, tmn_logs: list[str]
) -> None:
    """Authentication answers before any route: its 401 still carries the request id, and the
    log line says 401, not 500."""
    import json

    del client.headers["Authorization"]
    response = await client.get("/v1/counties", headers={"X-Request-ID": "refused-request-1"})
    assert response.status_code == 401 and response.headers["X-Request-ID"] == "refused-request-1"
    assert response.headers["content-type"].startswith("application/problem+json")
    [line] = [json.loads(x) for x in tmn_logs if "refused-request-1" in x]
    assert line["status"] == 401
