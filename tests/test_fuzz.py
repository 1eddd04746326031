"""Fuzzing: schemathesis generates requests for every operation of our OpenAPI document, valid
and invalid, and the API must never answer with a server error.

It runs on its own SQLite database with the demo data, as a national administrator, so the
generated requests reach the services rather than stopping at authentication.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from service.app import create_app
from service.db import create_engine, create_sessionmaker
from service.migrate import upgrade
from service.seed import demo_key, seed
from service.settings import Settings

EXAMPLES_PER_OPERATION = 10


async def _prepare(url: str) -> None:
    engine = create_engine(Settings(database_url=url))
    try:
        await upgrade(engine)
        async with create_sessionmaker(engine)() as session:
            await seed(session, demo=True)
            await session.commit()
    finally:
        await engine.dispose()


def test_no_operation_answers_with_a_server_error(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fuzz.sqlite3'}"
    asyncio.run(_prepare(url))
    app = create_app(
        Settings(database_url=url, worker_in_server="no", rate_limit_per_minute=0, secret_key="fuzzing")
    )
    schema = schemathesis.openapi.from_asgi("/docs/openapi.json", app)
    headers = {"Authorization": f"Bearer {demo_key('demoadmn')}"}
    statuses: Counter[int] = Counter()
    server_errors: list[str] = []

    for result in schema.get_all_operations():
        operation = result.ok()

        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def exercise(case: Any) -> None:
            response = case.call(headers=headers)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                server_errors.append(f"{case.method} {case.formatted_path}: {response.status_code}")

        exercise()

    assert server_errors == []
    assert sum(statuses.values()) >= 200  # the fuzzing really ran
    assert statuses[422] > 0 and any(200 <= code < 300 for code in statuses)
