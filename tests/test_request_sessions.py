"""A request's database session is given back when the request ends, whatever raised and where.

Litestar leaves a generator dependency that was already resolved (the per-request session)
un-cleaned when a later dependency raises (a report's filters name an unknown county: 422), so
its connection stayed checked out, inside a transaction, until the garbage collector happened to
finalise the generator: in a served app within moments, in the test suite (one connection shared
by every session) late enough to roll back a later request's savepoint. The app gives back
whatever session a request left open once the request is answered (service/deps.py). The
collector is off here, so nothing but that can give a connection back in time.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from service.app import create_app
from service.settings import Settings
from tests.conftest import ADMIN_KEY

NOWHERE = "00000000-0000-0000-0000-000000000000"
JSON = {"Content-Type": "application/json"}
STALE = {"If-Match": '"0"', "Content-Type": "application/merge-patch+json"}


@pytest.fixture
def no_collector() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Checkouts:
    """Connections checked out of the engine's pool and not yet back."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.pool = engine.sync_engine.pool
        self.out = 0
        event.listen(self.pool, "checkout", self._checkout)
        event.listen(self.pool, "checkin", self._checkin)

    def _checkout(self, *_: Any) -> None:
        self.out += 1

    def _checkin(self, *_: Any) -> None:
        self.out -= 1

    def remove(self) -> None:
        event.remove(self.pool, "checkout", self._checkout)
        event.remove(self.pool, "checkin", self._checkin)


@pytest.mark.usefixtures("no_collector")
async def test_a_request_gives_its_connection_back_whatever_raised(
    engine: AsyncEngine, settings: Settings
) -> None:
    checkouts = Checkouts(engine)
    try:
        async with AsyncTestClient(app=create_app(settings, engine=engine)) as client:
            client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
            requests = [
                # A dependency (the report's selection) raises after the session was opened: 422.
                ("/v1/reports/progress", {"police_region": "Atlantis"}, 422),
                ("/v1/reports/progress/rollup", {"county": "99"}, 422),
                ("/v1/reports/coverage", {"county": "99"}, 422),
                # The handler raises: 404; and one that succeeds.
                (f"/v1/networks/{NOWHERE}", {}, 404),
                ("/v1/reports/progress", {"county": "25"}, 200),
            ] * 3
            for path, params, status in requests:
                response = await client.get(path, params=params)
                assert response.status_code == status, response.text
                assert checkouts.out == 0, f"{path} {params}: a connection is still out"
            # Writes that fail (none may succeed: this app commits to the shared test database): a
            # body that does not parse, one that breaks a rule, a change to something not there.
            writes = [
                ("POST", "/v1/networks", {"content": b"{not json", "headers": JSON}, 400),
                ("POST", "/v1/networks", {"json": {"name": "", "kind": "local_network"}}, 422),
                ("PATCH", f"/v1/networks/{NOWHERE}", {"json": {"name": "x"}, "headers": STALE}, 404),
            ]
            for method, path, options, status in writes:
                response = await client.request(method, path, **options)
                assert response.status_code == status, response.text
                assert checkouts.out == 0, f"{method} {path}: a connection is still out"
    finally:
        checkouts.remove()
