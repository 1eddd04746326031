"""Participants: identity, e-mail uniqueness, phone and language, roles, employment history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.helpers import create, error_fields, problem

PEOPLE = "/v1/participants"
MISSING = "01890000-0000-7000-8000-000000000000"


async def organization(
    client: Any, name: str = "Älvsbyns kommun", municipality: str = "2560", kind: str = "municipality"
) -> dict[str, Any]:
    return await create(
        client, "/v1/organizations", {"kind": kind, "name": name, "municipality_code": municipality}
    )


async def person(
    client: Any, name: str = "Anna Berg", email: str = "anna@x.se", **extra: Any
) -> dict[str, Any]:
    return await create(client, PEOPLE, {"name": name, "email": email, **extra})


async def names(client: Any, **params: Any) -> list[str]:
    response = await client.get(PEOPLE, params=params)
    assert response.status_code == 200, response.text
    return [p["name"] for p in response.json()["items"]]


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- creating -------------------------------------------------------------------------------


async def test_create_a_participant(client) -> None:
    org = await organization(client)
    response = await client.post(
        PEOPLE,
        json={
            "name": "Anna Berg",
            "email": "anna@x.se",
            "phone": "+46701740605",
            "language": "en",
            "organization_id": org["id"],
            "roles": ["municipal_coordinator", "instructor"],
            "mailing_list_consent": True,
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "Anna Berg"
    assert body["email"] == "anna@x.se"
    assert body["phone"] == "+46701740605"
    assert body["language"] == "en"
    assert body["organization_id"] == org["id"]
    assert body["roles"] == ["instructor", "municipal_coordinator"]
    assert body["mailing_list_consent"] is True
    assert body["consent_changed_at"] is not None
    assert response.headers["location"].endswith(f"{PEOPLE}/{body['id']}")
    assert response.headers["etag"]

    again = await client.get(f"{PEOPLE}/{body['id']}")
    assert again.json() == body
    assert again.headers["etag"] == response.headers["etag"]


async def test_defaults(client) -> None:
    body = await person(client, "  Bo   Ek ", "bo@x.se")
    assert body["name"] == "Bo Ek"
    assert body["phone"] is None
    assert body["language"] == "sv"
    assert body["organization_id"] is None
    assert body["roles"] == []
    assert body["mailing_list_consent"] is False
    assert body["consent_changed_at"] is None


async def test_email_is_unique_regardless_of_case(client) -> None:
    first = await person(client, "Anna Berg", "anna@x.se")
    duplicate = await client.post(PEOPLE, json={"name": "Anna Andersson", "email": "ANNA@X.SE"})
    assert error_fields(duplicate, 409) == {"email"}
    assert await names(client) == ["Anna Berg"]

    other = await person(client, "Bo Ek", "Bo@X.se")
    # The domain is normalised to lower case, the local part kept as given.
    assert other["email"] == "Bo@x.se"
    response = await client.patch(f"{PEOPLE}/{other['id']}", json={"email": "Anna@x.SE"})
    assert error_fields(response, 409) == {"email"}
    # Changing the case of one's own address is no conflict.
    response = await client.patch(f"{PEOPLE}/{first['id']}", json={"email": "ANNA@x.se"})
    assert response.status_code == 200, response.text
    assert response.json()["email"] == "ANNA@x.se"


async def test_invalid_email(client) -> None:
    for bad in ("not-an-email", "anna@", "@x.se", "anna@@x.se", "an na@x.se"):
        response = await client.post(PEOPLE, json={"name": "Anna", "email": bad})
        assert error_fields(response) == {"email"}, bad
    assert error_fields(await client.post(PEOPLE, json={"name": "Anna", "email": "a@"})) == {"email"}
    assert error_fields(await client.post(PEOPLE, json={"name": "Anna"})) == {"email"}
    assert await names(client) == []


async def test_phone_is_normalised_to_e164(client) -> None:
    body = await person(client, phone="070-174 06 05")
    assert body["phone"] == "+46701740605"
    body = await person(client, "Bo Ek", "bo@x.se", phone="+46 (0)920 12 34 56")
    assert body["phone"] == "+46920123456"
    body = await person(client, "Cecilia", "c@x.se", phone="0046 70 174 06 06")
    assert body["phone"] == "+46701740606"


async def test_invalid_phone(client) -> None:
    for bad in ("12", "telefon", "070-17"):
        response = await client.post(PEOPLE, json={"name": "Anna", "email": "anna@x.se", "phone": bad})
        assert error_fields(response) == {"phone"}, bad
    response = await client.post(PEOPLE, json={"name": "Anna", "email": "anna@x.se", "phone": "1" * 31})
    assert error_fields(response) == {"phone"}


async def test_language_is_swedish_or_english(client) -> None:
    response = await client.post(PEOPLE, json={"name": "Anna", "email": "anna@x.se", "language": "de"})
    assert error_fields(response) == {"language"}
    assert (await person(client, language="sv"))["language"] == "sv"


async def test_roles(client) -> None:
    response = await client.post(PEOPLE, json={"name": "Anna", "email": "anna@x.se", "roles": ["wizard"]})
    errors = problem(response, 422)["errors"]
    assert [e["pointer"] for e in errors] == ["#/roles/0"]
    assert errors[0]["field"].startswith("roles")
    assert "wizard" in errors[0]["detail"]
    response = await client.post(PEOPLE, json={"name": "Anna", "email": "anna@x.se", "roles": "instructor"})
    assert error_fields(response) == {"roles"}

    body = await person(
        client, roles=["police_officer", "instructor", "police_officer", "instructor", "police_officer"]
    )
    assert body["roles"] == ["instructor", "police_officer"]


async def test_organization_must_exist_and_be_active(client) -> None:
    response = await client.post(
        PEOPLE, json={"name": "Anna", "email": "anna@x.se", "organization_id": MISSING}
    )
    assert error_fields(response) == {"organization_id"}
    org = await organization(client)
    assert (await client.post(f"/v1/organizations/{org['id']}/archive")).status_code == 200
    response = await client.post(
        PEOPLE, json={"name": "Anna", "email": "anna@x.se", "organization_id": org["id"]}
    )
    assert error_fields(response) == {"organization_id"}
    assert await names(client) == []


# --- bad input ------------------------------------------------------------------------------


async def test_unknown_fields_are_refused(client) -> None:
    response = await client.post(PEOPLE, json={"name": "Anna", "email": "anna@x.se", "nickname": "A"})
    assert error_fields(response) == {"nickname"}
    anna = await person(client)
    response = await client.patch(f"{PEOPLE}/{anna['id']}", json={"consent": True})
    assert error_fields(response) == {"consent"}
    response = await client.patch(f"{PEOPLE}/{anna['id']}", json={"id": MISSING})
    assert error_fields(response) == {"id"}


async def test_name_length(client) -> None:
    response = await client.post(PEOPLE, json={"name": "A" * 201, "email": "anna@x.se"})
    assert error_fields(response) == {"name"}
    assert error_fields(await client.post(PEOPLE, json={"name": "", "email": "anna@x.se"})) == {"name"}
    assert error_fields(await client.post(PEOPLE, json={"name": "   ", "email": "anna@x.se"})) == {"name"}
    assert (await person(client, "A" * 200))["name"] == "A" * 200


async def test_wrong_types(client) -> None:
    base = {"name": "Anna", "email": "anna@x.se"}
    assert error_fields(await client.post(PEOPLE, json=base | {"name": 123})) == {"name"}
    response = await client.post(PEOPLE, json=base | {"mailing_list_consent": "yes"})
    assert error_fields(response) == {"mailing_list_consent"}
    assert error_fields(await client.post(PEOPLE, json=base | {"organization_id": "x"})) == {
        "organization_id"
    }
    assert error_fields(await client.post(PEOPLE, json=base | {"phone": 46701740605})) == {"phone"}
    response = await client.post(PEOPLE, json=["Anna", "anna@x.se"])
    problem(response, 422)


async def test_broken_json(client) -> None:
    response = await client.post(
        PEOPLE, content=b'{"name": "Anna", "email": ', headers={"content-type": "application/json"}
    )
    body = problem(response, 400)
    assert body["type"] == "/problems/malformed-request"
    anna = await person(client)
    response = await client.patch(
        f"{PEOPLE}/{anna['id']}", content=b"{name: Anna}", headers={"content-type": "application/json"}
    )
    problem(response, 400)
    assert (await client.get(f"{PEOPLE}/{anna['id']}")).json()["name"] == "Anna Berg"


async def test_unknown_participant_is_404(client) -> None:
    problem(await client.get(f"{PEOPLE}/{MISSING}"), 404)
    problem(await client.patch(f"{PEOPLE}/{MISSING}", json={"name": "X"}), 404)
    problem(await client.post(f"{PEOPLE}/{MISSING}/leave"), 404)
    problem(await client.get(f"{PEOPLE}/{MISSING}/employments"), 404)
    problem(await client.get(f"{PEOPLE}/not-a-uuid"), 404)


# --- changing -------------------------------------------------------------------------------


async def test_patch_merges(client) -> None:
    org = await organization(client)
    anna = await person(
        client,
        phone="070-174 06 05",
        language="en",
        organization_id=org["id"],
        roles=["instructor"],
        mailing_list_consent=True,
    )
    url = f"{PEOPLE}/{anna['id']}"

    response = await client.patch(url, json={"name": "Anna Berg-Ek"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "Anna Berg-Ek"
    for field in ("email", "phone", "language", "organization_id", "roles", "mailing_list_consent"):
        assert body[field] == anna[field], field
    assert body["consent_changed_at"] == anna["consent_changed_at"]

    response = await client.patch(url, json={"phone": None})
    assert response.json()["phone"] is None
    assert response.json()["name"] == "Anna Berg-Ek"
    response = await client.patch(url, json={"phone": "0701740606"})
    assert response.json()["phone"] == "+46701740606"

    assert error_fields(await client.patch(url, json={"name": None})) == {"name"}
    assert error_fields(await client.patch(url, json={"email": None})) == {"email"}
    assert error_fields(await client.patch(url, json={"language": None})) == {"language"}
    assert error_fields(await client.patch(url, json={"phone": "12"})) == {"phone"}
    assert error_fields(await client.patch(url, json={"email": "nope"})) == {"email"}
    after = (await client.get(url)).json()
    assert (after["name"], after["phone"], after["email"]) == ("Anna Berg-Ek", "+46701740606", "anna@x.se")


async def test_null_is_refused_for_required_fields(client) -> None:
    anna = await person(client, roles=["instructor"], mailing_list_consent=True)
    url = f"{PEOPLE}/{anna['id']}"
    assert error_fields(await client.patch(url, json={"roles": None})) == {"roles"}
    assert error_fields(await client.patch(url, json={"mailing_list_consent": None})) == {
        "mailing_list_consent"
    }
    after = (await client.get(url)).json()
    assert (after["roles"], after["mailing_list_consent"]) == (["instructor"], True)


async def test_a_refused_patch_changes_nothing(client) -> None:
    org = await organization(client)
    anna = await person(client, organization_id=org["id"])
    url = f"{PEOPLE}/{anna['id']}"
    tag = (await client.get(url)).headers["etag"]
    response = await client.patch(
        url, json={"name": "Anna Ny", "phone": "0701740605", "organization_id": MISSING}
    )
    assert error_fields(response) == {"organization_id"}
    after = await client.get(url)
    assert after.headers["etag"] == tag
    assert (after.json()["name"], after.json()["phone"], after.json()["organization_id"]) == (
        "Anna Berg",
        None,
        org["id"],
    )
    history = (await client.get(f"{url}/employments")).json()
    assert [(e["organization_id"], e["ended_at"]) for e in history] == [(org["id"], None)]


async def test_roles_can_be_replaced(client) -> None:
    anna = await person(client, roles=["instructor"])
    url = f"{PEOPLE}/{anna['id']}"
    tag = (await client.get(url)).headers["etag"]
    response = await client.patch(url, json={"roles": ["police_officer", "instructor", "police_officer"]})
    assert response.status_code == 200, response.text
    assert response.json()["roles"] == ["instructor", "police_officer"]
    assert response.headers["etag"] != tag
    assert (await client.get(url)).json()["roles"] == ["instructor", "police_officer"]
    response = await client.patch(url, json={"roles": []})
    assert response.json()["roles"] == []
    assert await names(client, role="instructor") == []


async def test_etag_and_conditional_requests(client) -> None:
    anna = await person(client)
    url = f"{PEOPLE}/{anna['id']}"
    tag = (await client.get(url)).headers["etag"]
    assert (await client.get(url, headers={"If-None-Match": tag})).status_code == 304

    response = await client.patch(url, json={"language": "en"}, headers={"If-Match": tag})
    assert response.status_code == 200, response.text
    new_tag = response.headers["etag"]
    assert new_tag != tag
    stale = await client.patch(url, json={"language": "sv"}, headers={"If-Match": tag})
    problem(stale, 412)
    assert (await client.get(url)).json()["language"] == "en"
    problem(await client.post(f"{url}/leave", headers={"If-Match": tag}), 412)


async def test_consent_changes_are_dated(client) -> None:
    anna = await person(client, mailing_list_consent=True)
    given = instant(anna["consent_changed_at"])
    url = f"{PEOPLE}/{anna['id']}"

    # Repeating the same answer does not move the date.
    response = await client.patch(url, json={"mailing_list_consent": True})
    assert response.json()["consent_changed_at"] == anna["consent_changed_at"]

    response = await client.patch(url, json={"mailing_list_consent": False})
    body = response.json()
    assert body["mailing_list_consent"] is False
    withdrawn = instant(body["consent_changed_at"])
    assert withdrawn > given

    bo = await person(client, "Bo Ek", "bo@x.se")
    body = (await client.patch(f"{PEOPLE}/{bo['id']}", json={"mailing_list_consent": True})).json()
    assert body["mailing_list_consent"] is True
    assert body["consent_changed_at"] is not None


# --- employment -----------------------------------------------------------------------------


async def test_leaving_an_organization_keeps_the_person_and_the_history(client) -> None:
    org = await organization(client)
    anna = await person(client, organization_id=org["id"])
    url = f"{PEOPLE}/{anna['id']}"

    history = (await client.get(f"{url}/employments")).json()
    assert len(history) == 1
    assert history[0]["organization_id"] == org["id"]
    assert history[0]["organization_name"] == "Älvsbyns kommun"
    assert history[0]["ended_at"] is None

    tag = (await client.get(url)).headers["etag"]
    response = await client.post(f"{url}/leave", headers={"If-Match": tag})
    assert response.status_code == 200, response.text
    assert response.json()["organization_id"] is None
    assert response.headers["etag"] != tag

    still = await client.get(url)
    assert still.status_code == 200
    assert still.json()["organization_id"] is None
    assert still.json()["email"] == "anna@x.se"

    history = (await client.get(f"{url}/employments")).json()
    assert len(history) == 1
    assert history[0]["organization_id"] == org["id"]
    assert history[0]["ended_at"] is not None
    assert instant(history[0]["ended_at"]) >= instant(history[0]["started_at"])

    # Nothing left to leave.
    problem(await client.post(f"{url}/leave"), 409)
    assert await names(client, organization=org["id"]) == []


async def test_leaving_without_an_organization_is_a_conflict(client) -> None:
    anna = await person(client)
    problem(await client.post(f"{PEOPLE}/{anna['id']}/leave"), 409)
    assert (await client.get(f"{PEOPLE}/{anna['id']}/employments")).json() == []


async def test_moving_to_another_organization(client) -> None:
    alvsbyn = await organization(client)
    lulea = await organization(client, "Luleå kommun", "2580")
    anna = await person(client, organization_id=alvsbyn["id"])
    url = f"{PEOPLE}/{anna['id']}"

    response = await client.patch(url, json={"organization_id": lulea["id"]})
    assert response.status_code == 200, response.text
    assert response.json()["organization_id"] == lulea["id"]

    history = (await client.get(f"{url}/employments")).json()
    assert [e["organization_name"] for e in history] == ["Luleå kommun", "Älvsbyns kommun"]
    newest, oldest = history
    assert newest["ended_at"] is None
    assert oldest["ended_at"] is not None
    assert instant(newest["started_at"]) >= instant(oldest["ended_at"])
    assert instant(oldest["started_at"]) < instant(newest["started_at"])

    # Setting the same organization again changes nothing.
    await client.patch(url, json={"organization_id": lulea["id"]})
    assert len((await client.get(f"{url}/employments")).json()) == 2

    # null ends the employment just like /leave.
    response = await client.patch(url, json={"organization_id": None})
    assert response.json()["organization_id"] is None
    history = (await client.get(f"{url}/employments")).json()
    assert len(history) == 2
    assert all(e["ended_at"] is not None for e in history)

    # Moving to an unknown organization is refused and keeps the history as it was.
    response = await client.patch(url, json={"organization_id": MISSING})
    assert error_fields(response) == {"organization_id"}
    assert len((await client.get(f"{url}/employments")).json()) == 2


async def test_joining_an_organization_later_starts_an_employment(client) -> None:
    org = await organization(client)
    anna = await person(client)
    response = await client.patch(f"{PEOPLE}/{anna['id']}", json={"organization_id": org["id"]})
    assert response.json()["organization_id"] == org["id"]
    history = (await client.get(f"{PEOPLE}/{anna['id']}/employments")).json()
    assert [(e["organization_id"], e["ended_at"]) for e in history] == [(org["id"], None)]


# --- listing --------------------------------------------------------------------------------


async def test_list_filters(client) -> None:
    alvsbyn = await organization(client)
    lulea = await organization(client, "Luleå kommun", "2580")
    stockholm = await organization(client, "Stockholms stad", "0180")
    await person(client, "Anna Berg", "anna@x.se", organization_id=alvsbyn["id"], roles=["instructor"])
    await person(
        client,
        "Bo Ek",
        "Bo.Ek@x.se",
        organization_id=lulea["id"],
        roles=["instructor", "municipal_coordinator"],
    )
    await person(client, "Cecilia Berg", "cecilia@x.se", organization_id=stockholm["id"])
    await person(client, "David Åberg", "david@x.se", roles=["police_officer"])

    assert await names(client) == ["Anna Berg", "Bo Ek", "Cecilia Berg", "David Åberg"]
    assert await names(client, organization=lulea["id"]) == ["Bo Ek"]
    assert await names(client, role="instructor") == ["Anna Berg", "Bo Ek"]
    assert await names(client, role="police_officer") == ["David Åberg"]
    assert await names(client, role="customs_officer") == []
    assert await names(client, municipality="2560") == ["Anna Berg"]
    assert await names(client, county="25") == ["Anna Berg", "Bo Ek"]
    assert await names(client, county="01") == ["Cecilia Berg"]
    assert await names(client, county="25", role="municipal_coordinator") == ["Bo Ek"]
    assert await names(client, email="BO.EK@X.SE") == ["Bo Ek"]
    assert await names(client, email="bo.ek@x.se") == ["Bo Ek"]
    assert await names(client, email="nobody@x.se") == []
    assert await names(client, q="berg") == ["Anna Berg", "Cecilia Berg", "David Åberg"]
    assert await names(client, q="ÅBERG") == ["David Åberg"]
    assert await names(client, q="%") == []


async def test_list_refuses_bad_filters(client) -> None:
    assert error_fields(await client.get(PEOPLE, params={"role": "wizard"})) == {"role"}
    assert error_fields(await client.get(PEOPLE, params={"email": "not-an-email"})) == {"email"}
    assert error_fields(await client.get(PEOPLE, params={"county": "2"})) == {"county"}
    assert error_fields(await client.get(PEOPLE, params={"municipality": "x"})) == {"municipality"}
    assert error_fields(await client.get(PEOPLE, params={"organization": "x"})) == {"organization"}
    assert error_fields(await client.get(PEOPLE, params={"limit": 0})) == {"limit"}


async def test_list_pages(client) -> None:
    for i in range(5):
        await person(client, f"Person {i}", f"p{i}@x.se")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        body = (await client.get(PEOPLE, params=params)).json()
        seen += [p["name"] for p in body["items"]]
        if not (cursor := body["next_cursor"]):
            break
    assert seen == [f"Person {i}" for i in range(5)]
