"""The pages behind the links in meeting e-mails: forms a shop fills in on a phone, no account."""

from __future__ import annotations

from typing import Any

from tests.conftest import client_for
from tests.meeting_helpers import Clock, cast, collaboration_meeting, deliver, link, to
from tests.meeting_helpers import mail_settings as meeting_mail_settings


async def _invited(client: Any, people: Any, inbox: list[Any], **extra: Any) -> tuple[str, str]:
    mid = (await client.post("/v1/meetings", json=collaboration_meeting(people, **extra))).json()["id"]
    await client.post(f"/v1/meetings/{mid}/schedule")
    await client.post(f"/v1/meetings/{mid}/invitations", json={"organization_ids": [people.shops[0]["id"]]})
    await client.post(f"/v1/meetings/{mid}/send-invitations")
    deliver(client)
    return mid, link(to(inbox, "butik@storgatanslivs.example")[0], "rsvp")


async def test_a_shop_registers_its_staff_on_the_page(engine, settings, smtp) -> None:
    settings = meeting_mail_settings(settings, smtp.port)
    async with client_for(engine, settings) as client:
        client.app.state.clock = Clock()
        people = await cast(client)
        mid, token = await _invited(client, people, smtp.inbox.messages, capacity=1)
        admin = client.headers.pop("Authorization")

        page = await client.get(f"/rsvp/{token}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "Samverkansmöte Älvsbyn" in page.text and "tisdag 30 mars 2027 kl. 18.00" in page.text
        assert 'name="email_0"' in page.text

        form = {
            "action": "register",
            "name_0": "Elin Berg",
            "email_0": "elin.berg@storgatanslivs.example",
            "consent_0": "yes",
            "name_1": "Omar <b>Said</b>",
            "email_1": "omar@storgatanslivs.example",
        }
        answer = await client.post(f"/rsvp/{token}", data=form)
        assert answer.status_code == 200, answer.text
        assert "Tack! Anmälan är mottagen" in answer.text
        assert "Omar &lt;b&gt;Said&lt;/b&gt;" in answer.text  # escaped, not markup
        assert "i kö" in answer.text  # capacity 1: the second waits

        bad = await client.post(
            f"/rsvp/{token}", data={"action": "register", "name_0": "X", "email_0": "not-an-address"}
        )
        assert bad.status_code == 422 and "email" in bad.text

        client.headers["Authorization"] = admin
        statuses = [
            r["status"] for r in (await client.get(f"/v1/meetings/{mid}/registrations")).json()["items"]
        ]
        assert statuses == ["confirmed", "waitlisted"]

        # The confirmed person cancels on their own page; the seat is offered to Omar, who takes it there.
        deliver(client)
        del client.headers["Authorization"]
        seat = link(to(smtp.inbox.messages, "elin.berg@storgatanslivs.example")[-1], "seat")
        assert "anmäld" in (await client.get(f"/seat/{seat}")).text
        assert "avbokad" in (await client.post(f"/seat/{seat}", data={"action": "cancel"})).text
        client.headers["Authorization"] = admin
        deliver(client)
        del client.headers["Authorization"]
        offer = link(to(smtp.inbox.messages, "omar@storgatanslivs.example")[-1], "seat")
        assert "Ta platsen" in (await client.get(f"/seat/{offer}")).text
        taken = await client.post(f"/seat/{offer}", data={"action": "accept"})
        assert taken.status_code == 200 and "anmäld" in taken.text

        assert (await client.get("/rsvp/forged-token-that-is-long-enough")).status_code == 404


async def test_the_survey_page(engine, settings, smtp) -> None:
    settings = meeting_mail_settings(settings, smtp.port)
    clock = Clock()
    async with client_for(engine, settings) as client:
        client.app.state.clock = clock
        people = await cast(client)
        mid, _ = await _invited(client, people, smtp.inbox.messages)
        clock.set("2027-03-30T16:10:00+00:00")
        body = {"participant_id": people.known_staff["id"], "attendance": "attended"}
        assert (await client.post(f"/v1/meetings/{mid}/attendance", json=body)).status_code == 200
        for step in ("hold", "close"):
            assert (await client.post(f"/v1/meetings/{mid}/{step}")).status_code == 200
        deliver(client)
        token = link(to(smtp.inbox.messages, "elin.berg@storgatanslivs.example")[-1], "survey")
        admin = client.headers.pop("Authorization")
        page = await client.get(f"/survey/{token}")
        assert "Jag känner mig tryggare" in page.text and 'type="radio"' in page.text
        answered = await client.post(
            f"/survey/{token}", data={"feel_safer": "4", "know_whom_to_contact": "5"}
        )
        assert answered.status_code == 200 and "Tack för dina svar" in answered.text
        assert (await client.post(f"/survey/{token}", data={"feel_safer": "4"})).status_code == 409
        client.headers["Authorization"] = admin
        results = (await client.get(f"/v1/meetings/{mid}/survey-results")).json()
        assert results["responses"] == 1
