"""Migrations on each backend: they build the schema the models describe, they are reversible,
and the readiness probe tells a migrated database from one that is not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from service.app import create_app
from service.db import create_engine
from service.migrate import compare_schema, current_revisions, downgrade, head_revisions, is_at_head, upgrade
from service.models import metadata
from service.settings import Settings
from tests.conftest import PgDatabases, new_database_url


@pytest.fixture
async def fresh_url(backend: str, pg_databases: PgDatabases, tmp_root: Path) -> str:
    return await new_database_url(backend, pg_databases, tmp_root)


@pytest.fixture
async def fresh_engine(fresh_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(database_url=fresh_url), poolclass=NullPool)
    yield engine
    await engine.dispose()


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _schema_snapshot(connection: Connection) -> dict[str, Any]:
    """Tables with their columns, keys and indexes, as the database reports them."""
    insp = inspect(connection)
    snapshot: dict[str, Any] = {}
    for table in sorted(insp.get_table_names()):
        snapshot[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)],
            "pk": insp.get_pk_constraint(table)["constrained_columns"],
            "fks": sorted(
                (tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
                for fk in insp.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), i["unique"]) for i in insp.get_indexes(table)
            ),
            "uniques": sorted(
                (u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(table)
            ),
        }
    return snapshot


async def _snapshot(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        return await conn.run_sync(_schema_snapshot)


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(_table_names)


async def _diffs(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return await conn.run_sync(compare_schema)


def test_there_is_exactly_one_head() -> None:
    assert len(head_revisions()) == 1


async def test_models_and_migrated_schema_agree(fresh_engine: AsyncEngine) -> None:
    await upgrade(fresh_engine)
    assert await _diffs(fresh_engine) == []
    assert set(metadata.tables) <= await _tables(fresh_engine)


async def test_upgrade_twice_is_a_no_op(fresh_engine: AsyncEngine) -> None:
    await upgrade(fresh_engine)
    await upgrade(fresh_engine)
    assert await current_revisions(fresh_engine) == head_revisions()


async def test_downgrade_to_base_and_upgrade_again(fresh_engine: AsyncEngine) -> None:
    assert await current_revisions(fresh_engine) == set()
    assert not await is_at_head(fresh_engine)

    await upgrade(fresh_engine)
    assert await current_revisions(fresh_engine) == head_revisions()
    first = await _snapshot(fresh_engine)

    await downgrade(fresh_engine, "base")
    assert await current_revisions(fresh_engine) == set()
    # Nothing of the schema is left behind (Alembic keeps only its own, now empty, version table).
    assert await _tables(fresh_engine) <= {"alembic_version"}

    await upgrade(fresh_engine)
    assert await current_revisions(fresh_engine) == head_revisions()
    assert await is_at_head(fresh_engine)
    # The round trip rebuilds exactly the schema the first upgrade built.
    assert await _snapshot(fresh_engine) == first


def _checks(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in body["checks"]}


async def test_ready_on_a_migrated_database(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    checks = _checks(body)
    assert set(checks) == {"database", "migrations"}
    assert checks["database"]["ok"] is True
    assert checks["migrations"]["ok"] is True

    live = await client.get("/health/live")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}


async def test_ready_on_an_unmigrated_database(fresh_url: str) -> None:
    app = create_app(Settings(database_url=fresh_url))
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/health/ready")
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["status"] == "unavailable"
        checks = _checks(body)
        assert checks["database"]["ok"] is True
        assert checks["migrations"]["ok"] is False
        assert "tmn migrate" in checks["migrations"]["detail"]
        assert sorted(head_revisions())[0] in checks["migrations"]["detail"]

        # Liveness does not depend on the database.
        live = await client.get("/health/live")
        assert live.status_code == 200
        assert live.json() == {"status": "ok"}


async def test_ready_turns_ok_once_migrated(fresh_url: str) -> None:
    app = create_app(Settings(database_url=fresh_url))
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/health/ready")).status_code == 503
        engine = create_engine(Settings(database_url=fresh_url), poolclass=NullPool)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
        response = await client.get("/health/ready")
        assert response.status_code == 200, response.text
        assert all(check["ok"] for check in response.json()["checks"])


async def test_ready_when_the_database_is_unreachable() -> None:
    # Nothing listens on port 1; the probe must answer, not raise.
    app = create_app(Settings(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/tmn"))
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/health/ready")
        assert response.status_code == 503, response.text
        checks = _checks(response.json())
        assert checks["database"]["ok"] is False
        assert checks["database"]["detail"].startswith("unreachable")
        assert checks["migrations"]["ok"] is False
        assert (await client.get("/health/live")).status_code == 200
