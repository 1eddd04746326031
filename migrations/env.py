"""Alembic environment: async engines, and a connection handed in by service.migrate."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from service.db import create_engine, is_sqlite_url
from service.migrate import compare_type
from service.models import metadata
from service.settings import Settings

config = context.config


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=compare_type,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(Settings.from_env())
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


def run_offline() -> None:
    url = Settings.from_env().effective_database_url
    context.configure(
        url=url, target_metadata=metadata, literal_binds=True, render_as_batch=is_sqlite_url(url)
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
elif (connection := config.attributes.get("connection")) is not None:
    _run(connection)
else:
    asyncio.run(_run_async())
