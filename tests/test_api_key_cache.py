"""The cache of verified API keys (TMN_API_KEY_CACHE_SECONDS) and the pickup-point list's hot path.

Through the app on a real database: a key revoked through the API stops working at once; a key
changed behind the app's back (another process) is seen within the cache's time; last_used_at is
still recorded, at most once a minute, without changing the key's ETag. On PostgreSQL, an app
that owns its engine (as in production, commits real) reads the list outside a transaction; its
answer is the same as inside one, and concurrent first uses of a key all succeed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import update
from sqlalchemy.pool import NullPool

from service.api_keys import service as api_key_service
from service.api_keys.models import ApiKey
from service.api_keys.schemas import ApiKeyCreate
from service.api_keys.service import ApiKeyService
from service.app import create_app
from service.auth.principal import Principal, Role
from service.context import Context
from service.db import create_engine, create_sessionmaker
from service.meetings.mail import Outside
from service.migrate import upgrade
from service.organizations.models import OrganizationStatus
from service.registries import points, schemas
from service.registries.points import PickupPointService
from service.seed import seed
from service.settings import Settings
from tests.conftest import ADMIN_KEY, ADMIN_PREFIX, ADMIN_SECRET, PgDatabases, new_database_url
from tests.helpers import problem
from tests.test_registries import carrier_key, push, synthetic


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def make_key(client: Any, role: str = "viewer", **scope: str) -> dict[str, Any]:
    response = await client.post("/v1/api-keys", json={"name": f"cache {role}", "role": role, **scope})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def change_in_database(client: Any, prefix: str, **values: Any) -> None:
    """Change a key behind the app's back, as another process (or the CLI) would."""

    async def change() -> None:
        async with client.app.state.sessionmaker() as session:
            await session.execute(update(ApiKey).where(ApiKey.prefix == prefix).values(**values))
            await session.commit()

    client.blocking_portal.call(change)


async def test_a_revoked_key_stops_working_at_once(client) -> None:
    key = await make_key(client)
    for _ in range(3):  # the first checks the database; the others are answered from the cache
        assert (await client.get("/v1/counties", headers=bearer(key["key"]))).status_code == 200
    assert len(client.app.state.api_key_cache) >= 1
    revoked = await client.post(f"/v1/api-keys/{key['id']}/revoke")
    assert revoked.json()["status"] == "revoked"
    body = problem(await client.get("/v1/counties", headers=bearer(key["key"])), 401)
    assert "revoked" in body["detail"]


async def test_a_change_elsewhere_is_seen_within_the_cache_time(client) -> None:
    key = await make_key(client)
    assert (await client.get("/v1/counties", headers=bearer(key["key"]))).status_code == 200
    # Revoked by another process: this one still trusts its check for up to 30 s …
    change_in_database(client, key["prefix"], revoked_at=datetime.now(UTC))
    assert (await client.get("/v1/counties", headers=bearer(key["key"]))).status_code == 200
    # … and looks again once that has passed.
    client.app.state.api_key_cache.ttl = 0.000001
    problem(await client.get("/v1/counties", headers=bearer(key["key"])), 401)


async def test_an_expired_key_leaves_the_cache(client) -> None:
    soon = datetime.now(UTC) + timedelta(minutes=5)
    response = await client.post(
        "/v1/api-keys", json={"name": "expiring", "role": "viewer", "expires_at": soon.isoformat()}
    )
    key = response.json()
    assert (await client.get("/v1/counties", headers=bearer(key["key"]))).status_code == 200
    later = datetime.now(UTC) + timedelta(minutes=6)
    original = api_key_service.utcnow
    api_key_service.utcnow = lambda: later  # type: ignore[assignment]
    try:
        body = problem(await client.get("/v1/counties", headers=bearer(key["key"])), 401)
    finally:
        api_key_service.utcnow = original  # type: ignore[assignment]
    assert "expired" in body["detail"]


