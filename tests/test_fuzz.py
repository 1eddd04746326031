"""Fuzzing: schemathesis generates requests for every operation of our OpenAPI document, valid
and invalid, and the API must never answer with a server error, nor with anything the document
does not promise: an undocumented status code, another content type, a body or headers that break
the documented schema.

It runs on its own SQLite database with the demo data, as a national administrator, so the
generated requests reach the services rather than stopping at authentication.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.app import create_app
from service.db import create_engine, create_sessionmaker
from service.migrate import upgrade
from service.seed import demo_key, seed
from service.settings import Settings

# In CI a bounded run; `bin/fuzz` runs many more (TMN_FUZZ_EXAMPLES, ≥ 5,000 requests in all).
EXAMPLES_PER_OPERATION = int(os.environ.get("TMN_FUZZ_EXAMPLES", "10"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


async def _prepare(url: str) -> None:
    engine = create_engine(Settings(database_url=url))
    try:
        await upgrade(engine)
        async with create_sessionmaker(engine)() as session:
            await seed(session, demo=True)
            await session.commit()
    finally:
        await engine.dispose()


def test_every_operation_keeps_to_its_document(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fuzz.sqlite3'}"
    asyncio.run(_prepare(url))
    app = create_app(
        Settings(
            database_url=url,
            data_dir=str(tmp_path),
            worker_in_server="no",
            rate_limit_per_minute=0,
            public_rate_limit_per_minute=0,
            secret_key="fuzzing",
        )
    )
    schema = schemathesis.openapi.from_asgi("/docs/openapi.json", app)
    headers = {"Authorization": f"Bearer {demo_key('demoadmn')}"}
    statuses: Counter[int] = Counter()
    failures: list[str] = []

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
            try:
                case.validate_response(response, checks=CHECKS)
            except BaseException as exc:
                for failure in getattr(exc, "exceptions", [exc]):
                    title = str(failure).strip().split("\n")[0]
                    failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {title}")

        exercise()

    assert failures == []
    assert sum(statuses.values()) >= 200  # the fuzzing really ran
    assert statuses[422] > 0 and any(200 <= code < 300 for code in statuses)
