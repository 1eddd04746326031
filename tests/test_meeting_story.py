"""The whole story of one collaboration meeting in Älvsbyn, through HTTP, with the e-mails read
back from a real SMTP server, the calendar files parsed and the QR codes decoded."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from tests.conftest import client_for
from tests.helpers import problem
from tests.meeting_helpers import (
    Clock,
    attachment,
    calendar_of,
    cast,
    collaboration_meeting,
    deliver,
    link,
    qr_payload,
    text_of,
    tick,
    to,
)
from tests.meeting_helpers import mail_settings as meeting_mail_settings

STOCKHOLM = ZoneInfo("Europe/Stockholm")


async def test_a_collaboration_meeting_from_invitation_to_survey(engine, settings, smtp) -> None:
    settings = meeting_mail_settings(settings, smtp.port)
    clock = Clock()
    async with client_for(engine, settings) as client:
        client.app.state.clock = clock
        people = await cast(client)
        inbox = smtp.inbox.messages

        # --- plan and schedule ---------------------------------------------------------------
        response = await client.post("/v1/meetings", json=collaboration_meeting(people))
        assert response.status_code == 201, response.text
        meeting = response.json()
        mid = meeting["id"]
        assert meeting["status"] == "draft"
        assert meeting["starts_at"] == "2027-03-30T18:00:00+02:00"  # summer time, kept as entered
        assert meeting["timezone"] == "Europe/Stockholm"
        assert {i["represents"] for i in meeting["instructors"]} == {"police", "customs"}
        assert meeting["allowed_transitions"] == ["scheduled", "cancelled"]

        response = await client.post(f"/v1/meetings/{mid}/schedule")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "scheduled"
        checklist = (await client.get(f"/v1/meetings/{mid}/checklist")).json()
        items = {i["key"]: i for i in checklist["items"]}
        assert items["instructors_booked"]["done"] and items["customs_instructor"]["done"]
        assert not items["invitations_sent"]["done"] and not items["venue_booked"]["done"]
        reminders = (await client.get(f"/v1/meetings/{mid}/reminders")).json()
        assert {(r["minutes_before"], r["audience"]) for r in reminders} == {
            (10080, "not_answered"),
            (1440, "registered"),
        }

        # --- invite the whole municipality in one call ---------------------------------------
        response = await client.post(f"/v1/meetings/{mid}/invitations", json={"audience": "municipality"})
        assert response.status_code == 200, response.text
        report = response.json()
        invited_orgs = {i["organization_id"] for i in report["created"] if i["participant_id"] is None}
        assert invited_orgs == {s["id"] for s in people.shops} | {
            people.terminal["id"],
            people.silent_shop["id"],
        }
        assert [i["participant_id"] for i in report["created"] if i["participant_id"]] == [
            people.agent_manager["id"]
        ]
        assert [s["organization_id"] for s in report["skipped"]] == [people.silent_shop["id"]]
        # Inviting again adds nobody twice.
        again = (
            await client.post(f"/v1/meetings/{mid}/invitations", json={"audience": "municipality"})
        ).json()
        assert again["created"] == []

        response = await client.post(f"/v1/meetings/{mid}/send-invitations")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "invitations_sent"
        assert deliver(client) == 5
        addresses = sorted(m["To"] for m in inbox)
        assert addresses == sorted(
            [s["email"] for s in people.shops] + [people.terminal["email"], people.agent_manager["email"]]
        )
        [invitation_mail] = to(inbox, "butik@storgatanslivs.example")
        body = text_of(invitation_mail)
        assert "Storgatans Livs" in body and "Anna Lindqvist" in body
        assert "114 14" in body and "112" in body  # whom to call, from the directory plugins
        assert "tisdag 30 mars 2027 kl. 18.00" in body
        ics = calendar_of(invitation_mail)
        assert ics["METHOD"] == "REQUEST"
        [event] = ics.walk("VEVENT")
        uid = str(event["UID"])
        assert event["DTSTART"].params["TZID"] == "Europe/Stockholm"
        assert event["DTSTART"].dt.replace(tzinfo=None) == datetime(2027, 3, 30, 18, 0)
        assert int(event["SEQUENCE"]) == 0
        assert [c["TZID"] for c in ics.walk("VTIMEZONE")] == ["Europe/Stockholm"]
        token_a = link(invitation_mail, "rsvp")
        token_b = link(to(inbox, "info@icanara.example")[0], "rsvp")
        token_c = link(to(inbox, "shell@alvsbyn.example")[0], "rsvp")
        inbox.clear()

        # --- the shops answer through their links, without an account ------------------------
        del client.headers["Authorization"]
        view = (await client.get(f"/v1/invitations/{token_a}")).json()
        assert view["organization_name"] == "Storgatans Livs" and view["seats_left"] == 2
        response = await client.post(
            f"/v1/invitations/{token_a}/registrations",
            json={
                "people": [
                    {
                        "name": "Elin Berg",
                        "email": "Elin.Berg@Storgatanslivs.example",
                        "mailing_list_consent": True,
                    },
                    {
                        "name": "Omar Said",
                        "email": "omar@storgatanslivs.example",
                        "mailing_list_consent": True,
                    },
                ]
            },
        )
        assert response.status_code == 200, response.text
        shop_a = response.json()["registrations"]
        assert [r["status"] for r in shop_a] == ["confirmed", "confirmed"]
        response = await client.post(
            f"/v1/invitations/{token_b}/registrations",
            json={"people": [{"name": "Lisa Ek", "email": "lisa@icanara.example"}]},
        )
        [lisa] = response.json()["registrations"]
        assert lisa["status"] == "waitlisted" and lisa["waitlist_position"] == 1
        response = await client.post(
            f"/v1/invitations/{token_c}/decline", json={"reason": "Ingen personal den kvällen"}
        )
        assert response.json()["status"] == "declined"
        client.headers["Authorization"] = f"Bearer {_admin_key()}"

        # The known person was found by e-mail (any case), not duplicated.
        found = (
            await client.get("/v1/participants", params={"email": "elin.berg@storgatanslivs.example"})
        ).json()
        assert [p["id"] for p in found["items"]] == [people.known_staff["id"]]
        assert found["items"][0]["mailing_list_consent"] is True

        # Confirmations: the check-in QR code decodes to the code the text shows; the waitlisted get none.
        assert deliver(client) == 3
        [omar_mail] = to(inbox, "omar@storgatanslivs.example")
        code = qr_payload(attachment(omar_mail, "image/png"))
        assert code in text_of(omar_mail)
        assert str(calendar_of(omar_mail).walk("VEVENT")[0]["UID"]) == uid
        [lisa_mail] = to(inbox, "lisa@icanara.example")
        assert "image/png" not in [p.get_content_type() for p in lisa_mail.iter_attachments()]
        elin_code = qr_payload(attachment(to(inbox, "elin.berg@storgatanslivs.example")[0], "image/png"))
        inbox.clear()

        # --- a freed seat goes to the next in line, for a limited time ------------------------
        del client.headers["Authorization"]
        response = await client.delete(f"/v1/invitations/{token_a}/registrations/{shop_a[1]['id']}")
        assert response.status_code == 200, response.text
        client.headers["Authorization"] = f"Bearer {_admin_key()}"
        registrations = (await client.get(f"/v1/meetings/{mid}/registrations")).json()["items"]
        assert [r["status"] for r in registrations] == ["confirmed", "cancelled", "offered"]
        assert deliver(client) == 1
        [offer] = to(inbox, "lisa@icanara.example")
        assert "16.00" in text_of(offer) or "kl." in text_of(offer)
        accept_token = link(offer, "seat")
        del client.headers["Authorization"]
        response = await client.post(f"/v1/registrations/{accept_token}/accept")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "confirmed"
        client.headers["Authorization"] = f"Bearer {_admin_key()}"
        deliver(client)
        lisa_code = qr_payload(attachment(to(inbox, "lisa@icanara.example")[-1], "image/png"))
        inbox.clear()

        # --- reminders: data, sent once, never to those who declined --------------------------
        clock.set("2027-03-29T16:30:00+00:00")  # within a day of the start: both reminders are due
        report = tick(client, clock)
        assert report.reminders_sent == 2
        assert tick(client, clock).reminders_sent == 0  # never twice
        deliver(client)
        reminded = sorted(m["To"] for m in inbox)
        # Registered people, and invitations nobody answered (the terminal, the agent manager);
        # not the shop that declined, not the shops that registered.
        assert reminded == sorted(
            [
                "elin.berg@storgatanslivs.example",
                "lisa@icanara.example",
                "terminal@alvsbyn.example",
                "rolf@postnord.example",
            ]
        )
        inbox.clear()

        # --- the meeting: check-in by QR code, attendance by hand ----------------------------
        clock.set("2027-03-30T16:05:00+00:00")  # 18.05 in Älvsbyn
        response = await client.post(f"/v1/meetings/{mid}/check-ins", json={"code": elin_code})
        assert response.status_code == 200, response.text
        assert response.json()["attendance"] == "attended"
        lisa_reg = next(r for r in registrations if r["participant_name"] == "Lisa Ek")
        response = await client.post(
            f"/v1/meetings/{mid}/attendance",
            json={"participant_id": lisa_reg["participant_id"], "attendance": "attended"},
        )
        assert response.status_code == 200, response.text
        assert lisa_code  # she had a code too; attendance by hand works as well

        response = await client.post(f"/v1/meetings/{mid}/hold")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "held"

        # A follow-up is proposed one year on, at the same local time, for the shops that came.
        drafts = (await client.get("/v1/meetings", params={"kind": "follow_up_meeting"})).json()["items"]
        [follow_up] = drafts
        assert follow_up["status"] == "draft" and follow_up["follow_up_of_id"] == mid
        assert follow_up["starts_at"] == "2028-03-30T18:00:00+02:00"
        follow_invites = (await client.get(f"/v1/meetings/{follow_up['id']}/invitations")).json()["items"]
        assert {i["organization_id"] for i in follow_invites} == {
            people.shops[0]["id"],
            people.shops[1]["id"],
        }

        # Everyone who came is now in the municipality's local network.
        members = (await client.get(f"/v1/networks/{people.local_network['id']}/members")).json()["items"]
        assert {m["participant_id"] for m in members} == {
            people.known_staff["id"],
            lisa_reg["participant_id"],
        }

        # --- minutes, distributed through the outbox ------------------------------------------
        response = await client.put(
            f"/v1/meetings/{mid}/minutes",
            json={
                "text": "# Minnesanteckningar\n\n- **Polisen** berättade om lägesbilden.\n"
                "- Nästa möte om ett år."
            },
        )
        assert response.status_code == 200, response.text
        response = await client.post(f"/v1/meetings/{mid}/minutes/distribute")
        assert response.status_code == 200, response.text
        distribution = response.json()
        assert distribution["attendees"] == 4  # two staff, two instructors
        deliver(client)
        [minutes_mail] = to(inbox, "lisa@icanara.example")
        html = minutes_mail.get_body(preferencelist=("html",)).get_content()
        assert "<strong>Polisen</strong>" in html
        again = await client.post(f"/v1/meetings/{mid}/minutes/distribute")
        assert problem(again, 409)
        inbox.clear()

        # --- close: surveys go out; answers are anonymous and counted --------------------------
        response = await client.post(f"/v1/meetings/{mid}/close")
        assert response.status_code == 200, response.text
        closed = response.json()
        assert closed["status"] == "closed" and closed["allowed_transitions"] == []
        assert closed["counts"]["attended"] == 2
        # Four surveys (two staff, two instructors), and Storgatans Livs is certified: Elin came and
        # is on the local network's mailing list, so the shop and Elin get the certificate and
        # sticker. ICA's Lisa came without consent to the list: no certification for ICA.
        assert deliver(client) == 6
        certified = (await client.get("/v1/certifications", params={"municipality": "2560"})).json()["items"]
        assert [c["organization_id"] for c in certified] == [people.shops[0]["id"]]
        [survey_mail] = [m for m in to(inbox, "elin.berg@storgatanslivs.example") if "/survey/" in text_of(m)]
        survey_token = link(survey_mail, "survey")
        instructor_token = link(to(inbox, "per.polis@polisen.example")[0], "survey")
        del client.headers["Authorization"]
        survey = (await client.get(f"/v1/surveys/{survey_token}")).json()
        keys = [q["key"] for q in survey["questions"]]
        assert "feel_safer" in keys and "know_whom_to_contact" in keys
        answers = {"feel_safer": 5, "know_whom_to_contact": 4}
        assert (
            await client.post(f"/v1/surveys/{survey_token}", json={"answers": answers})
        ).status_code == 204
        assert problem(await client.post(f"/v1/surveys/{survey_token}", json={"answers": answers}), 409)
        instructor_answers = {"participants_engaged": 4, "meeting_useful": 5}
        response = await client.post(f"/v1/surveys/{instructor_token}", json={"answers": instructor_answers})
        assert response.status_code == 204, response.text
        client.headers["Authorization"] = f"Bearer {_admin_key()}"
        results = (await client.get(f"/v1/meetings/{mid}/survey-results")).json()
        assert results["responses"] == 2
        safer = next(q for q in results["questions"] if q["key"] == "feel_safer")
        assert safer["mean"] == 5 and safer["distribution"] == [0, 0, 0, 0, 1]
        county = (await client.get("/v1/survey-results", params={"county": "25"})).json()
        assert county["responses"] == 2 and county["meetings"] == 1
        assert county["by_month"] == [{"month": "2027-03", "responses": 2, "mean": 4.5}]

        # The checklist ticked itself where TMN saw the work done.
        checklist = (await client.get(f"/v1/meetings/{mid}/checklist")).json()
        done = {i["key"] for i in checklist["items"] if i["done"]}
        assert {
            "instructors_booked",
            "invitations_sent",
            "agent_managers_invited",
            "registrations_in",
            "meeting_held",
            "minutes_written",
            "minutes_distributed",
        } <= done
        response = await client.put(f"/v1/meetings/{mid}/checklist/venue_booked", json={"done": True})
        assert response.json()["progress"]["done"] == checklist["progress"]["done"] + 1
        assert date.fromisoformat(closed["registration_deadline"]) == date(2027, 3, 25)


def _admin_key() -> str:
    from tests.conftest import ADMIN_KEY

    return ADMIN_KEY