async def test_without_a_cache_every_request_checks_the_database(engine, settings) -> None:
    from tests.conftest import client_for

    async with client_for(engine, msgspec.structs.replace(settings, api_key_cache_seconds=0)) as client:
        key = await make_key(client)
        assert (await client.get("/v1/counties", headers=bearer(key["key"]))).status_code == 200
        change_in_database(client, key["prefix"], revoked_at=datetime.now(UTC))
        problem(await client.get("/v1/counties", headers=bearer(key["key"])), 401)
        assert len(client.app.state.api_key_cache) == 0


async def test_last_used_is_recorded_once_a_minute_without_changing_the_etag(client) -> None:
    key = await make_key(client)
    assert key["last_used_at"] is None
    assert (await client.get("/v1/counties", headers=bearer(key["key"]))).status_code == 200
    first = await client.get(f"/v1/api-keys/{key['id']}")
    used = first.json()["last_used_at"]
    assert used is not None
    assert (await client.get("/v1/counties", headers=bearer(key["key"]))).status_code == 200
    assert (await client.get(f"/v1/api-keys/{key['id']}")).json()["last_used_at"] == used

    # A minute later the cached check is due again, and the use is recorded again.
    later = datetime.now(UTC) + timedelta(seconds=61)
    original = api_key_service.utcnow
    api_key_service.utcnow = lambda: later  # type: ignore[assignment]
    try:
        assert (await client.get("/v1/counties", headers=bearer(key["key"]))).status_code == 200
    finally:
        api_key_service.utcnow = original  # type: ignore[assignment]
    again = await client.get(f"/v1/api-keys/{key['id']}")
    assert datetime.fromisoformat(again.json()["last_used_at"]) == later
    # Recording a use is not an edit: the ETag (If-Match on revoke) stays.
    assert again.headers["etag"] == first.headers["etag"]


# --- PostgreSQL, an app that owns its engine (commits are real) --------------------------------


@pytest.fixture
async def owned_app(pg_databases: PgDatabases, tmp_root: Path, credential_key: str) -> AsyncIterator[Any]:
    """A fresh PostgreSQL database, migrated and seeded, served by an app with its own engine."""
    url = await new_database_url("postgresql", pg_databases, tmp_root)
    setup = create_engine(Settings(database_url=url), poolclass=NullPool)
    await upgrade(setup)
    async with create_sessionmaker(setup)() as session:
        await seed(session, demo=False)
        admin = ApiKeyCreate(name="tests: national administrator", role=Role.NATIONAL_ADMIN)
        await ApiKeyService(Context(session, Principal.system())).create(
            admin, prefix=ADMIN_PREFIX, secret=ADMIN_SECRET
        )
        await session.commit()
    await setup.dispose()
    settings = Settings(
        database_url=url,
        rate_limit_per_minute=0,
        public_rate_limit_per_minute=0,
        worker_in_server="no",
        secret_key="tests-secret-key-for-signed-links",
        credential_key_file=credential_key,
        db_pool_size=3,
    )
    app: Litestar = create_app(settings)
    async with AsyncTestClient(app=app) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        yield client


