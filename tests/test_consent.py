"""Consent and list hygiene: mailings need consent, one-click unsubscribe, coordinators clear holds."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from service.outbox.models import Category, EmailHold
from service.outbox.service import OutboxService, unsubscribe_url
from service.participants.models import Participant
from service.settings import Settings
from service.signing import sign
from tests.conftest import ADMIN_KEY
from tests.helpers import context, create, pickup_point, problem
from tests.test_auth import bearer, make_key
from tests.test_email import mail_settings, worker_for


async def person(
    session: AsyncSession, consent: bool = True, email: str = "elin@ombud.example"
) -> Participant:
    record = Participant(name="Elin", email=email, email_normalized=email, mailing_list_consent=consent)
    session.add(record)
    await session.flush()
    return record


async def test_mailings_go_only_to_people_who_consented(session, settings) -> None:
    service = OutboxService(context(session), settings)
    yes = await person(session)
    no = await person(session, consent=False, email="nej@ombud.example")
    queued = await service.enqueue_mailing(yes, subject="Nyhetsbrev", text="Hej")
    assert queued is not None and queued.category is Category.MAILING
    assert queued.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert (
        queued.headers["List-Unsubscribe"].startswith("<http")
        and "/v1/unsubscribe/" in queued.headers["List-Unsubscribe"]
    )
    assert await service.enqueue_mailing(no, subject="Nyhetsbrev", text="Hej") is None


async def test_the_unsubscribe_headers_arrive(session, settings, smtp) -> None:
    settings = mail_settings(settings, smtp.port)
    await OutboxService(context(session), settings).enqueue_mailing(
        await person(session), subject="S", text="T"
    )
    await session.commit()
    await worker_for(session, settings).run_once()
    [received] = smtp.inbox.messages
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/v1/unsubscribe/" in received["List-Unsubscribe"]


async def _link_for(client: Any, participant_id: str) -> str:
    settings: Settings = client.app.state.settings
    return unsubscribe_url(settings, UUID(participant_id)).split("/v1/", 1)[1]


async def test_one_click_unsubscribe(client) -> None:
    org = await create(client, "/v1/organizations", pickup_point())
    someone = await create(
        client,
        "/v1/participants",
        {
            "name": "Elin",
            "email": "elin@ombud.example",
            "organization_id": org["id"],
            "mailing_list_consent": True,
        },
    )
    path = "/v1/" + await _link_for(client, someone["id"])
    client.headers.pop("Authorization")
    page = await client.get(path)
    assert page.status_code == 200 and "<form" in page.text
    client.headers["Authorization"] = "Bearer none"  # the link needs no credential; a bad one is ignored
    done = await client.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200, done.text
    client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
    after = (await client.get(f"/v1/participants/{someone['id']}")).json()
    assert (
        after["mailing_list_consent"] is False and after["consent_changed_at"] > someone["consent_changed_at"]
    )
    events = (
        await client.get("/v1/audit-events", params={"entity_id": someone["id"], "action": "update"})
    ).json()
    assert events["items"][0]["principal_id"] == "link:unsubscribe"


async def test_forged_and_foreign_tokens_are_refused(client) -> None:
    settings: Settings = client.app.state.settings
    client.headers.pop("Authorization")
    problem(await client.post("/v1/unsubscribe/not-a-token"), 404)
    other_purpose = sign(settings, "rsvp", "01a21156-3321-75b5-b66a-4f92e0dbc60e")
    problem(await client.post(f"/v1/unsubscribe/{other_purpose}"), 404)
    wrong_key = sign(msgspec.structs.replace(settings, secret_key="another"), "unsubscribe", "x")
    problem(await client.post(f"/v1/unsubscribe/{wrong_key}"), 404)


async def test_coordinators_clear_holds_of_their_people(client) -> None:
    alvsby = await create(client, "/v1/organizations", pickup_point())
    lulea = await create(client, "/v1/organizations", pickup_point("Luleå Kiosk", municipality="2580"))
    await create(
        client, "/v1/participants", {"name": "A", "email": "a@ombud.example", "organization_id": alvsby["id"]}
    )
    await create(
        client, "/v1/participants", {"name": "B", "email": "b@ombud.example", "organization_id": lulea["id"]}
    )

    async def hold() -> None:
        async with client.app.state.sessionmaker() as s:
            s.add_all(
                [
                    EmailHold(address="a@ombud.example", reason="SMTP 550"),
                    EmailHold(address="b@ombud.example", reason="SMTP 550"),
                ]
            )
            await s.commit()

    client.blocking_portal.call(hold)
    coordinator = bearer((await make_key(client, "municipal_coordinator", municipality_code="2560"))["key"])
    listed = (await client.get("/v1/email-holds", headers=coordinator)).json()
    assert [h["address"] for h in listed] == ["a@ombud.example"]
    problem(await client.delete("/v1/email-holds/b@ombud.example", headers=coordinator), 404)
    assert (await client.delete("/v1/email-holds/A@ombud.example", headers=coordinator)).status_code == 204
    assert [h["address"] for h in (await client.get("/v1/email-holds")).json()] == ["b@ombud.example"]
