from __future__ import annotations

from tests.helpers import error_fields, problem


async def test_counties_are_the_21(client) -> None:
    response = await client.get("/v1/counties", params={"limit": 200})
    assert response.status_code == 200
    body = response.json()
    assert len(body["items"]) == 21
    assert body["next_cursor"] is None
    norrbotten = next(c for c in body["items"] if c["code"] == "25")
    assert norrbotten == {
        "code": "25",
        "name": "Norrbottens län",
        "police_region": "Nord",
        "municipality_count": 14,
    }
    assert sum(c["municipality_count"] for c in body["items"]) == 290


async def test_one_county(client) -> None:
    response = await client.get("/v1/counties/01")
    assert response.json()["name"] == "Stockholms län"
    assert response.json()["municipality_count"] == 26
    problem(await client.get("/v1/counties/99"), 404)
    assert error_fields(await client.get("/v1/counties/1")) == {"code"}


async def test_municipalities_by_code(client) -> None:
    alvsbyn = (await client.get("/v1/municipalities/2560")).json()
    assert alvsbyn == {
        "code": "2560",
        "name": "Älvsbyn",
        "county_code": "25",
        "county_name": "Norrbottens län",
        "police_region": "Nord",
    }
    assert (await client.get("/v1/municipalities/2580")).json()["name"] == "Luleå"
    problem(await client.get("/v1/municipalities/9999"), 404)
    assert error_fields(await client.get("/v1/municipalities/25600")) == {"code"}


async def test_municipalities_of_a_county_page_through_all(client) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params = {"county": "14", "limit": 20}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/v1/municipalities", params=params)
        body = response.json()
        seen += [m["code"] for m in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            assert "link" not in response.headers
            break
        assert 'rel="next"' in response.headers["link"]
    assert len(seen) == 49 == len(set(seen))
    assert seen == sorted(seen)
    assert all(code.startswith("14") for code in seen)


async def test_all_290_municipalities(client) -> None:
    total, cursor = 0, None
    while True:
        params = {"limit": 200} | ({"cursor": cursor} if cursor else {})
        body = (await client.get("/v1/municipalities", params=params)).json()
        total += len(body["items"])
        if not (cursor := body["next_cursor"]):
            break
    assert total == 290


async def test_name_search_ignores_case_including_swedish_letters(client) -> None:
    body = (await client.get("/v1/municipalities", params={"q": "ÄLV"})).json()
    assert {m["name"] for m in body["items"]} >= {"Älvsbyn", "Älvdalen", "Älvkarleby"}
    body = (await client.get("/v1/municipalities", params={"q": "luleå"})).json()
    assert [m["code"] for m in body["items"]] == ["2580"]
    # LIKE wildcards are literal.
    assert (await client.get("/v1/municipalities", params={"q": "%"})).json()["items"] == []


async def test_unknown_or_malformed_county_filter(client) -> None:
    assert error_fields(await client.get("/v1/municipalities", params={"county": "99"})) == {"county"}
    assert error_fields(await client.get("/v1/municipalities", params={"county": "x"})) == {"county"}
