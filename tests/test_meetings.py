"""Meetings: the rules around the story (bad input, the lifecycle's 409s, times across summer
time, changes and cancellations sent as calendar updates, links that expire or were tampered
with, the waitlist's offers running out, reminders that are never late)."""

from __future__ import annotations

from typing import Any

import pytest

from service.meetings import tokens
from tests.conftest import ADMIN_KEY, client_for
from tests.helpers import error_fields, problem
from tests.meeting_helpers import (
    Cast,
    calendar_of,
    collaboration_meeting,
    deliver,
    link,
    meeting_world,
    tick,
    to,
)


@pytest.fixture
async def world(engine, settings, smtp) -> Any:
    """A client on the SMTP server, its clock (1 March 2027) and the Älvsbyn cast."""
    async with meeting_world(engine, settings, smtp) as (client, clock, people):
        yield client, clock, people, smtp.inbox.messages


async def meeting_in(client: Any, people: Cast, **extra: Any) -> dict[str, Any]:
    response = await client.post("/v1/meetings", json=collaboration_meeting(people, **extra))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def invited(client: Any, people: Cast, **extra: Any) -> tuple[dict[str, Any], str]:
    """A meeting with invitations out to Storgatans Livs; returns it and that shop's link token."""
    meeting = await meeting_in(client, people, **extra)
    mid = meeting["id"]
    assert (await client.post(f"/v1/meetings/{mid}/schedule")).status_code == 200
    body = {"organization_ids": [people.shops[0]["id"], people.shops[1]["id"]]}
    assert (await client.post(f"/v1/meetings/{mid}/invitations", json=body)).status_code == 200
    response = await client.post(f"/v1/meetings/{mid}/send-invitations")
    assert response.status_code == 200, response.text
    deliver(client)
    return response.json(), ""


def shop_token(inbox: list[Any], address: str = "butik@storgatanslivs.example") -> str:
    return link(to(inbox, address)[-1], "rsvp")


async def public(client: Any, method: str, path: str, **kwargs: Any) -> Any:
    """A request without credentials, as a shop following its link."""
    saved = client.headers.pop("Authorization")
    try:
        return await client.request(method, path, **kwargs)
    finally:
        client.headers["Authorization"] = saved


# --- bad input ---------------------------------------------------------------------------------


async def test_end_before_start_names_ends_at(world) -> None:
    client, _, people, _ = world
    body = collaboration_meeting(people, starts_at="2027-03-30T18:00:00", ends_at="2027-03-30T17:00:00")
    assert error_fields(await client.post("/v1/meetings", json=body)) == {"ends_at"}


async def test_a_meeting_in_a_network_of_the_wrong_level(world) -> None:
    client, _, people, _ = world
    body = collaboration_meeting(people, network_id=people.networks["nord"])
    response = await client.post("/v1/meetings", json=body)
    assert error_fields(response) == {"network_id"}
    assert "local" in problem(response)["detail"]
    # An instructor training belongs to a regional network, not a local one.
    training = collaboration_meeting(people, kind="instructor_training", instructor_ids=[])
    assert error_fields(await client.post("/v1/meetings", json=training)) == {"network_id"}
    training["network_id"] = people.networks["norrbotten"]
    assert (await client.post("/v1/meetings", json=training)).status_code == 201
    # A county group meets in the county group network.
    group = collaboration_meeting(
        people, kind="county_group", network_id=people.networks["nord"], instructor_ids=[]
    )
    assert error_fields(await client.post("/v1/meetings", json=group)) == {"network_id"}


async def test_a_time_that_summer_time_skips_is_refused(world) -> None:
    client, _, people, _ = world
    # 28 March 2027: clocks jump from 02:00 to 03:00 in Stockholm.
    body = collaboration_meeting(people, starts_at="2027-03-28T02:30:00", ends_at="2027-03-28T04:00:00")
    response = await client.post("/v1/meetings", json=body)
    assert error_fields(response) == {"starts_at"}
    assert "summer time" in problem(response)["detail"]


async def test_instructors_need_the_qualification(world) -> None:
    client, _, people, _ = world
    body = collaboration_meeting(people, instructor_ids=[people.coordinator["id"]])
    response = await client.post("/v1/meetings", json=body)
    assert error_fields(response) == {"instructor_ids[0]"}
    assert "qualification" in problem(response)["detail"]


