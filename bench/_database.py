"""What every benchmark needs of PostgreSQL: the server (TEST_DATABASE_URL, as the tests use),
asyncpg addresses, and a fresh database to create and drop (callers drop it in a `finally`)."""

from __future__ import annotations

import os
import uuid

import asyncpg
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


def pg_dsn(url: str = PG_ADMIN_URL, database: str | None = None) -> str:
    """A SQLAlchemy URL (the admin one by default) as asyncpg takes it, optionally for another
    database on the same server."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def create_database(prefix: str) -> tuple[str, str]:
    """A new, empty database: (its name, its SQLAlchemy URL)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_dsn(), timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name, make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def drop_database(name: str) -> None:
    admin = await asyncpg.connect(pg_dsn(), timeout=10)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
