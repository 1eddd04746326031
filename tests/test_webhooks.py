"""Webhooks: subscriptions, Standard Webhooks signatures verified by a real receiver on loopback,
retries through the outbox, replay, rotation, and 410 Gone disabling the endpoint."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import update

from service.db import create_sessionmaker, utcnow
from service.outbox.models import OutboxMessage
from service.outbox.service import OutboxWorker
from service.pluginhost import PluginHost
from service.pluginspec import DomainEvent
from service.webhooks.service import WebhookService
from tests.helpers import context, problem
from tests.test_auth import bearer, make_key


class Receiver:
    """A municipal system's endpoint: records calls and answers with a chosen status."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.status = 204
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.calls.append(
                    {"headers": dict(self.headers), "body": self.rfile.read(length).decode()}
                )
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tmn-events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def verify(secret: str, headers: dict[str, str], body: str) -> bool:
    """Standard Webhooks verification, written from the specification (not from our sender)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body}".encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [s.split(",", 1)[1] for s in headers["webhook-signature"].split(" ")]
    return any(hmac.compare_digest(expected, g) for g in given)


def event(kind: str = "meeting.scheduled", municipality: str = "2560") -> DomainEvent:
    return DomainEvent(
        id=uuid4().hex,
        type=kind,
        occurred_at=utcnow().isoformat(),
        municipality_code=municipality,
        county_code=municipality[:2],
        data={"meeting_id": "m-1", "title": "Samverkansmöte"},
    )


def run(client: Any, coroutine_fn: Any, *args: Any) -> Any:
    async def call() -> Any:
        async with client.app.state.sessionmaker() as session:
            session.info["principal_id"] = "tests"
            result = await coroutine_fn(session, *args)
            await session.commit()
            return result

    return client.blocking_portal.call(call)


async def publish(session: Any, settings: Any, ev: DomainEvent) -> int:
    return await WebhookService(context(session), settings).publish(ev)


async def deliver(session: Any, settings: Any) -> int:
    worker = OutboxWorker(
        create_sessionmaker(session.bind, join_transaction_mode="create_savepoint"),
        PluginHost(settings),
        settings,
    )
    total = 0
    while attempted := await worker.run_once():
        total += attempted
    return total


async def test_events_arrive_signed_and_filtered(client, receiver) -> None:
    settings = client.app.state.settings
    created = await client.post(
        "/v1/webhooks",
        json={
            "name": "Älvsbyn ärendesystem",
            "url": receiver.url,
            "event_types": ["meeting.scheduled"],
            "municipality_code": "2560",
        },
    )
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    assert "secret" not in (await client.get(f"/v1/webhooks/{created.json()['id']}")).json()

    assert run(client, publish, settings, event()) == 1
    assert run(client, publish, settings, event("meeting.cancelled")) == 0  # not subscribed
    assert run(client, publish, settings, event(municipality="2580")) == 0  # another place
    run(client, deliver, settings)

    [call] = receiver.calls
    assert verify(secret, call["headers"], call["body"])
    assert json.loads(call["body"])["type"] == "meeting.scheduled"
    assert json.loads(call["body"])["data"]["title"] == "Samverkansmöte"
    deliveries = (await client.get(f"/v1/webhooks/{created.json()['id']}/deliveries")).json()
    assert [d["status"] for d in deliveries] == ["sent"]


async def test_failures_are_retried_and_deliveries_replayed(client, receiver) -> None:
    settings = client.app.state.settings
    hook = (await client.post("/v1/webhooks", json={"name": "System", "url": receiver.url})).json()
    receiver.status = 503
    run(client, publish, settings, event())
    run(client, deliver, settings)
    [delivery] = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()
    assert (
        delivery["status"] == "pending" and delivery["attempts"] == 1 and delivery["last_error"] == "HTTP 503"
    )

    receiver.status = 200

    async def due(session: Any) -> None:
        await session.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))

    run(client, due)
    run(client, deliver, settings)
    first, second = receiver.calls
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]
    replay = await client.post(f"/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/replay")
    assert replay.status_code == 202
    run(client, deliver, settings)
    assert len(receiver.calls) == 3
    assert len({c["headers"]["webhook-id"] for c in receiver.calls}) == 1  # the same event each time
    assert all(verify(hook["secret"], c["headers"], c["body"]) for c in receiver.calls)


async def test_rotation_signs_with_both_secrets(client, receiver) -> None:
    settings = client.app.state.settings
    hook = (await client.post("/v1/webhooks", json={"name": "System", "url": receiver.url})).json()
    rotated = (await client.post(f"/v1/webhooks/{hook['id']}/rotate-secret")).json()
    assert rotated["secret"] != hook["secret"] and rotated["secret_count"] == 2
    run(client, publish, settings, event())
    run(client, deliver, settings)
    [call] = receiver.calls
    assert verify(hook["secret"], call["headers"], call["body"])
    assert verify(rotated["secret"], call["headers"], call["body"])
    assert len(call["headers"]["webhook-signature"].split(" ")) == 2


async def test_410_gone_disables_the_endpoint(client, receiver) -> None:
    settings = client.app.state.settings
    hook = (await client.post("/v1/webhooks", json={"name": "System", "url": receiver.url})).json()
    receiver.status = 410
    run(client, publish, settings, event())
    run(client, deliver, settings)
    after = (await client.get(f"/v1/webhooks/{hook['id']}")).json()
    assert after["status"] == "disabled" and "410" in after["disabled_reason"]
    assert run(client, publish, settings, event()) == 0  # disabled endpoints get nothing
    [delivery] = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()
    assert delivery["status"] == "dead"
    problem(await client.post(f"/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/replay"), 409)
    assert (await client.post(f"/v1/webhooks/{hook['id']}/enable")).json()["status"] == "active"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://example.com/hook"}, "url"),
        # Found by the conformance fuzzing: urlsplit raises on these (was a 500).
        ({"url": "https://["}, "url"),
        ({"url": "https://hooks.example:port/x"}, "url"),
        ({"url": "ftp://example.com/hook"}, "url"),
        ({"url": "https://x.example", "event_types": ["meeting.eaten"]}, "event_types[0]"),
        ({"url": "https://x.example", "municipality_code": "9999"}, "municipality_code"),
    ],
)
async def test_subscriptions_are_validated(client, body: dict[str, Any], field: str) -> None:
    response = await client.post("/v1/webhooks", json={"name": "x"} | body)
    assert field in {e["field"] for e in problem(response, 422)["errors"]}


async def test_coordinators_subscribe_within_their_scope(client) -> None:
    coordinator = bearer((await make_key(client, "municipal_coordinator", municipality_code="2560"))["key"])
    mine = await client.post(
        "/v1/webhooks",
        headers=coordinator,
        json={"name": "A", "url": "https://a.example", "municipality_code": "2560"},
    )
    assert mine.status_code == 201
    problem(
        await client.post(
            "/v1/webhooks",
            headers=coordinator,
            json={"name": "B", "url": "https://b.example", "municipality_code": "2580"},
        ),
        403,
    )
    problem(
        await client.post(
            "/v1/webhooks", headers=coordinator, json={"name": "C", "url": "https://c.example"}
        ),
        403,
    )
    theirs = (
        await client.post(
            "/v1/webhooks", json={"name": "L", "url": "https://l.example", "municipality_code": "2580"}
        )
    ).json()
    problem(await client.get(f"/v1/webhooks/{theirs['id']}", headers=coordinator), 404)
    viewer = bearer((await make_key(client, "viewer", county_code="25"))["key"])
    problem(await client.get("/v1/webhooks", headers=viewer), 403)
