"""Networks: levels and kinds, geographic scope, the hierarchy, ETags and members."""

from __future__ import annotations

from typing import Any

from tests.helpers import create, error_fields, network_tree, problem

NETWORKS = "/v1/networks"


async def national(client: Any, name: str = "Nationella kontakter") -> dict[str, Any]:
    return await create(client, NETWORKS, {"name": name, "kind": "national_contacts"})


async def regional(
    client: Any, parent_id: str, counties: list[str], name: str = "Länsgrupp", kind: str = "county_group"
) -> dict[str, Any]:
    return await create(
        client, NETWORKS, {"name": name, "kind": kind, "parent_id": parent_id, "county_codes": counties}
    )


async def local(
    client: Any, parent_id: str, municipality: str, name: str = "Lokal arbetsgrupp"
) -> dict[str, Any]:
    return await create(
        client,
        NETWORKS,
        {
            "name": name,
            "kind": "local_working_group",
            "parent_id": parent_id,
            "municipality_code": municipality,
        },
    )


async def names(client: Any, **params: Any) -> list[str]:
    response = await client.get(NETWORKS, params=params)
    assert response.status_code == 200, response.text
    return [n["name"] for n in response.json()["items"]]


async def person(client: Any, name: str, email: str, organization_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "email": email}
    if organization_id is not None:
        body["organization_id"] = organization_id
    return await create(client, "/v1/participants", body)


async def municipality_org(client: Any, name: str = "Älvsbyns kommun", code: str = "2560") -> dict[str, Any]:
    return await create(
        client, "/v1/organizations", {"kind": "municipality", "name": name, "municipality_code": code}
    )


# --- levels and kinds -----------------------------------------------------------------------


async def test_level_follows_from_kind(client) -> None:
    ids = await network_tree(client)
    expected = {
        "national": ("national", "national_contacts"),
        "nord": ("regional", "regional_management_group"),
        "norrbotten": ("regional", "county_group"),
        "alvsbyn": ("local", "local_working_group"),
    }
    for key, (level, kind) in expected.items():
        body = (await client.get(f"{NETWORKS}/{ids[key]}")).json()
        assert (body["level"], body["kind"]) == (level, kind)

    alvsbyn = (await client.get(f"{NETWORKS}/{ids['alvsbyn']}")).json()
    assert alvsbyn["municipality_code"] == "2560"
    assert alvsbyn["county_codes"] == []
    assert alvsbyn["parent_id"] == ids["norrbotten"]
    nord = (await client.get(f"{NETWORKS}/{ids['nord']}")).json()
    assert nord["county_codes"] == ["22", "23", "24", "25"]
    assert nord["municipality_code"] is None


