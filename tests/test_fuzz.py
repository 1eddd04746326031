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

import pytest
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

# In CI a bounded run; `bin/fuzz` runs many more (TMN_FUZZ_EXAMPLES) and holds the run to at least
# TMN_FUZZ_MIN_REQUESTS requests in all (5,000): operations without parameters yield one example.
EXAMPLES_PER_OPERATION = int(os.environ.get("TMN_FUZZ_EXAMPLES", "10"))
MIN_REQUESTS = int(os.environ.get("TMN_FUZZ_MIN_REQUESTS", "200"))
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


def test_every_operation_keeps_to_its_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
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

    operations = sum(1 for _ in schema.get_all_operations())
    with capsys.disabled():
        print(  # noqa: T201 (the run's size, on the terminal on purpose)
            f"\nfuzzing: {sum(statuses.values())} requests over {operations} operations "
            f"({EXAMPLES_PER_OPERATION} examples at most each); statuses {dict(sorted(statuses.items()))}"
        )
    assert failures == []
    assert sum(statuses.values()) >= MIN_REQUESTS  # the fuzzing really ran, as much as asked
    assert statuses[422] > 0 and any(200 <= code < 300 for code in statuses)
