from __future__ import annotations

from typing import Any

import pytest

from service.organizations.models import PHYSICAL_KINDS, OrganizationKind
from tests.helpers import create, error_fields, pickup_point, problem


def minimal(kind: OrganizationKind) -> dict[str, Any]:
    if kind in PHYSICAL_KINDS:
        return pickup_point(f"A {kind.value}", kind=kind.value)
    body: dict[str, Any] = {"kind": kind.value, "name": f"A {kind.value}"}
    if kind is OrganizationKind.MUNICIPALITY:
        body["municipality_code"] = "2560"
    if kind is OrganizationKind.COUNTY_BOARD:
        body["county_code"] = "25"
    return body


@pytest.mark.parametrize("kind", list(OrganizationKind))
async def test_every_kind_can_be_created(client, kind: OrganizationKind) -> None:
    org = await create(client, "/v1/organizations", minimal(kind))
    assert org["kind"] == kind.value
    assert org["status"] == "active"
    assert org["archived_at"] is None


@pytest.mark.parametrize("kind", sorted(PHYSICAL_KINDS))
async def test_places_need_address_coordinates_and_one_municipality(client, kind: OrganizationKind) -> None:
    response = await client.post("/v1/organizations", json={"kind": kind.value, "name": "Paketombud"})
    assert error_fields(response) == {
        "street_address",
        "postal_code",
        "city",
        "latitude",
        "longitude",
        "municipality_code",
    }
    body = pickup_point(kind=kind.value)
    del body["longitude"]
    assert error_fields(await client.post("/v1/organizations", json=body)) == {"longitude"}


async def test_a_place_lies_in_its_municipality_and_county(client) -> None:
    org = await create(client, "/v1/organizations", pickup_point(municipality="2580"))
    assert (org["municipality_code"], org["county_code"]) == ("2580", "25")
    assert org["postal_code"] == "94231"  # stored without the space
    mismatch = pickup_point(county_code="01")
    assert error_fields(await client.post("/v1/organizations", json=mismatch)) == {"county_code"}
    unknown = pickup_point(municipality="9999")
    assert error_fields(await client.post("/v1/organizations", json=unknown)) == {"municipality_code"}


async def test_kind_specific_geography(client) -> None:
    municipality = {"kind": "municipality", "name": "Älvsbyns kommun"}
    assert error_fields(await client.post("/v1/organizations", json=municipality)) == {"municipality_code"}
    board = {"kind": "county_board", "name": "Länsstyrelsen"}
    assert error_fields(await client.post("/v1/organizations", json=board)) == {"county_code"}
    assert error_fields(await client.post("/v1/organizations", json=board | {"county_code": "99"})) == {
        "county_code"
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("postal_code", "9423"),
        ("postal_code", "ABCDE"),
        ("phone", "12"),
        ("phone", "not a phone"),
        ("email", "ombud@"),
        ("email", "x" * 250 + "@a.se"),
        ("org_number", "556677-8890"),
        ("org_number", "55667788"),
        ("website", "ftp://ombud.example"),
        ("latitude", 91),
        ("longitude", -181),
        ("municipality_code", "256"),
        ("kind", "shop"),
        ("name", "   "),
        ("street_address", ""),
    ],
)
async def test_invalid_values_name_their_field(client, field: str, value: Any) -> None:
    assert error_fields(await client.post("/v1/organizations", json=pickup_point(**{field: value}))) == {
        field
    }


async def test_valid_formats_are_normalised(client) -> None:
    org = await create(
        client,
        "/v1/organizations",
        pickup_point(
            phone="0920-123 45",
            email="Ombud@Storgatan.Example",
            org_number="2120000142",
            website="https://storgatan.example",
        ),
    )
    assert org["phone"] == "+4692012345"
    assert org["email"] == "Ombud@storgatan.example"
    assert org["org_number"] == "212000-0142"


async def test_police_region_only_for_police_and_known(client) -> None:
    police = {"kind": "police", "name": "Polisregion Nord"}
    assert (await create(client, "/v1/organizations", police | {"police_region": "Nord"}))[
        "police_region"
    ] == "Nord"
    assert error_fields(
        await client.post("/v1/organizations", json=police | {"police_region": "Lappland"})
    ) == {"police_region"}
    customs = {"kind": "customs", "name": "Tullverket", "police_region": "Nord"}
    assert error_fields(await client.post("/v1/organizations", json=customs)) == {"police_region"}