async def test_a_collaboration_meeting_needs_a_police_instructor(world) -> None:
    client, _, people, _ = world
    meeting = await meeting_in(client, people, instructor_ids=[people.customs["id"]])
    response = await client.post(f"/v1/meetings/{meeting['id']}/schedule")
    assert error_fields(response) == {"instructor_ids"}
    # Without customs it may be scheduled, and the checklist shows what is missing.
    meeting = await meeting_in(client, people, instructor_ids=[people.police["id"]])
    assert (await client.post(f"/v1/meetings/{meeting['id']}/schedule")).status_code == 200
    items = {
        i["key"]: i for i in (await client.get(f"/v1/meetings/{meeting['id']}/checklist")).json()["items"]
    }
    assert items["customs_instructor"] == items["customs_instructor"] | {"done": False, "required": False}


async def test_a_meeting_needs_a_place(world) -> None:
    client, _, people, _ = world
    meeting = await meeting_in(client, people, venue=None)
    assert error_fields(await client.post(f"/v1/meetings/{meeting['id']}/schedule")) == {
        "venue",
        "online_url",
    }


async def test_an_illegal_transition_names_the_state_and_the_allowed_ones(world) -> None:
    client, _, people, _ = world
    meeting = await meeting_in(client, people)
    body = problem(await client.post(f"/v1/meetings/{meeting['id']}/hold"), 409)
    assert body["current_state"] == "draft"
    assert body["allowed"] == ["scheduled", "cancelled"]
    await client.post(f"/v1/meetings/{meeting['id']}/cancel", json={"reason": "Krockar med val"})
    body = problem(await client.post(f"/v1/meetings/{meeting['id']}/schedule"), 409)
    assert body["current_state"] == "cancelled" and body["allowed"] == []


async def test_attendance_for_a_cancelled_meeting_is_refused(world) -> None:
    client, clock, people, _ = world
    meeting, _ = await invited(client, people)
    mid = meeting["id"]
    assert (await client.post(f"/v1/meetings/{mid}/cancel", json={})).status_code == 200
    clock.set("2027-03-30T16:10:00+00:00")
    body = {"participant_id": people.known_staff["id"], "attendance": "attended"}
    answer = problem(await client.post(f"/v1/meetings/{mid}/attendance", json=body), 409)
    assert answer["current_state"] == "cancelled"
    assert answer["allowed"] == ["invitations_sent", "held"]


async def test_a_meeting_cannot_be_held_before_it_starts(world) -> None:
    client, _, people, _ = world
    meeting, _ = await invited(client, people)
    assert (
        problem(await client.post(f"/v1/meetings/{meeting['id']}/hold"), 409)["current_state"]
        == "invitations_sent"
    )


# --- links -------------------------------------------------------------------------------------


async def test_an_expired_or_tampered_link(world) -> None:
    client, clock, people, inbox = world
    await invited(client, people)
    token = shop_token(inbox)
    assert (await public(client, "GET", f"/v1/invitations/{token}")).status_code == 200
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    problem(await public(client, "GET", f"/v1/invitations/{tampered}"), 404)
    # A token for another purpose (a registration's) is no invitation.
    settings = client.app.state.settings
    other = tokens.registration_token(settings, people_id(people), clock.now.replace(year=2028))
    problem(await public(client, "GET", f"/v1/invitations/{other}"), 404)
    clock.set("2027-03-30T18:30:00+00:00")  # after the meeting ended (20.00 local = 18.00 UTC)
    body = problem(await public(client, "GET", f"/v1/invitations/{token}"), 410)
    assert body["type"] == "/problems/link-expired"


def people_id(people: Cast) -> Any:
    from uuid import UUID

    return UUID(people.known_staff["id"])