async def test_created_network_has_location_and_etag(client) -> None:
    response = await client.post(NETWORKS, json={"name": "  Nationella  ", "kind": "national_contacts"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "Nationella"
    assert body["parent_id"] is None
    assert response.headers["location"].endswith(f"{NETWORKS}/{body['id']}")
    assert response.headers["etag"]
    again = await client.get(f"{NETWORKS}/{body['id']}")
    assert again.headers["etag"] == response.headers["etag"]


async def test_a_level_that_agrees_with_the_kind_is_accepted(client) -> None:
    body = await create(
        client, NETWORKS, {"name": "Nationella", "kind": "national_contacts", "level": "national"}
    )
    assert body["level"] == "national"
    nord = await create(
        client,
        NETWORKS,
        {
            "name": "Projektgrupp",
            "kind": "project_group",
            "level": "regional",
            "parent_id": body["id"],
            "county_codes": ["25"],
        },
    )
    assert nord["level"] == "regional"


async def test_a_level_that_disagrees_with_the_kind_is_refused(client) -> None:
    top = await national(client)
    response = await client.post(
        NETWORKS, json={"name": "Fel", "kind": "national_contacts", "level": "local"}
    )
    assert error_fields(response) == {"level"}
    response = await client.post(
        NETWORKS,
        json={
            "name": "Fel",
            "kind": "county_group",
            "level": "national",
            "parent_id": top["id"],
            "county_codes": ["25"],
        },
    )
    assert error_fields(response) == {"level"}
    assert await names(client) == ["Nationella kontakter"]


async def test_unknown_kind_or_level_is_refused(client) -> None:
    assert error_fields(await client.post(NETWORKS, json={"name": "X", "kind": "club"})) == {"kind"}
    response = await client.post(NETWORKS, json={"name": "X", "kind": "national_contacts", "level": "planet"})
    assert error_fields(response) == {"level"}


async def test_blank_name_is_refused(client) -> None:
    """Names are stripped; one that is only whitespace must not become an empty name."""
    response = await client.post(NETWORKS, json={"name": "   ", "kind": "national_contacts"})
    assert error_fields(response) == {"name"}
    top = await national(client)
    response = await client.patch(f"{NETWORKS}/{top['id']}", json={"name": "  "})
    assert error_fields(response) == {"name"}
    assert (await client.get(f"{NETWORKS}/{top['id']}")).json()["name"] == "Nationella kontakter"


async def test_create_is_idempotent_with_a_key(client) -> None:
    body = {"name": "Nationella kontakter", "kind": "national_contacts"}
    first = await client.post(NETWORKS, json=body, headers={"Idempotency-Key": "net-1"})
    again = await client.post(NETWORKS, json=body, headers={"Idempotency-Key": "net-1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert await names(client) == ["Nationella kontakter"]
    other = await client.post(NETWORKS, json=body | {"name": "Annat"}, headers={"Idempotency-Key": "net-1"})
    assert error_fields(other) == {"Idempotency-Key"}


# --- local networks -------------------------------------------------------------------------


async def test_local_network_needs_exactly_one_municipality(client) -> None:
    ids = await network_tree(client)
    base = {"name": "Lokalt", "kind": "local_network", "parent_id": ids["norrbotten"]}

    assert error_fields(await client.post(NETWORKS, json=base)) == {"municipality_code"}
    response = await client.post(NETWORKS, json=base | {"municipality_code": "2560", "county_codes": ["25"]})
    assert error_fields(response) == {"county_codes"}
    response = await client.post(NETWORKS, json=base | {"municipality_code": "9999"})
    assert error_fields(response) == {"municipality_code"}
    response = await client.post(NETWORKS, json=base | {"municipality_code": "25600"})
    assert error_fields(response) == {"municipality_code"}

    created = await create(client, NETWORKS, base | {"municipality_code": "2584"})
    assert created["municipality_code"] == "2584"
    assert created["level"] == "local"


async def test_local_network_hangs_under_a_regional_network_covering_its_county(client) -> None:
    ids = await network_tree(client)
    top = await national(client, "Andra nationella")
    stockholm = await regional(client, top["id"], ["01"], "Länsgrupp Stockholm")
    base = {"name": "Lokalt Älvsbyn", "kind": "local_working_group", "municipality_code": "2560"}

    assert error_fields(await client.post(NETWORKS, json=base)) == {"parent_id"}
    response = await client.post(NETWORKS, json=base | {"parent_id": ids["national"]})
    assert error_fields(response) == {"parent_id"}
    response = await client.post(NETWORKS, json=base | {"parent_id": stockholm["id"]})
    assert error_fields(response) == {"parent_id"}
    response = await client.post(NETWORKS, json=base | {"parent_id": ids["alvsbyn"]})
    assert error_fields(response) == {"parent_id"}
    response = await client.post(NETWORKS, json=base | {"parent_id": "01890000-0000-7000-8000-000000000000"})
    assert error_fields(response) == {"parent_id"}

    # Both the county group (25) and the management group (22-25) cover Norrbotten.
    under_nord = await create(client, NETWORKS, base | {"parent_id": ids["nord"]})
    assert under_nord["parent_id"] == ids["nord"]
    under_stockholm = await create(
        client, NETWORKS, base | {"parent_id": stockholm["id"], "municipality_code": "0180"}
    )
    assert under_stockholm["municipality_code"] == "0180"


# --- regional networks ----------------------------------------------------------------------


async def test_regional_network_needs_a_county(client) -> None:
    top = await national(client)
    base = {"name": "Region", "kind": "regional_management_group", "parent_id": top["id"]}

    assert error_fields(await client.post(NETWORKS, json=base)) == {"county_codes"}
    assert error_fields(await client.post(NETWORKS, json=base | {"county_codes": []})) == {"county_codes"}
    response = await client.post(NETWORKS, json=base | {"county_codes": ["25"], "municipality_code": "2560"})
    assert error_fields(response) == {"municipality_code"}


async def test_unknown_county_is_named_by_its_index(client) -> None:
    top = await national(client)
    base = {"name": "Region", "kind": "county_group", "parent_id": top["id"]}
    response = await client.post(NETWORKS, json=base | {"county_codes": ["99"]})
    assert error_fields(response) == {"county_codes[0]"}
    # A malformed code is caught by the schema, also naming the list entry.
    response = await client.post(NETWORKS, json=base | {"county_codes": ["25", "9"]})
    assert [e["pointer"] for e in problem(response, 422)["errors"]] == ["#/county_codes/1"]


async def test_unknown_county_index_is_the_clients_index(client) -> None:
    """The error must point at the entry the client sent, not at a position in a sorted copy."""
    top = await national(client)
    response = await client.post(
        NETWORKS,
        json={"name": "Region", "kind": "county_group", "parent_id": top["id"], "county_codes": ["99", "25"]},
    )
    body = problem(response, 422)
    assert [e["field"] for e in body["errors"]] == ["county_codes[0]"]
    assert [e["pointer"] for e in body["errors"]] == ["#/county_codes/0"]


async def test_counties_are_deduplicated_and_sorted(client) -> None:
    top = await national(client)
    body = await regional(client, top["id"], ["25", "22", "25"])
    assert body["county_codes"] == ["22", "25"]


async def test_regional_network_hangs_under_national_or_wider_regional(client) -> None:
    ids = await network_tree(client)
    base = {"name": "Projektgrupp", "kind": "project_group"}

    assert error_fields(await client.post(NETWORKS, json=base | {"county_codes": ["25"]})) == {"parent_id"}
    # Under a regional network that does not include all its counties.
    response = await client.post(
        NETWORKS, json=base | {"county_codes": ["24", "25"], "parent_id": ids["norrbotten"]}
    )
    assert error_fields(response) == {"parent_id"}
    response = await client.post(NETWORKS, json=base | {"county_codes": ["01"], "parent_id": ids["nord"]})
    assert error_fields(response) == {"parent_id"}
    # Under a local network.
    response = await client.post(NETWORKS, json=base | {"county_codes": ["25"], "parent_id": ids["alvsbyn"]})
    assert error_fields(response) == {"parent_id"}

    under_nord = await regional(client, ids["nord"], ["24", "25"], "Projekt Nord", "project_group")
    assert under_nord["parent_id"] == ids["nord"]
    under_norrbotten = await regional(client, ids["norrbotten"], ["25"], "Projekt Norrbotten")
    assert under_norrbotten["parent_id"] == ids["norrbotten"]
    under_national = await regional(client, ids["national"], ["01", "03"], "Region Mitt")
    assert under_national["county_codes"] == ["01", "03"]


# --- national networks ----------------------------------------------------------------------


async def test_national_network_has_no_parent_and_no_scope(client) -> None:
    top = await national(client)
    base = {"name": "Andra nationella", "kind": "national_contacts"}
    assert error_fields(await client.post(NETWORKS, json=base | {"parent_id": top["id"]})) == {"parent_id"}
    assert error_fields(await client.post(NETWORKS, json=base | {"county_codes": ["25"]})) == {"county_codes"}
    response = await client.post(NETWORKS, json=base | {"municipality_code": "2560"})
    assert error_fields(response) == {"municipality_code"}
    # Giving it a parent later is refused too.
    other = await national(client, "Tredje nationella")
    response = await client.patch(f"{NETWORKS}/{other['id']}", json={"parent_id": top["id"]})
    assert error_fields(response) == {"parent_id"}
    assert (await client.get(f"{NETWORKS}/{other['id']}")).json()["parent_id"] is None


# --- the hierarchy stays a tree -------------------------------------------------------------


async def test_no_cycles(client) -> None:
    top = await national(client)
    a = await regional(client, top["id"], ["25"], "A")
    b = await regional(client, a["id"], ["25"], "B")
    c = await regional(client, b["id"], ["25"], "C")

    assert error_fields(await client.patch(f"{NETWORKS}/{a['id']}", json={"parent_id": b["id"]})) == {
        "parent_id"
    }
    assert error_fields(await client.patch(f"{NETWORKS}/{a['id']}", json={"parent_id": c["id"]})) == {
        "parent_id"
    }
    assert error_fields(await client.patch(f"{NETWORKS}/{a['id']}", json={"parent_id": a["id"]})) == {
        "parent_id"
    }
    assert (await client.get(f"{NETWORKS}/{a['id']}")).json()["parent_id"] == top["id"]

    # Moving C up is no cycle.
    response = await client.patch(f"{NETWORKS}/{c['id']}", json={"parent_id": a["id"]})
    assert response.status_code == 200, response.text
    assert response.json()["parent_id"] == a["id"]


async def test_a_regional_network_cannot_drop_a_county_a_child_needs(client) -> None:
    ids = await network_tree(client)
    response = await client.patch(f"{NETWORKS}/{ids['nord']}", json={"county_codes": ["22", "23", "24"]})
    assert error_fields(response) == {"county_codes"}
    # The local networks under Norrbotten need county 25.
    response = await client.patch(f"{NETWORKS}/{ids['norrbotten']}", json={"county_codes": ["24"]})
    assert error_fields(response) == {"county_codes"}
    assert (await client.get(f"{NETWORKS}/{ids['nord']}")).json()["county_codes"] == ["22", "23", "24", "25"]

    # Dropping a county no child needs is fine; the parent must still cover the rest.
    response = await client.patch(f"{NETWORKS}/{ids['nord']}", json={"county_codes": ["25"]})
    assert response.status_code == 200, response.text
    assert response.json()["county_codes"] == ["25"]
    response = await client.patch(f"{NETWORKS}/{ids['norrbotten']}", json={"county_codes": ["24", "25"]})
    assert error_fields(response) == {"parent_id"}


async def test_regional_counties_cannot_be_emptied(client) -> None:
    ids = await network_tree(client)
    response = await client.patch(f"{NETWORKS}/{ids['nord']}", json={"county_codes": None})
    assert error_fields(response) == {"county_codes"}
    response = await client.patch(f"{NETWORKS}/{ids['nord']}", json={"county_codes": []})
    assert error_fields(response) == {"county_codes"}


async def test_kind_changes_only_within_its_level(client) -> None:
    ids = await network_tree(client)
    response = await client.patch(f"{NETWORKS}/{ids['norrbotten']}", json={"kind": "local_network"})
    assert error_fields(response) == {"kind"}
    response = await client.patch(f"{NETWORKS}/{ids['alvsbyn']}", json={"kind": "county_group"})
    assert error_fields(response) == {"kind"}
    response = await client.patch(f"{NETWORKS}/{ids['national']}", json={"kind": "project_group"})
    assert error_fields(response) == {"kind"}

    response = await client.patch(f"{NETWORKS}/{ids['norrbotten']}", json={"kind": "project_group"})
    assert response.status_code == 200, response.text
    assert (response.json()["kind"], response.json()["level"]) == ("project_group", "regional")
    response = await client.patch(f"{NETWORKS}/{ids['alvsbyn']}", json={"kind": "local_network"})
    assert (response.json()["kind"], response.json()["level"]) == ("local_network", "local")


async def test_patch_merges(client) -> None:
    ids = await network_tree(client)
    response = await client.patch(f"{NETWORKS}/{ids['alvsbyn']}", json={"description": "Träffas varje månad"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["description"] == "Träffas varje månad"
    assert body["name"] == "Lokal arbetsgrupp Älvsbyn"
    assert body["municipality_code"] == "2560"
    assert body["parent_id"] == ids["norrbotten"]

    response = await client.patch(f"{NETWORKS}/{ids['alvsbyn']}", json={"description": None})
    assert response.json()["description"] is None
    assert error_fields(await client.patch(f"{NETWORKS}/{ids['alvsbyn']}", json={"name": None})) == {"name"}
    response = await client.patch(f"{NETWORKS}/{ids['alvsbyn']}", json={"municipality_code": "0180"})
    assert error_fields(response) == {"parent_id"}
    response = await client.patch(f"{NETWORKS}/{ids['alvsbyn']}", json={"municipality_code": "2580"})
    assert response.json()["municipality_code"] == "2580"
    response = await client.patch(f"{NETWORKS}/{ids['alvsbyn']}", json={"level": "regional"})
    assert error_fields(response) == {"level"}


async def test_unknown_network_is_404(client) -> None:
    missing = "01890000-0000-7000-8000-000000000000"
    problem(await client.get(f"{NETWORKS}/{missing}"), 404)
    problem(await client.get(f"{NETWORKS}/{missing}/tree"), 404)
    problem(await client.patch(f"{NETWORKS}/{missing}", json={"name": "X"}), 404)
    problem(await client.get(f"{NETWORKS}/{missing}/members"), 404)


# --- the tree -------------------------------------------------------------------------------


async def test_tree_lists_descendants_parents_first(client) -> None:
    ids = await network_tree(client)
    response = await client.get(f"{NETWORKS}/{ids['national']}/tree")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["root_id"] == ids["national"]
    nodes = body["nodes"]
    depth = {n["id"]: n["depth"] for n in nodes}
    assert depth == {
        ids["national"]: 0,
        ids["nord"]: 1,
        ids["norrbotten"]: 2,
        ids["alvsbyn"]: 3,
        ids["lulea"]: 3,
    }
    position = {n["id"]: i for i, n in enumerate(nodes)}
    for node in nodes:
        if node["id"] != ids["national"]:
            assert position[node["parent_id"]] < position[node["id"]]
            assert depth[node["parent_id"]] == node["depth"] - 1
    alvsbyn = next(n for n in nodes if n["id"] == ids["alvsbyn"])
    assert alvsbyn["municipality_code"] == "2560"
    assert alvsbyn["level"] == "local"


async def test_subtree_excludes_networks_above_and_beside(client) -> None:
    ids = await network_tree(client)
    await regional(client, ids["national"], ["01"], "Länsgrupp Stockholm")
    body = (await client.get(f"{NETWORKS}/{ids['norrbotten']}/tree")).json()
    assert body["root_id"] == ids["norrbotten"]
    assert [(n["name"], n["depth"]) for n in body["nodes"]] == [
        ("Länsgrupp Norrbotten", 0),
        ("Lokal arbetsgrupp Luleå", 1),
        ("Lokal arbetsgrupp Älvsbyn", 1),
    ]
    leaf = (await client.get(f"{NETWORKS}/{ids['lulea']}/tree")).json()
    assert [n["id"] for n in leaf["nodes"]] == [ids["lulea"]]


# --- listing --------------------------------------------------------------------------------


async def test_list_filters(client) -> None:
    ids = await network_tree(client)
    await regional(client, ids["national"], ["01"], "Länsgrupp Stockholm")

    assert await names(client, level="local") == ["Lokal arbetsgrupp Luleå", "Lokal arbetsgrupp Älvsbyn"]
    assert await names(client, level="national") == ["Nationella kontakter"]
    assert await names(client, kind="county_group") == ["Länsgrupp Norrbotten", "Länsgrupp Stockholm"]
    assert await names(client, level="regional", kind="regional_management_group") == ["Region Nord"]
    assert await names(client, municipality="2580") == ["Lokal arbetsgrupp Luleå"]
    assert await names(client, municipality="0180") == []
    assert set(await names(client, county="25")) == {
        "Länsgrupp Norrbotten",
        "Lokal arbetsgrupp Luleå",
        "Lokal arbetsgrupp Älvsbyn",
        "Region Nord",
    }
    assert await names(client, county="22") == ["Region Nord"]
    assert await names(client, county="01") == ["Länsgrupp Stockholm"]
    assert await names(client, parent=ids["national"]) == ["Länsgrupp Stockholm", "Region Nord"]
    assert await names(client, parent=ids["norrbotten"]) == [
        "Lokal arbetsgrupp Luleå",
        "Lokal arbetsgrupp Älvsbyn",
    ]
    assert await names(client, q="ÄLVS") == ["Lokal arbetsgrupp Älvsbyn"]
    assert await names(client, q="länsgrupp", county="25") == ["Länsgrupp Norrbotten"]
    assert len(await names(client)) == 6


async def test_list_refuses_bad_filters(client) -> None:
    response = await client.get(NETWORKS, params={"level": "national", "kind": "county_group"})
    assert error_fields(response) == {"kind"}
    assert error_fields(await client.get(NETWORKS, params={"level": "planet"})) == {"level"}
    assert error_fields(await client.get(NETWORKS, params={"county": "2"})) == {"county"}
    assert error_fields(await client.get(NETWORKS, params={"municipality": "25600"})) == {"municipality"}
    assert error_fields(await client.get(NETWORKS, params={"parent": "not-a-uuid"})) == {"parent"}


async def test_list_pages(client) -> None:
    await network_tree(client)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = await client.get(NETWORKS, params=params)
        body = response.json()
        assert len(body["items"]) <= 2
        seen += [n["name"] for n in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert 'rel="next"' in response.headers["link"]
    assert seen == sorted(seen)
    assert len(seen) == 5 == len(set(seen))


# --- ETags ----------------------------------------------------------------------------------


async def test_etag_and_conditional_requests(client) -> None:
    ids = await network_tree(client)
    url = f"{NETWORKS}/{ids['alvsbyn']}"
    first = await client.get(url)
    tag = first.headers["etag"]
    assert tag

    not_modified = await client.get(url, headers={"If-None-Match": tag})
    assert not_modified.status_code == 304
    assert not_modified.headers["etag"] == tag

    response = await client.patch(url, json={"name": "Arbetsgrupp Älvsbyn"}, headers={"If-Match": tag})
    assert response.status_code == 200, response.text
    new_tag = response.headers["etag"]
    assert new_tag != tag
    assert (await client.get(url)).headers["etag"] == new_tag

    stale = await client.patch(url, json={"name": "Gammalt"}, headers={"If-Match": tag})
    problem(stale, 412)
    assert stale.headers["etag"] == new_tag
    assert (await client.get(url)).json()["name"] == "Arbetsgrupp Älvsbyn"
    assert (await client.get(url, headers={"If-None-Match": tag})).status_code == 200


async def test_etag_moves_when_only_counties_change(client) -> None:
    ids = await network_tree(client)
    url = f"{NETWORKS}/{ids['nord']}"
    tag = (await client.get(url)).headers["etag"]
    response = await client.patch(
        url, json={"county_codes": ["21", "22", "23", "24", "25"]}, headers={"If-Match": tag}
    )
    assert response.status_code == 200, response.text
    assert response.json()["county_codes"] == ["21", "22", "23", "24", "25"]
    assert response.headers["etag"] != tag
    problem(await client.patch(url, json={"name": "X"}, headers={"If-Match": tag}), 412)


# --- members --------------------------------------------------------------------------------


async def test_add_members(client) -> None:
    ids = await network_tree(client)
    org = await municipality_org(client)
    anna = await person(client, "Anna Berg", "anna@example.se", org["id"])
    bo = await person(client, "Bo Ek", "bo@example.se")
    url = f"{NETWORKS}/{ids['alvsbyn']}/members"

    response = await client.post(url, json={"participant_id": anna["id"], "role": "convenor"})
    assert response.status_code == 201, response.text
    member = response.json()
    assert member["network_id"] == ids["alvsbyn"]
    assert member["participant_id"] == anna["id"]
    assert member["participant_name"] == "Anna Berg"
    assert member["role"] == "convenor"
    # The represented organization defaults to the person's employer.
    assert member["organization_id"] == org["id"]
    assert member["organization_name"] == "Älvsbyns kommun"
    assert member["left_at"] is None
    assert member["joined_at"]
    assert response.headers["location"].endswith(f"{url}/{member['id']}")
    assert response.headers["etag"]

    plain = await create(client, url, {"participant_id": bo["id"]})
    assert plain["role"] == "member"
    assert plain["organization_id"] is None
    assert plain["organization_name"] is None

    one = await client.get(f"{url}/{member['id']}")
    assert one.json() == member
    assert one.headers["etag"] == response.headers["etag"]


async def test_member_can_represent_another_organization(client) -> None:
    ids = await network_tree(client)
    employer = await municipality_org(client)
    police = await create(
        client, "/v1/organizations", {"kind": "police", "name": "Polisen Nord", "county_code": "25"}
    )
    anna = await person(client, "Anna Berg", "anna@example.se", employer["id"])
    url = f"{NETWORKS}/{ids['norrbotten']}/members"
    member = await create(
        client, url, {"participant_id": anna["id"], "role": "representative", "organization_id": police["id"]}
    )
    assert (member["organization_id"], member["organization_name"]) == (police["id"], "Polisen Nord")
    response = await client.post(
        f"{NETWORKS}/{ids['nord']}/members",
        json={"participant_id": anna["id"], "organization_id": "01890000-0000-7000-8000-000000000000"},
    )
    assert error_fields(response) == {"organization_id"}


async def test_member_errors(client) -> None:
    ids = await network_tree(client)
    anna = await person(client, "Anna Berg", "anna@example.se")
    url = f"{NETWORKS}/{ids['alvsbyn']}/members"
    await create(client, url, {"participant_id": anna["id"]})

    duplicate = await client.post(url, json={"participant_id": anna["id"], "role": "instructor"})
    assert error_fields(duplicate, 409) == {"participant_id"}
    unknown = await client.post(url, json={"participant_id": "01890000-0000-7000-8000-000000000000"})
    assert error_fields(unknown) == {"participant_id"}
    assert error_fields(await client.post(url, json={"participant_id": anna["id"], "role": "boss"})) == {
        "role"
    }
    assert error_fields(await client.post(url, json={"role": "member"})) == {"participant_id"}
    assert error_fields(await client.post(url, json={"participant_id": "x"})) == {"participant_id"}
    # The same person may be in another network at the same time.
    other = await create(client, f"{NETWORKS}/{ids['lulea']}/members", {"participant_id": anna["id"]})
    assert other["network_id"] == ids["lulea"]

    missing = "01890000-0000-7000-8000-000000000000"
    problem(await client.get(f"{url}/{missing}"), 404)
    problem(await client.patch(f"{url}/{missing}", json={"role": "member"}), 404)
    problem(await client.delete(f"{url}/{missing}"), 404)
    # A member of one network is not found through another.
    problem(await client.get(f"{NETWORKS}/{ids['alvsbyn']}/members/{other['id']}"), 404)


async def test_list_members_and_filter_by_role(client) -> None:
    ids = await network_tree(client)
    url = f"{NETWORKS}/{ids['alvsbyn']}/members"
    people = [await person(client, f"Person {i}", f"p{i}@example.se") for i in range(4)]
    roles = ["convenor", "member", "member", "instructor"]
    for p, role in zip(people, roles, strict=True):
        await create(client, url, {"participant_id": p["id"], "role": role})
    await create(client, f"{NETWORKS}/{ids['lulea']}/members", {"participant_id": people[0]["id"]})

    body = (await client.get(url)).json()
    assert [m["participant_id"] for m in body["items"]] == [p["id"] for p in people]
    assert all(m["network_id"] == ids["alvsbyn"] for m in body["items"])
    members = (await client.get(url, params={"role": "member"})).json()["items"]
    assert {m["participant_name"] for m in members} == {"Person 1", "Person 2"}
    assert (await client.get(url, params={"role": "representative"})).json()["items"] == []
    assert error_fields(await client.get(url, params={"role": "boss"})) == {"role"}


async def test_change_member_role(client) -> None:
    ids = await network_tree(client)
    anna = await person(client, "Anna Berg", "anna@example.se")
    url = f"{NETWORKS}/{ids['alvsbyn']}/members"
    created = await client.post(url, json={"participant_id": anna["id"]})
    member, tag = created.json(), created.headers["etag"]

    response = await client.patch(
        f"{url}/{member['id']}", json={"role": "convenor"}, headers={"If-Match": tag}
    )
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "convenor"
    assert response.headers["etag"] != tag
    assert (await client.get(f"{url}/{member['id']}")).json()["role"] == "convenor"
    assert [m["role"] for m in (await client.get(url, params={"role": "convenor"})).json()["items"]] == [
        "convenor"
    ]
    problem(
        await client.patch(f"{url}/{member['id']}", json={"role": "member"}, headers={"If-Match": tag}), 412
    )
    assert error_fields(await client.patch(f"{url}/{member['id']}", json={"role": "boss"})) == {"role"}
    assert error_fields(await client.patch(f"{url}/{member['id']}", json={"joined_at": "2020-01-01"})) == {
        "joined_at"
    }


async def test_ending_a_membership_keeps_history(client) -> None:
    ids = await network_tree(client)
    anna = await person(client, "Anna Berg", "anna@example.se")
    bo = await person(client, "Bo Ek", "bo@example.se")
    url = f"{NETWORKS}/{ids['alvsbyn']}/members"
    member = await create(client, url, {"participant_id": anna["id"], "role": "convenor"})
    await create(client, url, {"participant_id": bo["id"]})

    response = await client.delete(f"{url}/{member['id']}")
    assert response.status_code == 204, response.text

    current = (await client.get(url)).json()["items"]
    assert [m["participant_id"] for m in current] == [bo["id"]]
    everyone = (await client.get(url, params={"include_former": "true"})).json()["items"]
    assert len(everyone) == 2
    former = next(m for m in everyone if m["id"] == member["id"])
    assert former["left_at"] is not None
    assert former["role"] == "convenor"
    assert (await client.get(f"{url}/{member['id']}")).json()["left_at"] == former["left_at"]

    # An ended membership cannot be changed, and ending it again changes nothing.
    problem(await client.patch(f"{url}/{member['id']}", json={"role": "member"}), 409)
    assert (await client.delete(f"{url}/{member['id']}")).status_code == 204
    assert (await client.get(f"{url}/{member['id']}")).json()["left_at"] == former["left_at"]

    # The person can join again: a new membership, the old one stays as history.
    again = await create(client, url, {"participant_id": anna["id"], "role": "member"})
    assert again["id"] != member["id"]
    assert again["left_at"] is None
    everyone = (await client.get(url, params={"include_former": True})).json()["items"]
    assert len(everyone) == 3
    assert {member["id"], again["id"]} <= {m["id"] for m in everyone}
    assert len([m for m in everyone if m["participant_id"] == anna["id"]]) == 2
    assert {m["participant_id"] for m in (await client.get(url)).json()["items"]} == {anna["id"], bo["id"]}


async def test_ending_a_membership_honours_if_match(client) -> None:
    ids = await network_tree(client)
    anna = await person(client, "Anna Berg", "anna@example.se")
    url = f"{NETWORKS}/{ids['alvsbyn']}/members"
    created = await client.post(url, json={"participant_id": anna["id"]})
    member, tag = created.json(), created.headers["etag"]
    await client.patch(f"{url}/{member['id']}", json={"role": "instructor"})
    problem(await client.delete(f"{url}/{member['id']}", headers={"If-Match": tag}), 412)
    assert (await client.get(f"{url}/{member['id']}")).json()["left_at"] is None
