"""Reports: the five steps as Älvsbyn takes them, coverage of its places, survey results over time,
the exports (JSON, CSV, GeoJSON) and scope; through the API on both databases."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any
from uuid import uuid4

import pytest

from service.meetings.models import SurveyResponse
from tests.conftest import ADMIN_KEY
from tests.helpers import create, error_fields, problem
from tests.meeting_helpers import Cast, Clock, meeting_world
from tests.test_auth import bearer, make_key
from tests.test_certifications import consenting_staff, held_meeting

DECISION = {
    "decided_on": "2027-02-10",
    "bodies": [
        {"party": "municipality", "name": "Kommunstyrelsen"},
        {"party": "police", "name": "Lokalpolisområde Piteå"},
    ],
    "document_reference": "KS 2027/12 § 4",
}


@pytest.fixture
async def world(engine, settings, smtp) -> Any:
    async with meeting_world(engine, settings, smtp) as (client, clock, people):
        yield client, clock, people


async def progress_of(client: Any, code: str = "2560") -> dict[str, Any]:
    response = await client.get(f"/v1/municipalities/{code}/progress")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def step(progress: dict[str, Any], n: int) -> dict[str, Any]:
    found: dict[str, Any] = progress["steps"][n - 1]
    assert found["step"] == n
    return found


async def coverage_of(client: Any, code: str = "2560") -> dict[str, Any]:
    response = await client.get("/v1/reports/coverage", params={"municipality": code})
    assert response.status_code == 200, response.text
    [row] = response.json()["municipalities"]
    return dict(row)


async def add_member(client: Any, network: str, person: str, role: str = "member") -> None:
    response = await client.post(
        f"/v1/networks/{network}/members", json={"participant_id": person, "role": role}
    )
    assert response.status_code == 201, response.text


async def hold_working_group(client: Any, clock: Clock, people: Cast, day: str) -> None:
    clock.set(f"{day}T08:00:00+00:00")
    body = {
        "network_id": people.networks["alvsbyn"],
        "kind": "local_working_group",
        "title": "Arbetsgruppen följer upp",
        "starts_at": f"{day}T13:00:00",
        "ends_at": f"{day}T14:00:00",
        "venue": "Kommunhuset",
        "coordinator_id": people.coordinator["id"],
    }
    meeting = await create(client, "/v1/meetings", body)
    assert (await client.post(f"/v1/meetings/{meeting['id']}/schedule")).status_code == 200
    invited = await client.post(f"/v1/meetings/{meeting['id']}/invitations", json={"audience": "network"})
    assert invited.status_code == 200, invited.text
    sent = await client.post(f"/v1/meetings/{meeting['id']}/send-invitations")
    assert sent.status_code == 200, sent.text
    clock.set(f"{day}T13:30:00+00:00")
    response = await client.post(f"/v1/meetings/{meeting['id']}/hold")
    assert response.status_code == 200, response.text


async def test_five_steps_from_nothing_to_follow_up(world) -> None:
    client, clock, people = world
    start = await progress_of(client)
    assert (start["current_step"], start["steps_done"]) == (0, 0)
    assert [s["key"] for s in start["steps"]] == [
        "decision",
        "instructors",
        "working_group",
        "collaboration_meetings",
        "follow_up",
    ]
    assert step(start, 1)["evidence"] == "no decision recorded" and start["decision"] is None

    # Step 1: typed in, with the bodies and the minutes' reference.
    response = await client.put("/v1/municipalities/2560/decision", json=DECISION)
    assert response.status_code == 201, response.text
    assert response.headers["location"].endswith("/v1/municipalities/2560/decision")
    decision = response.json()
    assert decision["missing_parties"] == ["customs"]
    now = await progress_of(client)
    assert (now["current_step"], step(now, 1)["done"], step(now, 1)["since"]) == (1, True, "2027-02-10")
    assert "Kommunstyrelsen" in step(now, 1)["evidence"] and "KS 2027/12 § 4" in step(now, 1)["evidence"]

    # Step 2: the county's police instructor is not the municipality's until an instructor in
    # its local network (or booked for its meeting).
    assert step(now, 2)["done"] is False
    await add_member(client, people.local_network["id"], people.police["id"], "instructor")
    now = await progress_of(client)
    assert step(now, 2)["done"] is True and step(now, 2)["since"] == "2026-10-01"
    assert now["current_step"] == 2

    # Step 3: a working group with two current members.
    await add_member(client, people.networks["alvsbyn"], people.coordinator["id"], "convenor")
    assert step(await progress_of(client), 3)["done"] is False
    await add_member(client, people.networks["alvsbyn"], people.police["id"])
    now = await progress_of(client)
    assert step(now, 3)["done"] is True and step(now, 3)["count"] == 2 and now["current_step"] == 3

    # Step 4: a collaboration meeting held; step 5 not yet.
    omar = await consenting_staff(client, people)
    mid = await held_meeting(client, clock, people, [omar])
    now = await progress_of(client)
    assert (step(now, 4)["done"], step(now, 4)["count"], step(now, 4)["since"]) == (True, 1, "2027-03-30")
    assert now["current_step"] == 4 and step(now, 5)["done"] is False
    assert (await client.post(f"/v1/meetings/{mid}/close")).status_code == 200

    # Step 5: the working group meets after the first collaboration meeting.
    await hold_working_group(client, clock, people, "2027-05-04")
    now = await progress_of(client)
    assert step(now, 5)["done"] is True and step(now, 5)["since"] == "2027-05-04"
    assert "working group meeting" in step(now, 5)["evidence"]
    assert (now["current_step"], now["steps_done"]) == (5, 5)

    # Without the decision the map shows step 0, though four later steps are done.
    etag = (await client.get("/v1/municipalities/2560/decision")).headers["etag"]
    response = await client.delete("/v1/municipalities/2560/decision", headers={"If-Match": etag})
    assert response.status_code == 204
    now = await progress_of(client)
    assert (now["current_step"], now["steps_done"]) == (0, 4)
    problem(await client.get("/v1/municipalities/2560/decision"), 404)


async def test_the_decision_refuses_bad_input_and_stale_writes(world) -> None:
    client, _, _ = world
    url = "/v1/municipalities/2560/decision"
    assert error_fields(await client.put(url, json={**DECISION, "decided_on": "2027-03-02"})) == {
        "decided_on"
    }
    assert error_fields(await client.put(url, json={**DECISION, "bodies": []})) == {"bodies"}
    twice = [{"party": "police", "name": "Polisen"}, {"party": "police", "name": "polisen"}]
    assert error_fields(await client.put(url, json={**DECISION, "bodies": twice})) == {"bodies"}
    odd = [{"party": "mayor", "name": "x"}]
    assert "bodies[0].party" in str(problem(await client.put(url, json={**DECISION, "bodies": odd}), 422))
    assert error_fields(await client.put(url, json={**DECISION, "document_reference": ""})) == {
        "document_reference"
    }
    problem(await client.put("/v1/municipalities/9999/decision", json=DECISION), 404)
    problem(await client.get("/v1/municipalities/9999/progress"), 404)
    created = await client.put(url, json=DECISION)
    assert created.status_code == 201
    replaced = await client.put(
        url, json={**DECISION, "note": "Även Tullverket"}, headers={"If-Match": created.headers["etag"]}
    )
    assert replaced.status_code == 200 and replaced.json()["note"] == "Även Tullverket"
    stale = await client.put(url, json=DECISION, headers={"If-Match": created.headers["etag"]})
    problem(stale, 412)
    assert (await client.get(url)).json()["note"] == "Även Tullverket"
    same = await client.get(url, headers={"If-None-Match": replaced.headers["etag"]})
    assert same.status_code == 304


async def test_coverage_and_the_places_never_reached(world) -> None:
    client, clock, people = world
    before = await coverage_of(client)
    assert (before["pickup_points"], before["terminals"], before["offices"], before["total"]) == (4, 1, 0, 5)
    assert (before["invited"], before["attended"], before["certified"], before["never_reached"]) == (
        0,
        0,
        0,
        5,
    )

    omar = await consenting_staff(client, people)
    mid = await held_meeting(client, clock, people, [omar])
    assert (await client.post(f"/v1/meetings/{mid}/close")).status_code == 200
    after = await coverage_of(client)
    # Invited: the three shops and the terminal with e-mail; the kiosk without one never was.
    assert (after["invited"], after["attended"], after["certified"], after["never_reached"]) == (4, 1, 1, 1)
    assert after["certified_share"] == 0.2

    unreached = (await client.get("/v1/reports/coverage/unreached", params={"municipality": "2560"})).json()
    assert [p["name"] for p in unreached["items"]] == ["Kiosken utan e-post"]
    assert unreached["items"][0]["street_address"] == "Torget 1"

    clock.set("2028-03-05T08:00:00+00:00")
    assert (await coverage_of(client))["follow_up_due"] == 1
    clock.set("2028-07-01T08:00:00+00:00")
    lapsed = await coverage_of(client)
    assert (lapsed["lapsed"], lapsed["certified"], lapsed["follow_up_due"]) == (1, 0, 0)

    # A closed place leaves the counts.
    archived = await client.post(f"/v1/organizations/{people.silent_shop['id']}/archive")
    assert archived.status_code == 200, archived.text
    final = await coverage_of(client)
    assert (final["pickup_points"], final["never_reached"]) == (3, 0)

    county = (await client.get("/v1/reports/coverage/rollup", params={"level": "county"})).json()
    [norrbotten] = [g for g in county["groups"] if g["code"] == "25"]
    assert (norrbotten["municipalities"], norrbotten["total"], norrbotten["lapsed"]) == (14, 4, 1)
    nation = (await client.get("/v1/reports/coverage/rollup", params={"level": "nation"})).json()
    assert [(g["code"], g["municipalities"]) for g in nation["groups"]] == [("SE", 290)]


async def test_unreached_pages_by_name(world) -> None:
    client, _, _ = world
    for n in range(5):
        await create(
            client,
            "/v1/organizations",
            {
                "kind": "pickup_point",
                "name": f"Ombud {n}",
                "street_address": f"Vägen {n}",
                "postal_code": "97231",
                "city": "Luleå",
                "latitude": 65.58,
                "longitude": 22.15,
                "municipality_code": "2580",
            },
        )
    url = "/v1/reports/coverage/unreached"
    first = await client.get(url, params={"county": "25", "limit": 4})
    assert 'rel="next"' in first.headers["link"]
    names, page = [], first.json()
    while True:
        names += [p["name"] for p in page["items"]]
        if page["next_cursor"] is None:
            break
        params = {"county": "25", "limit": 4, "cursor": page["next_cursor"]}
        page = (await client.get(url, params=params)).json()
    assert names == sorted(names) and len(names) == 10 and len(set(names)) == 10


async def test_progress_rolls_up_by_county_region_and_nation(world) -> None:
    client, _, _ = world
    assert (await client.put("/v1/municipalities/2560/decision", json=DECISION)).status_code == 201
    by_county = (await client.get("/v1/reports/progress/rollup", params={"level": "county"})).json()
    assert len(by_county["groups"]) == 21
    [norrbotten] = [g for g in by_county["groups"] if g["code"] == "25"]
    assert norrbotten["municipalities"] == 14
    assert norrbotten["by_current_step"] == [13, 1, 0, 0, 0, 0]
    assert norrbotten["steps_done"][0] == 1
    regions = (await client.get("/v1/reports/progress/rollup", params={"level": "police_region"})).json()
    [nord] = [g for g in regions["groups"] if g["code"] == "Nord"]
    assert nord["by_current_step"][1] == 1 and sum(nord["by_current_step"]) == nord["municipalities"]
    nation = (await client.get("/v1/reports/progress/rollup", params={"level": "nation"})).json()
    assert nation["groups"][0]["municipalities"] == 290 and nation["groups"][0]["by_current_step"][1] == 1
    filtered = (await client.get("/v1/reports/progress", params={"police_region": "Nord"})).json()
    assert {m["county_code"] for m in filtered["municipalities"]} == {"22", "23", "24", "25"}
    assert error_fields(await client.get("/v1/reports/progress", params={"police_region": "Atlantis"})) == {
        "police_region"
    }
    assert error_fields(await client.get("/v1/reports/progress", params={"county": "99"})) == {"county"}


async def test_scope_decides_what_a_report_holds(world) -> None:
    client, _, _ = world
    mine = (await make_key(client, "municipal_coordinator", municipality_code="2560"))["key"]
    county = (await make_key(client, "county_coordinator", county_code="25"))["key"]
    viewer = (await make_key(client, "viewer", county_code="01"))["key"]
    carrier = (await make_key(client, "carrier_integration", carrier="postnord"))["key"]

    rows = (await client.get("/v1/reports/progress", headers=bearer(mine))).json()["municipalities"]
    assert [r["municipality_code"] for r in rows] == ["2560"]
    problem(await client.get("/v1/municipalities/2580/progress", headers=bearer(mine)), 404)
    assert (await client.get("/v1/reports/coverage", params={"county": "01"}, headers=bearer(mine))).json()[
        "municipalities"
    ] == []
    # Roll-ups only for groups the scope covers whole: none for a municipality's coordinator.
    assert (await client.get("/v1/reports/progress/rollup", headers=bearer(mine))).json()["groups"] == []
    groups = (await client.get("/v1/reports/progress/rollup", headers=bearer(county))).json()["groups"]
    assert [g["code"] for g in groups] == ["25"]
    nation = await client.get(
        "/v1/reports/coverage/rollup", params={"level": "nation"}, headers=bearer(county)
    )
    assert nation.json()["groups"] == []
    rows = (await client.get("/v1/reports/coverage", headers=bearer(county))).json()["municipalities"]
    assert len(rows) == 14 and {r["county_code"] for r in rows} == {"25"}

    # Decisions: written by coordinators in scope, read by viewers in theirs.
    problem(await client.put("/v1/municipalities/2580/decision", json=DECISION, headers=bearer(mine)), 404)
    assert (
        await client.put("/v1/municipalities/2560/decision", json=DECISION, headers=bearer(mine))
    ).status_code == 201
    problem(await client.put("/v1/municipalities/0114/decision", json=DECISION, headers=bearer(viewer)), 403)
    problem(await client.get("/v1/municipalities/2560/decision", headers=bearer(viewer)), 404)
    problem(await client.get("/v1/reports/progress", headers=bearer(carrier)), 403)


async def test_exports_as_csv_and_geojson(world) -> None:
    client, _, _ = world
    assert (await client.put("/v1/municipalities/2560/decision", json=DECISION)).status_code == 201
    response = await client.get("/v1/reports/progress.csv", params={"county": "25"})
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="progress.csv"' in response.headers["content-disposition"]
    text = response.text
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(rows) == 14
    [alvsbyn] = [r for r in rows if r["municipality_code"] == "2560"]
    assert (alvsbyn["municipality_name"], alvsbyn["current_step"], alvsbyn["step1_decision_done"]) == (
        "Älvsbyn",
        "1",
        "true",
    )
    assert alvsbyn["decision_document_reference"] == "KS 2027/12 § 4"

    semi = await client.get("/v1/reports/coverage.csv", params={"county": "25", "delimiter": "semicolon"})
    header = semi.text.lstrip("\ufeff").splitlines()[0]
    assert header.split(";")[:3] == ["pickup_points", "terminals", "offices"]
    rollup = await client.get("/v1/reports/progress/rollup.csv", params={"level": "county"})
    assert len(list(csv.DictReader(io.StringIO(rollup.text.lstrip("\ufeff"))))) == 21

    geo = await client.get("/v1/reports/progress.geojson", params={"municipality": "2560"})
    assert geo.headers["content-type"].startswith("application/geo+json")
    [feature] = geo.json()["features"]
    assert feature["id"] == "2560" and feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert feature["properties"]["current_step"] == 1
    counties = (await client.get("/v1/reports/coverage/rollup.geojson", params={"county": "25"})).json()
    [county] = counties["features"]
    assert county["id"] == "25" and county["geometry"]["type"] in ("Polygon", "MultiPolygon")
    points = (
        await client.get("/v1/reports/coverage/unreached.geojson", params={"municipality": "2560"})
    ).json()
    assert {f["geometry"]["type"] for f in points["features"]} == {"Point"}
    assert len(points["features"]) == 5
    listed = await client.get("/v1/reports/coverage/unreached.csv", params={"municipality": "2560"})
    assert len(list(csv.DictReader(io.StringIO(listed.text.lstrip("\ufeff"))))) == 5


async def test_a_formula_in_a_name_stays_text_in_the_csv(world) -> None:
    client, _, _ = world
    await create(
        client,
        "/v1/organizations",
        {
            "kind": "pickup_point",
            "name": '=HYPERLINK("http://evil.example")',
            "street_address": "Storgatan 9",
            "postal_code": "94231",
            "city": "Älvsbyn",
            "latitude": 65.676,
            "longitude": 21.004,
            "municipality_code": "2560",
        },
    )
    text = (await client.get("/v1/reports/coverage/unreached.csv", params={"municipality": "2560"})).text
    [row] = [r for r in csv.DictReader(io.StringIO(text.lstrip("\ufeff"))) if "HYPERLINK" in r["name"]]
    assert row["name"].startswith("'=")


async def test_evaluations_per_group_and_period_with_the_change(world) -> None:
    client, clock, people = world
    omar = await consenting_staff(client, people)
    mid = await held_meeting(client, clock, people, [omar])
    answers = [
        (date(2027, 4, 2), {"meeting_useful": 3, "know_whom_to_contact": 4}),
        (date(2027, 4, 3), {"meeting_useful": 5, "know_whom_to_contact": 4}),
        (date(2027, 7, 1), {"meeting_useful": 5, "know_whom_to_contact": 5}),
    ]

    async def store() -> None:
        async with client.app.state.sessionmaker() as session:
            for day, values in answers:
                session.add(
                    SurveyResponse(
                        id=uuid4(), meeting_id=mid, respondent="attendee", answers=values, submitted_on=day
                    )
                )
            await session.commit()

    client.blocking_portal.call(store)
    report = (
        await client.get("/v1/reports/evaluations", params={"group": "municipality", "period": "quarter"})
    ).json()
    assert report["responses"] == 3
    assert [(r["code"], r["period"], r["responses"]) for r in report["rows"]] == [
        ("2560", "2027-Q2", 2),
        ("2560", "2027-Q3", 1),
    ]
    q2, q3 = report["rows"]
    assert (q2["mean"], q2["change"], q3["mean"], q3["change"]) == (4.0, None, 5.0, 1.0)
    assert {q["key"]: q["mean"] for q in q2["questions"]} == {
        "meeting_useful": 4.0,
        "know_whom_to_contact": 4.0,
    }
    county = (
        await client.get("/v1/reports/evaluations", params={"group": "county", "period": "year"})
    ).json()
    assert [(r["code"], r["responses"], r["meetings"]) for r in county["rows"]] == [("25", 3, 1)]
    meeting = (
        await client.get("/v1/reports/evaluations", params={"group": "meeting", "period": "month"})
    ).json()
    assert {r["code"] for r in meeting["rows"]} == {mid}
    later = (await client.get("/v1/reports/evaluations", params={"since": "2027-06-01"})).json()
    assert later["responses"] == 1
    assert error_fields(
        await client.get("/v1/reports/evaluations", params={"since": "2027-06-01", "until": "2027-05-01"})
    ) == {"until"}
    exported = await client.get("/v1/reports/evaluations.csv", params={"period": "quarter"})
    rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert [(r["period"], r["meeting_useful_mean"], r["change"]) for r in rows] == [
        ("2027-Q2", "4.0", ""),
        ("2027-Q3", "5.0", "1.0"),
    ]


# --- the dashboard (HTML through the test client; tests/test_dashboard_browser.py uses Chromium) ---


async def test_dashboard_signs_in_and_keeps_to_the_scope(world) -> None:
    client, _, _ = world
    assert (await client.put("/v1/municipalities/2560/decision", json=DECISION)).status_code == 201
    county = (await make_key(client, "county_coordinator", county_code="25"))["key"]
    carrier = (await make_key(client, "carrier_integration", carrier="postnord"))["key"]
    client.headers.pop("Authorization")

    away = await client.get("/dashboard", follow_redirects=False)
    assert (away.status_code, away.headers["location"]) == (303, "/dashboard/sign-in")
    wrong = await client.post("/dashboard/sign-in", data={"credential": "tmn_nope_nope"})
    assert wrong.status_code == 401 and "gäller inte" in wrong.text
    refused = await client.post("/dashboard/sign-in", data={"credential": carrier})
    assert refused.status_code == 403 and "set-cookie" not in refused.headers

    signed = await client.post("/dashboard/sign-in", data={"credential": county}, follow_redirects=False)
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and "Path=/dashboard" in cookie
    assert "Secure" in cookie  # the public address is https
    # The test client speaks http, where a browser would not send a Secure cookie back: set it.
    client.cookies.set("tmn_dashboard", cookie.split(";")[0].split("=", 1)[1])
    page = await client.get("/dashboard")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    html = page.text
    assert html.count("<path") >= 14 and 'data-code="2560"' in html and 'data-code="0180"' not in html
    assert "Älvsbyn: steg 1 av 5" in html and 'href="/dashboard/municipalities/2560"' in html
    alvsbyn = await client.get("/dashboard/municipalities/2560")
    assert alvsbyn.status_code == 200
    assert 'data-step="1" data-done="true"' in alvsbyn.text and "Beslut av Kommunstyrelsen" in alvsbyn.text
    assert "Kiosken utan e-post" in alvsbyn.text and 'data-category="never_reached"' in alvsbyn.text
    assert (await client.get("/dashboard/municipalities/0180")).status_code == 404
    export = await client.get("/dashboard/exports/progress.csv")
    assert export.status_code == 200 and len(export.text.strip().splitlines()) == 15

    out = await client.post("/dashboard/sign-out", follow_redirects=False)
    assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]
    client.cookies.clear()
    assert (await client.get("/dashboard", follow_redirects=False)).status_code == 303


async def test_a_municipal_coordinator_lands_on_their_municipality(world) -> None:
    client, _, _ = world
    mine = (await make_key(client, "municipal_coordinator", municipality_code="2560"))["key"]
    client.headers["Authorization"] = f"Bearer {mine}"
    landing = await client.get("/dashboard", follow_redirects=False)
    assert landing.headers["location"] == "/dashboard/municipalities/2560"
    page = await client.get("/dashboard/municipalities/2560")
    assert page.status_code == 200 and "← Alla kommuner" not in page.text
    # A revoked key ends the session at once.
    keys = (await client.get("/v1/api-keys", headers={"Authorization": f"Bearer {ADMIN_KEY}"})).json()[
        "items"
    ]
    [key] = [k for k in keys if k["name"] == "test municipal_coordinator"]
    revoked = await client.post(
        f"/v1/api-keys/{key['id']}/revoke", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert revoked.status_code == 200, revoked.text
    assert (await client.get("/dashboard/municipalities/2560", follow_redirects=False)).status_code == 303