async def test_registrations_past_capacity_wait_and_an_offer_runs_out(world) -> None:
    client, clock, people, inbox = world
    await invited(client, people, capacity=1)
    token_a, token_b = shop_token(inbox), shop_token(inbox, "info@icanara.example")
    inbox.clear()
    first = await public(
        client,
        "POST",
        f"/v1/invitations/{token_a}/registrations",
        json={"people": [{"name": "A", "email": "a@a.example"}]},
    )
    second = await public(
        client,
        "POST",
        f"/v1/invitations/{token_b}/registrations",
        json={"people": [{"name": "B", "email": "b@b.example"}, {"name": "C", "email": "c@c.example"}]},
    )
    assert [r["status"] for r in first.json()["registrations"]] == ["confirmed"]
    assert [(r["status"], r["waitlist_position"]) for r in second.json()["registrations"]] == [
        ("waitlisted", 1),
        ("waitlisted", 2),
    ]
    view = (await public(client, "GET", f"/v1/invitations/{token_b}")).json()
    assert view["seats_left"] == 0
    # A freed seat is offered to B for a limited time; B lets it run out, so it passes to C.
    [a] = first.json()["registrations"]
    assert (
        await public(client, "DELETE", f"/v1/invitations/{token_a}/registrations/{a['id']}")
    ).status_code == 200
    deliver(client)
    [offer_b] = to(inbox, "b@b.example")[-1:]
    accept_b = link(offer_b, "seat")
    clock.advance(hours=49)
    assert tick(client, clock).offers_lapsed == 1
    problem(await public(client, "POST", f"/v1/registrations/{accept_b}/accept"), 409)
    deliver(client)
    offer_c = [
        m
        for m in to(inbox, "c@c.example")
        if "/seat/" in str(m.get_body(preferencelist=("plain",)).get_content())
    ]
    assert offer_c, "the seat was offered to the next in line"
    response = await public(client, "POST", f"/v1/registrations/{link(offer_c[-1], 'seat')}/accept")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "confirmed"


async def test_the_public_links_are_rate_limited(engine, settings) -> None:
    import msgspec

    limited = msgspec.structs.replace(settings, public_rate_limit_per_minute=3)
    async with client_for(engine, limited) as client:
        del client.headers["Authorization"]
        answers = [
            (await client.get("/v1/invitations/not-a-real-token-at-all")).status_code for _ in range(5)
        ]
        assert answers[:3] == [404, 404, 404]
        assert answers[3:] == [429, 429]
        client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        assert (await client.get("/v1/meetings")).status_code == 200  # the API's own budget is apart


# --- changes, cancellations, calendars -----------------------------------------------------------


async def test_a_change_sends_an_update_and_a_cancellation_a_cancel(world) -> None:
    client, _, people, inbox = world
    meeting, _ = await invited(client, people)
    mid = meeting["id"]
    first = calendar_of(to(inbox, "butik@storgatanslivs.example")[0]).walk("VEVENT")[0]
    inbox.clear()
    etag = (await client.get(f"/v1/meetings/{mid}")).headers["ETag"]
    # Moved a week later: across no change of time, but the local time is what was entered.
    response = await client.patch(
        f"/v1/meetings/{mid}",
        json={"starts_at": "2027-04-06T18:00:00", "ends_at": "2027-04-06T20:00:00", "venue": "Folkets hus"},
        headers={"If-Match": etag},
    )
    assert response.status_code == 200, response.text
    assert response.json()["sequence"] == 1
    deliver(client)
    update = to(inbox, "butik@storgatanslivs.example")[0]
    event = calendar_of(update).walk("VEVENT")[0]
    assert event["UID"] == first["UID"] and int(event["SEQUENCE"]) == 1
    assert event["LOCATION"] == "Folkets hus"
    assert event["DTSTART"].dt.hour == 18
    inbox.clear()
    response = await client.post(f"/v1/meetings/{mid}/cancel", json={"reason": "Lokalen är inte tillgänglig"})
    assert response.json()["sequence"] == 2
    deliver(client)
    cancel = calendar_of(to(inbox, "butik@storgatanslivs.example")[0])
    assert cancel["METHOD"] == "CANCEL"
    [event] = cancel.walk("VEVENT")
    assert event["UID"] == first["UID"] and int(event["SEQUENCE"]) == 2 and event["STATUS"] == "CANCELLED"
    assert "Lokalen är inte tillgänglig" in str(
        to(inbox, "butik@storgatanslivs.example")[0].get_body(("plain",)).get_content()
    )


