"""Shared by the meeting tests: a controllable clock, the Älvsbyn cast, delivery and mail reading."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import icalendar
import zxingcpp
from PIL import Image

from service.meetings.mail import Outside
from service.meetings.ticker import TickReport, run_tick
from service.outbox.service import OutboxWorker
from service.settings import Settings
from tests.conftest import client_for
from tests.helpers import create, network_tree, pickup_point


@dataclass
class Clock:
    """The time the app sees; tests move it instead of waiting."""

    now: datetime = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def set(self, value: str) -> None:
        self.now = datetime.fromisoformat(value)

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Cast:
    networks: dict[str, str]
    coordinator: dict[str, Any]
    police: dict[str, Any]
    customs: dict[str, Any]
    shops: list[dict[str, Any]]
    terminal: dict[str, Any]
    silent_shop: dict[str, Any]
    agent_manager: dict[str, Any]
    local_network: dict[str, Any]
    known_staff: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


async def cast(client: Any) -> Cast:
    """Älvsbyn: a coordinator, police and customs instructors, three shops with e-mail, one without,
    a terminal, and PostNord's regional agent manager for Norrbotten."""
    networks = await network_tree(client)
    local_network = await create(
        client,
        "/v1/networks",
        {
            "name": "Lokalt nätverk Älvsbyn",
            "kind": "local_network",
            "parent_id": networks["norrbotten"],
            "municipality_code": "2560",
        },
    )
    kommun = await create(
        client,
        "/v1/organizations",
        {"kind": "municipality", "name": "Älvsbyns kommun", "municipality_code": "2560"},
    )
    polisen = await create(
        client, "/v1/organizations", {"kind": "police", "name": "Lokalpolisområde Piteå", "county_code": "25"}
    )
    tullen = await create(
        client, "/v1/organizations", {"kind": "customs", "name": "Tullverket Luleå", "county_code": "25"}
    )
    postnord = await create(
        client, "/v1/organizations", {"kind": "postal_operator", "name": "PostNord Norr", "county_code": "25"}
    )
    shops = [
        await create(
            client, "/v1/organizations", pickup_point(name, email=email, street_address=f"Storgatan {i}")
        )
        for i, (name, email) in enumerate(
            [
                ("Storgatans Livs", "butik@storgatanslivs.example"),
                ("ICA Nära Älvsbyn", "info@icanara.example"),
                ("Shell Älvsbyn", "shell@alvsbyn.example"),
            ],
            start=1,
        )
    ]
    silent_shop = await create(
        client, "/v1/organizations", pickup_point("Kiosken utan e-post", street_address="Torget 1")
    )
    terminal = await create(
        client,
        "/v1/organizations",
        pickup_point(
            "Terminalen Älvsbyn",
            kind="terminal",
            email="terminal@alvsbyn.example",
            street_address="Industrivägen 4",
        ),
    )

    async def person(name: str, email: str, org: str, roles: list[str], **extra: Any) -> dict[str, Any]:
        body = {"name": name, "email": email, "organization_id": org, "roles": roles, **extra}
        return await create(client, "/v1/participants", body)

    coordinator = await person(
        "Anna Lindqvist",
        "anna.lindqvist@alvsbyn.example",
        kommun["id"],
        ["municipal_coordinator"],
        phone="0929-17000",
    )
    police = await person(
        "Per Polis",
        "per.polis@polisen.example",
        polisen["id"],
        ["police_officer", "instructor"],
        instructor_qualified_on="2026-10-01",
    )
    customs = await person(
        "Tina Tull",
        "tina.tull@tullverket.example",
        tullen["id"],
        ["customs_officer", "instructor"],
        instructor_qualified_on="2026-10-01",
    )
    agent_manager = await person(
        "Rolf Ombudsansvarig", "rolf@postnord.example", postnord["id"], ["regional_agent_manager"]
    )
    # Already known to TMN: registering "Elin.Berg@…" through a link must find her, not copy her.
    known_staff = await person(
        "Elin Berg", "elin.berg@storgatanslivs.example", shops[0]["id"], ["pickup_point_staff"]
    )
    return Cast(
        networks=networks,
        coordinator=coordinator,
        police=police,
        customs=customs,
        shops=shops,
        terminal=terminal,
        silent_shop=silent_shop,
        agent_manager=agent_manager,
        local_network=local_network,
        known_staff=known_staff,
    )


