"""Helpers shared by the tests: problem assertions, contexts, request payloads."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.principal import Principal, Role, Scope
from service.context import Context


def problem(response: Any, status: int | None = None) -> dict[str, Any]:
    """Assert a response is RFC 9457 problem+json (with the given status) and return its body."""
    if status is not None:
        assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code
    assert body["type"].startswith("/problems/")
    assert body["title"]
    return body


def error_fields(response: Any, status: int = 422) -> set[str]:
    """The fields a problem response names."""
    return {e["field"] for e in problem(response, status).get("errors", [])}


def context(session: AsyncSession, principal: Principal | None = None) -> Context:
    return Context(session=session, principal=principal or Principal.development())


def municipal_coordinator(code: str) -> Principal:
    return Principal(
        id=f"coordinator-{code}",
        name=f"coordinator of {code}",
        roles=frozenset({Role.MUNICIPAL_COORDINATOR}),
        scope=Scope(municipality_codes=frozenset({code})),
    )


def county_coordinator(code: str) -> Principal:
    return Principal(
        id=f"county-{code}",
        name=f"county coordinator of {code}",
        roles=frozenset({Role.COUNTY_COORDINATOR}),
        scope=Scope(county_codes=frozenset({code})),
    )


def pickup_point(name: str = "Storgatans Livs", municipality: str = "2560", **extra: Any) -> dict[str, Any]:
    body = {
        "kind": "pickup_point",
        "name": name,
        "street_address": "Storgatan 1",
        "postal_code": "942 31",
        "city": "Älvsbyn",
        "latitude": 65.676,
        "longitude": 21.004,
        "municipality_code": municipality,
    }
    body.update(extra)
    return body


async def create(client: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST and assert 201; returns the created resource."""
    response = await client.post(path, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def network_tree(client: Any) -> dict[str, str]:
    """national > regional (Nord: 22-25) > county group (25) > local (Älvsbyn, Luleå); returns ids."""
    national = await create(
        client, "/v1/networks", {"name": "Nationella kontakter", "kind": "national_contacts"}
    )
    nord = await create(
        client,
        "/v1/networks",
        {
            "name": "Region Nord",
            "kind": "regional_management_group",
            "parent_id": national["id"],
            "county_codes": ["22", "23", "24", "25"],
        },
    )
    norrbotten = await create(
        client,
        "/v1/networks",
        {
            "name": "Länsgrupp Norrbotten",
            "kind": "county_group",
            "parent_id": nord["id"],
            "county_codes": ["25"],
        },
    )
    alvsbyn = await create(
        client,
        "/v1/networks",
        {
            "name": "Lokal arbetsgrupp Älvsbyn",
            "kind": "local_working_group",
            "parent_id": norrbotten["id"],
            "municipality_code": "2560",
        },
    )
    lulea = await create(
        client,
        "/v1/networks",
        {
            "name": "Lokal arbetsgrupp Luleå",
            "kind": "local_working_group",
            "parent_id": norrbotten["id"],
            "municipality_code": "2580",
        },
    )
    return {
        "national": national["id"],
        "nord": nord["id"],
        "norrbotten": norrbotten["id"],
        "alvsbyn": alvsbyn["id"],
        "lulea": lulea["id"],
    }