async def test_a_date_across_summer_time_keeps_its_local_time(world) -> None:
    client, _, people, _ = world
    # Planned in winter (1 March, UTC+1) for a day in summer time (UTC+2) and one in winter.
    summer = await meeting_in(client, people)
    assert summer["starts_at"] == "2027-03-30T18:00:00+02:00"
    winter = await meeting_in(
        client,
        people,
        starts_at="2027-03-23T18:00:00",
        ends_at="2027-03-23T20:00:00",
        registration_deadline=None,
    )
    assert winter["starts_at"] == "2027-03-23T18:00:00+01:00"
    # Moving it by a week across the change keeps 18.00, not the same number of hours.
    response = await client.patch(
        f"/v1/meetings/{winter['id']}",
        json={"starts_at": "2027-03-30T18:00:00", "ends_at": "2027-03-30T20:00:00"},
    )
    assert response.json()["starts_at"] == "2027-03-30T18:00:00+02:00"
    # An offset given by the client is honoured as the instant it names.
    utc = await meeting_in(client, people, starts_at="2027-10-31T17:00:00Z", ends_at="2027-10-31T19:00:00Z")
    assert utc["starts_at"] == "2027-10-31T18:00:00+01:00"


async def test_feeds_per_network_and_municipality(world) -> None:
    import icalendar

    client, _, people, _ = world
    meeting, _ = await invited(client, people)
    draft = await meeting_in(client, people, title="Ett utkast")
    for path in (
        f"/v1/networks/{people.networks['alvsbyn']}/meetings.ics",
        "/v1/municipalities/2560/meetings.ics",
    ):
        response = await client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/calendar")
        feed = icalendar.Calendar.from_ical(response.content)
        uids = [str(e["UID"]) for e in feed.walk("VEVENT")]
        assert any(meeting["id"] in uid for uid in uids)
        assert not any(draft["id"] in uid for uid in uids)  # drafts are not announced
    other = icalendar.Calendar.from_ical((await client.get("/v1/municipalities/2580/meetings.ics")).content)
    assert other.walk("VEVENT") == []


# --- reminders -----------------------------------------------------------------------------------