def collaboration_meeting(cast: Cast, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "network_id": cast.networks["alvsbyn"],
        "kind": "collaboration_meeting",
        "title": "Samverkansmöte Älvsbyn",
        # Stockholm wall time: 30 March 2027 is summer time (UTC+2), the 1 March clock is winter.
        "starts_at": "2027-03-30T18:00:00",
        "ends_at": "2027-03-30T20:00:00",
        "venue": "Kommunhuset, Storgatan 27, Älvsbyn",
        "capacity": 2,
        "agenda": ["Polisen: lägesbild", "Tullverket: försändelser", "Kommunen: drogläget"],
        "registration_deadline": "2027-03-25",
        "coordinator_id": cast.coordinator["id"],
        "instructor_ids": [cast.police["id"], cast.customs["id"]],
    }
    body.update(extra)
    return body


def deliver(client: Any) -> int:
    """Run the outbox worker (inside the test's transaction) until nothing is due."""
    state = client.app.state
    worker = OutboxWorker(state.sessionmaker, state.plugins, state.settings)
    total = 0
    while n := client.blocking_portal.call(worker.run_once):
        total += n
    return total


def tick(client: Any, clock: Clock) -> TickReport:
    state = client.app.state
    outside = Outside(settings=state.settings, plugins=state.plugins, directory_cache=state.directory_cache)
    report: TickReport = client.blocking_portal.call(run_tick, state.sessionmaker, outside, clock)
    return report


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def link(message: EmailMessage, kind: str) -> str:
    """The token of the first link to a page (/rsvp/, /seat/, /survey/) in the message's text."""
    match = re.search(rf"/{kind}/([A-Za-z0-9_\-.]+)", text_of(message))
    assert match, text_of(message)
    return match.group(1)


def attachment(message: EmailMessage, content_type: str) -> bytes:
    for part in message.iter_attachments():
        if part.get_content_type() == content_type:
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload
    raise AssertionError(f"no {content_type} attachment in {message['Subject']}")


def calendar_of(message: EmailMessage) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(attachment(message, "text/calendar"))


def qr_payload(png: bytes) -> str:
    [result] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    return str(result.text)


def to(messages: list[EmailMessage], address: str) -> list[EmailMessage]:
    return [m for m in messages if m["To"] == address]


def mail_settings(settings: Settings, port: int) -> Settings:
    import json

    import msgspec

    config = json.dumps({"smtp": {"host": "127.0.0.1", "port": port, "timeout_seconds": 2}})
    return msgspec.structs.replace(
        settings,
        email_transport="smtp",
        plugin_config=config,
        email_from="TMN Älvsbyn <tmn@alvsbyn.example>",
        public_base_url="https://tmn.alvsbyn.example",
        outbox_backoff_seconds=0.0,
        # The directory plugins' HTTP source is not configured in these tests.
        plugins=("smtp", "police", "customs", "municipality", "webhooks"),
    )


@asynccontextmanager
async def meeting_world(engine: Any, settings: Settings, smtp: Any) -> AsyncIterator[tuple[Any, Clock, Cast]]:
    """A client on the SMTP server, its clock (1 March 2027) and the Älvsbyn cast: what the
    meeting, certification and report tests start from."""
    async with client_for(engine, mail_settings(settings, smtp.port)) as client:
        clock = Clock()
        client.app.state.clock = clock
        yield client, clock, await cast(client)
