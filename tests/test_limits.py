"""Rate limits per principal (429 with Retry-After) and request size limits (413)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from service.settings import Settings
from tests.conftest import client_for
from tests.helpers import problem
from tests.test_auth import bearer, make_key


@pytest.fixture
async def limited(engine: AsyncEngine, settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    tight = msgspec.structs.replace(settings, rate_limit_per_minute=3, max_request_bytes=2048)
    async with client_for(engine, tight) as client:
        yield client


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