async def test_reminders_are_never_late_and_never_twice(world) -> None:
    client, clock, people, inbox = world
    meeting, _ = await invited(client, people)
    mid = meeting["id"]
    response = await client.post(
        f"/v1/meetings/{mid}/reminders", json={"minutes_before": 60, "audience": "instructors"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["due_at"] == "2027-03-30T17:00:00+02:00"
    duplicate = await client.post(
        f"/v1/meetings/{mid}/reminders", json={"minutes_before": 60, "audience": "instructors"}
    )
    assert error_fields(duplicate, 409) == {"minutes_before"}
    assert error_fields(
        await client.post(
            f"/v1/meetings/{mid}/reminders", json={"minutes_before": 1, "audience": "registered"}
        )
    ) == {"minutes_before"}
    inbox.clear()
    clock.set("2027-03-29T17:00:00+00:00")  # the day before: the 7-day and 1-day reminders are due
    assert tick(client, clock).reminders_sent == 2
    clock.set("2027-03-30T18:30:00+00:00")  # the meeting is over: the 60-minute one is skipped, not sent late
    report = tick(client, clock)
    assert (report.reminders_sent, report.reminders_skipped) == (0, 1)
    deliver(client)
    assert to(inbox, "per.polis@polisen.example") == []
    statuses = sorted(r["status"] for r in (await client.get(f"/v1/meetings/{mid}/reminders")).json())
    assert statuses == ["sent", "sent", "skipped"]


async def test_a_cancelled_meeting_sends_no_reminders(world) -> None:
    client, clock, people, inbox = world
    meeting, _ = await invited(client, people)
    await client.post(f"/v1/meetings/{meeting['id']}/cancel", json={})
    deliver(client)
    inbox.clear()
    clock.set("2027-03-29T12:00:00+00:00")
    assert tick(client, clock).reminders_sent == 0
    deliver(client)
    assert inbox == []


# --- instructors ---------------------------------------------------------------------------------


async def test_an_instructor_training_qualifies_those_who_attended(world) -> None:
    client, clock, people, _ = world
    body = collaboration_meeting(
        people,
        kind="instructor_training",
        network_id=people.networks["norrbotten"],
        instructor_ids=[],
        title="Instruktörsutbildning",
    )
    meeting = (await client.post("/v1/meetings", json=body)).json()
    mid = meeting["id"]
    for step in ("schedule",):
        assert (await client.post(f"/v1/meetings/{mid}/{step}")).status_code == 200
    await client.post(f"/v1/meetings/{mid}/invitations", json={"participant_ids": [people.coordinator["id"]]})
    assert (await client.post(f"/v1/meetings/{mid}/send-invitations")).status_code == 200
    clock.set("2027-03-30T16:10:00+00:00")
    attended = {"participant_id": people.coordinator["id"], "attendance": "attended"}
    assert (await client.post(f"/v1/meetings/{mid}/attendance", json=attended)).status_code == 200
    assert (await client.post(f"/v1/meetings/{mid}/hold")).status_code == 200
    assert (await client.post(f"/v1/meetings/{mid}/close")).status_code == 200
    anna = (await client.get(f"/v1/participants/{people.coordinator['id']}")).json()
    assert anna["instructor_qualified_on"] == "2027-03-30"
    assert "instructor" in anna["roles"]


async def test_registrations_are_part_of_a_persons_export(world) -> None:
    client, _, people, inbox = world
    meeting, _ = await invited(client, people)
    body = {"people": [{"name": "Elin Berg", "email": "ELIN.BERG@storgatanslivs.example"}]}
    assert (
        await public(client, "POST", f"/v1/invitations/{shop_token(inbox)}/registrations", json=body)
    ).status_code == 200
    export = (await client.get(f"/v1/participants/{people.known_staff['id']}/export")).json()
    [registration] = export["meeting_registrations"]
    assert registration["meeting_id"] == meeting["id"]
    assert (registration["meeting_title"], registration["status"]) == ("Samverkansmöte Älvsbyn", "confirmed")


async def test_a_link_does_not_reveal_or_change_people_from_elsewhere(world) -> None:
    client, _, people, inbox = world
    await invited(client, people)
    # ICA's link, used with the e-mail address of a person employed at Storgatans Livs.
    token = shop_token(inbox, "info@icanara.example")
    body = {
        "people": [
            {
                "name": "Vem som helst",
                "email": "elin.berg@storgatanslivs.example",
                "mailing_list_consent": True,
            }
        ]
    }
    response = await public(client, "POST", f"/v1/invitations/{token}/registrations", json=body)
    assert response.status_code == 200, response.text
    assert "Elin" not in response.text
    assert "Elin" not in (await public(client, "GET", f"/v1/invitations/{token}")).text
    elin = (await client.get(f"/v1/participants/{people.known_staff['id']}")).json()
    assert (elin["name"], elin["mailing_list_consent"]) == ("Elin Berg", False)


async def test_a_coordinator_books_the_countys_instructors(world) -> None:
    """Police and customs instructors work for the county, not for Älvsbyn: its coordinator finds
    them in the county's list and books them, though its scope does not show them as people."""
    client, _, people, _ = world
    key = await client.post(
        "/v1/api-keys", json={"name": "Älvsbyn", "role": "municipal_coordinator", "municipality_code": "2560"}
    )
    headers = {"Authorization": f"Bearer {key.json()['key']}"}
    listed = (await client.get("/v1/instructors", headers=headers)).json()
    assert {(i["name"], i["represents"]) for i in listed} >= {
        ("Per Polis", "police"),
        ("Tina Tull", "customs"),
    }
    assert "email" not in listed[0] and "phone" not in listed[0]
    assert (await client.get("/v1/instructors", params={"county": "01"}, headers=headers)).json() == []
    assert (await client.get(f"/v1/participants/{people.police['id']}", headers=headers)).status_code == 404
    response = await client.post("/v1/meetings", json=collaboration_meeting(people), headers=headers)
    assert response.status_code == 201, response.text
    assert {i["represents"] for i in response.json()["instructors"]} == {"police", "customs"}
    # Meetings of another municipality are not theirs to plan.
    body = collaboration_meeting(people, network_id=people.networks["lulea"])
    assert (await client.post("/v1/meetings", json=body, headers=headers)).status_code == 422
