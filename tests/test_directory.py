"""Contact directories: police, customs and municipality sources merged per municipality; an
HTTP source on loopback; failing and hanging sources; consent; vCard."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec
import pytest
import vobject
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from service.settings import Settings
from tests.conftest import client_for
from tests.helpers import create, network_tree, pickup_point, problem


class ContactList:
    """A county's published contact list on loopback: JSON, slow, or broken on demand."""

    def __init__(self) -> None:
        self.hits = 0
        self.status = 200
        self.delay = 0.0
        self.entries: list[dict[str, Any]] = [
            {
                "organization": "Länsstyrelsen i Norrbottens län",
                "role": "ANDT-samordnare",
                "kind": "office",
                "phone": "010-225 50 00",
                "url": "https://lansstyrelsen.example/norrbotten",
                "municipality_code": "2560",
            },
            {"organization": "Polisen", "role": "Akut", "kind": "emergency", "phone": "112"},  # a duplicate
            {
                "organization": "Luleå kommun",
                "role": "Växel",
                "kind": "office",
                "phone": "0920-45 30 00",
                "municipality_code": "2580",
            },
        ]
        source = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                source.hits += 1
                time.sleep(source.delay)
                body = json.dumps(source.entries).encode()
                try:
                    self.send_response(source.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the slow case: TMN gave up waiting, as it should

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/kontakter?kommun={{municipality}}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def contact_list() -> Iterator[ContactList]:
    source = ContactList()
    yield source
    source.close()


@pytest.fixture
async def directory_client(
    engine: AsyncEngine, settings: Settings, contact_list: ContactList
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    config = {"http_directory": {"url": contact_list.url, "source": "lansstyrelsen"}}
    configured = msgspec.structs.replace(
        settings, plugin_config=json.dumps(config), plugin_timeout_seconds=1.0
    )
    async with client_for(engine, configured) as client:
        yield client


async def coordinator(client: Any, code: str, name: str, listed: bool) -> dict[str, Any]:
    org = await create(
        client,
        "/v1/organizations",
        {"kind": "municipality", "name": f"{name}s kommun", "municipality_code": code},
    )
    return await create(
        client,
        "/v1/participants",
        {
            "name": name,
            "email": f"{name.lower()}@kommun{code}.example",
            "phone": "070-174 06 20",
            "organization_id": org["id"],
            "roles": ["municipal_coordinator"],
            "listed_in_directory": listed,
        },
    )


async def contacts(client: Any, code: str) -> dict[str, Any]:
    response = await client.get(f"/v1/municipalities/{code}/contacts")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_alvsbyn_and_lulea_from_every_source(directory_client) -> None:
    await coordinator(directory_client, "2560", "Anna", listed=True)
    await coordinator(directory_client, "2560", "Hemlig", listed=False)
    await coordinator(directory_client, "2580", "Erik", listed=True)

    alvsbyn = await contacts(directory_client, "2560")
    assert alvsbyn["failed_sources"] == []
    items = alvsbyn["contacts"]
    assert [c["kind"] for c in items] == sorted(
        (c["kind"] for c in items), key=["emergency", "non_emergency", "tip_line", "office", "person"].index
    )
    assert items[0]["phone"] == "112" and items[0]["kind"] == "emergency"
    assert sum(1 for c in items if c["phone"] == "112") == 1  # the list's 112 merged with the police's
    by_org = {c["organization"] for c in items}
    assert {
        "Polisen",
        "Polisregion Nord",
        "Lokalpolisområde Piteå älvdal",
        "Tullverket",
        "Tullverket, Luleå",
        "Länsstyrelsen i Norrbottens län",
        "Annas kommun",
    } <= by_org
    assert "Luleå kommun" not in by_org  # the list's entry for another municipality
    people = [c for c in items if c["kind"] == "person"]
    assert [(p["email"], p["source"]) for p in people] == [("anna@kommun2560.example", "municipality")]
    assert next(c for c in items if c["kind"] == "tip_line")["phone"] == "90 114"

    lulea = (await contacts(directory_client, "2580"))["contacts"]
    assert {"Lokalpolisområde Luleå", "Luleå kommun", "Eriks kommun"} <= {c["organization"] for c in lulea}


async def test_withdrawn_consent_disappears_at_once(directory_client) -> None:
    anna = await coordinator(directory_client, "2560", "Anna", listed=True)
    assert [
        c["email"] for c in (await contacts(directory_client, "2560"))["contacts"] if c["kind"] == "person"
    ]
    await directory_client.patch(f"/v1/participants/{anna['id']}", json={"listed_in_directory": False})
    assert not [c for c in (await contacts(directory_client, "2560"))["contacts"] if c["kind"] == "person"]


async def test_convenors_who_consented_are_listed(directory_client) -> None:
    tree = await network_tree(directory_client)
    org = await create(directory_client, "/v1/organizations", pickup_point())
    convenor = await create(
        directory_client,
        "/v1/participants",
        {
            "name": "Sara",
            "email": "sara@ombud.example",
            "organization_id": org["id"],
            "listed_in_directory": True,
        },
    )
    await directory_client.post(
        f"/v1/networks/{tree['alvsbyn']}/members", json={"participant_id": convenor["id"], "role": "convenor"}
    )
    people = [c for c in (await contacts(directory_client, "2560"))["contacts"] if c["kind"] == "person"]
    assert [(p["email"], p["role"]) for p in people] == [
        ("sara@ombud.example", "Sammankallande, lokal arbetsgrupp")
    ]


async def test_outside_sources_are_cached(directory_client, contact_list) -> None:
    await contacts(directory_client, "2560")
    await contacts(directory_client, "2560")
    assert contact_list.hits == 1
    await contacts(directory_client, "2580")
    assert contact_list.hits == 2


async def test_a_failing_source_is_named_and_the_rest_answer(directory_client, contact_list) -> None:
    contact_list.status = 500
    body = await contacts(directory_client, "2560")
    assert body["failed_sources"] == ["http_directory"]
    assert body["contacts"][0]["phone"] == "112"


async def test_a_hanging_source_is_cut_off(directory_client, contact_list) -> None:
    contact_list.delay = 3.0
    started = time.monotonic()
    body = await contacts(directory_client, "2560")
    assert time.monotonic() - started < 2.5  # the plugin timeout (1 s), not the source's 3 s
    assert body["failed_sources"] == ["http_directory"]
    assert any(c["phone"] == "90 114" for c in body["contacts"])
    status = {p["name"]: p for p in (await directory_client.get("/v1/plugins")).json()}
    assert status["http_directory"]["health"] == "degraded"


async def test_vcard_for_a_phone(directory_client) -> None:
    await coordinator(directory_client, "2560", "Anna", listed=True)
    expected = (await contacts(directory_client, "2560"))["contacts"]
    response = await directory_client.get("/v1/municipalities/2560/contacts.vcf")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/vcard")
    cards = list(vobject.readComponents(response.text))
    assert len(cards) == len(expected)
    phones = {card.tel.value for card in cards if hasattr(card, "tel")}
    assert {"112", "114 14", "90 114"} <= phones
    assert any(
        getattr(card, "email", None) and card.email.value == "anna@kommun2560.example" for card in cards
    )


async def test_unknown_municipality(directory_client) -> None:
    problem(await directory_client.get("/v1/municipalities/9999/contacts"), 404)