async def test_list_filters(client) -> None:
    await create(client, "/v1/organizations", pickup_point("Älvsby Livs"))
    await create(client, "/v1/organizations", pickup_point("Luleå Kiosk", municipality="2580"))
    await create(client, "/v1/organizations", pickup_point("Kiruna Paket", municipality="2584"))
    await create(
        client,
        "/v1/organizations",
        {"kind": "county_board", "name": "Länsstyrelsen Norrbotten", "county_code": "25"},
    )
    await create(client, "/v1/organizations", {"kind": "customs", "name": "Tullverket"})

    async def names(**params: Any) -> list[str]:
        response = await client.get("/v1/organizations", params=params | {"limit": 200})
        assert response.status_code == 200, response.text
        return [o["name"] for o in response.json()["items"]]

    assert await names(municipality="2560") == ["Älvsby Livs"]
    assert await names(county="25") == [
        "Kiruna Paket",
        "Luleå Kiosk",
        "Länsstyrelsen Norrbotten",
        "Älvsby Livs",
    ]
    assert await names(kind="county_board") == ["Länsstyrelsen Norrbotten"]
    assert await names(q="älvsby") == ["Älvsby Livs"]
    assert await names(q="KIOSK", county="25") == ["Luleå Kiosk"]
    assert error_fields(await client.get("/v1/organizations", params={"municipality": "9999"})) == {
        "municipality"
    }
    assert error_fields(await client.get("/v1/organizations", params={"kind": "shop"})) == {"kind"}


async def test_archive_hides_but_keeps(client) -> None:
    org = await create(client, "/v1/organizations", pickup_point("Stängt Ombud"))
    path = f"/v1/organizations/{org['id']}"
    archived = await client.post(f"{path}/archive")
    assert archived.status_code == 200
    assert archived.json()["status"] == "archived" and archived.json()["archived_at"]
    assert (await client.get("/v1/organizations", params={"q": "Stängt"})).json()["items"] == []
    listed = (await client.get("/v1/organizations", params={"q": "Stängt", "status": "archived"})).json()[
        "items"
    ]
    assert [o["id"] for o in listed] == [org["id"]]
    assert (await client.get(path)).json()["status"] == "archived"
    problem(await client.patch(path, json={"name": "Öppet igen"}), 409)
    restored = await client.post(f"{path}/restore")
    assert restored.json()["status"] == "active" and restored.json()["archived_at"] is None
    assert (await client.patch(path, json={"name": "Öppet igen"})).json()["name"] == "Öppet igen"


async def test_patch_merges(client) -> None:
    org = await create(
        client, "/v1/organizations", pickup_point(phone="+46920123456", email="a@ombud.example")
    )
    path = f"/v1/organizations/{org['id']}"
    changed = (await client.patch(path, json={"name": "Nytt namn"})).json()
    assert changed["name"] == "Nytt namn"
    assert changed["phone"] == org["phone"] and changed["email"] == org["email"]
    assert changed["updated_at"] >= org["updated_at"]

    cleared = (await client.patch(path, json={"phone": None})).json()
    assert cleared["phone"] is None and cleared["email"] == org["email"]

    assert error_fields(await client.patch(path, json={"name": None})) == {"name"}
    assert error_fields(await client.patch(path, json={"municipality_code": None})) == {"municipality_code"}
    assert error_fields(await client.patch(path, json={"surprise": 1})) == {"surprise"}

    moved = (await client.patch(path, json={"municipality_code": "0180"})).json()
    assert (moved["municipality_code"], moved["county_code"]) == ("0180", "01")
    unchanged = await client.patch(path, json={})
    assert unchanged.status_code == 200 and unchanged.json()["updated_at"] == moved["updated_at"]


async def test_unknown_organization_is_404(client) -> None:
    missing = "01a21156-3321-75b5-b66a-4f92e0dbc60e"
    problem(await client.get(f"/v1/organizations/{missing}"), 404)
    problem(await client.patch(f"/v1/organizations/{missing}", json={"name": "x"}), 404)
    problem(await client.post(f"/v1/organizations/{missing}/archive"), 404)
