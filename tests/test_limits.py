"""Rate limits per principal (429 with Retry-After) and request size limits (413)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from service.app import create_app
from service.db import create_sessionmaker
from service.settings import Settings
from tests.conftest import ADMIN_KEY, _open_transaction, _roll_back
from tests.helpers import problem
from tests.test_auth import bearer, make_key


@pytest.fixture
async def limited(engine: AsyncEngine, settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    tight = msgspec.structs.replace(settings, rate_limit_per_minute=3, max_request_bytes=2048)
    app = create_app(tight, engine=engine)
    async with AsyncTestClient(app=app) as client:
        conn = client.blocking_portal.call(_open_transaction, engine)
        app.state.sessionmaker = create_sessionmaker(conn, join_transaction_mode="create_savepoint")
        client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        try:
            yield client
        finally:
            client.blocking_portal.call(_roll_back, conn)


async def test_each_principal_has_its_own_budget(limited) -> None:
    other = (await make_key(limited, "viewer"))["key"]  # the admin's first request
    for _ in range(2):
        assert (await limited.get("/v1/counties")).status_code == 200
    refused = await limited.get("/v1/counties")
    body = problem(refused, 429)
    assert body["type"] == "/problems/too-many-requests"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Another principal is not affected, and health checks are never limited.
    assert (await limited.get("/v1/counties", headers=bearer(other))).status_code == 200
    assert (await limited.get("/health/live")).status_code == 200


async def test_large_bodies_are_refused_with_413(limited) -> None:
    body = {"kind": "customs", "name": "Tullverket", "website": "https://x.example/" + "a" * 4000}
    response = await limited.post("/v1/organizations", json=body)
    assert problem(response, 413)["type"] == "/problems/payload-too-large"