async def test_the_list_outside_a_transaction_answers_as_inside_one(owned_app) -> None:
    client = owned_app
    assert (
        await push(client, await carrier_key(client, "postnord"), "postnord", synthetic(30))
    ).status_code == 200
    assert (await push(client, await carrier_key(client, "dhl"), "dhl", synthetic(5))).status_code == 200
    coordinator = await make_key(client, "municipal_coordinator", municipality_code="2580")
    outsider = await make_key(client, "municipal_coordinator", municipality_code="2560")

    # Many first uses of a key at once: one check of the key, every answer complete.
    pages = await asyncio.gather(
        *(
            client.get("/v1/pickup-points", params={"limit": 7}, headers=bearer(coordinator["key"]))
            for _ in range(12)
        )
    )
    assert {p.status_code for p in pages} == {200}
    assert len({p.content for p in pages}) == 1
    assert client.app.state.api_key_checks == {}
    first = pages[0].json()
    assert len(first["items"]) == 7 and first["next_cursor"]
    shop = next(i for i in first["items"] if len(i["listings"]) == 2)
    assert shop["carriers"] == ["dhl", "postnord"]

    # Walk every page over HTTP (outside a transaction) …
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        body = (
            await client.get("/v1/pickup-points", params=params, headers=bearer(coordinator["key"]))
        ).json()
        seen += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 30

    # … and read the same inside a transaction: the same points, field for field; and so with
    # every filter (each its own statement on the driver's path).
    async def inside(**filters: Any) -> list[schemas.PickupPoint]:
        async with client.app.state.sessionmaker() as session, session.begin():
            principal = Principal.for_role(
                id="t", name="t", role=Role.MUNICIPAL_COORDINATOR, municipality="2580"
            )
            service = PickupPointService(
                Context(session, principal), Outside(settings=client.app.state.settings)
            )
            query: dict[str, Any] = {
                "municipality": None,
                "county": None,
                "carrier": None,
                "status": None,
                "certified": None,
                "bbox": None,
                "q": None,
                "limit": 100,
                "cursor": None,
            }
            items, _ = await service.page(**{**query, **filters})
            return items

    assert msgspec.to_builtins(client.blocking_portal.call(inside)) == seen
    for params, filters in [
        ({"municipality": "2580"}, {"municipality": "2580"}),
        ({"county": "25", "status": "active"}, {"county": "25", "status": OrganizationStatus.ACTIVE}),
        ({"carrier": "dhl"}, {"carrier": "dhl"}),
        ({"certified": "false"}, {"certified": False}),
        ({"certified": "true"}, {"certified": True}),
        ({"bbox": "22.0,65.5,22.15,65.7"}, {"bbox": (22.0, 65.5, 22.15, 65.7)}),
        ({"q": "ombud 1"}, {"q": "ombud 1"}),
        ({"q": "100%_"}, {"q": "100%_"}),
    ]:
        answer = await client.get(
            "/v1/pickup-points", params={"limit": 100, **params}, headers=bearer(coordinator["key"])
        )
        assert answer.status_code == 200, answer.text
        expected = msgspec.to_builtins(client.blocking_portal.call(lambda f=filters: inside(**f)))
        assert answer.json()["items"] == expected, params
    assert len((await client.get("/v1/pickup-points", params={"carrier": "dhl"})).json()["items"]) == 5
    assert points._DRIVER_SQL  # the answers above came from the driver's path
    # Scope still holds on this path: another municipality's coordinator sees none of them.
    other = await client.get("/v1/pickup-points", headers=bearer(outsider["key"]))
    assert other.status_code == 200 and other.json()["items"] == []
    assert problem(await client.get("/v1/pickup-points", params={"municipality": "9999"}), 422)


async def test_concurrent_checks_record_a_use_without_conflict(owned_app) -> None:
    """Two processes (or requests) checking one key as its use falls due both record it: the
    second changes nothing and fails nothing (an ORM update of the versioned row used to fail the
    losers with StaleDataError, a 500 from the authentication middleware)."""
    client = owned_app
    key = await make_key(client)

    async def checks() -> list[Any]:
        sessionmaker = client.app.state.sessionmaker
        async with sessionmaker() as session:
            past = datetime.now(UTC) - timedelta(minutes=2)
            await session.execute(
                update(ApiKey).where(ApiKey.prefix == key["prefix"]).values(last_used_at=past)
            )
            await session.commit()

        async def check() -> Any:
            async with sessionmaker() as session:
                verified = await ApiKeyService(Context(session, Principal.system())).verify(key["key"])
                await session.commit()
                return verified

        return await asyncio.gather(*(check() for _ in range(3)), return_exceptions=True)

    results = client.blocking_portal.call(checks)
    assert not [r for r in results if isinstance(r, BaseException)], results
    used = (await client.get(f"/v1/api-keys/{key['id']}")).json()["last_used_at"]
    assert datetime.now(UTC) - datetime.fromisoformat(used) < timedelta(minutes=1)
