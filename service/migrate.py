"""Alembic, driven from code: upgrade to head, and ask whether a database is at head."""

from __future__ import annotations

from typing import Any

from advanced_alchemy.types import GUID
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db import migrations_dir


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if connection is not None:
        # env.py runs on this connection instead of opening its own engine.
        cfg.attributes["connection"] = connection
    return cfg


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def _current(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


async def current_revisions(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


async def is_at_head(engine: AsyncEngine) -> bool:
    return await current_revisions(engine) == head_revisions()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    def _run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with engine.begin() as conn:
        await conn.run_sync(_run)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    def _run(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), revision)

    async with engine.begin() as conn:
        await conn.run_sync(_run)


def compare_schema(connection: Connection) -> list[Any]:
    """Differences between the models and the migrated database (empty when they agree)."""
    from alembic.autogenerate import compare_metadata

    from service.models import metadata

    context = MigrationContext.configure(connection, opts={"compare_type": compare_type})
    return list(compare_metadata(context, metadata))


def compare_type(
    context: MigrationContext, _inspected: Any, _column: Any, inspected_type: Any, metadata_type: Any
) -> bool | None:
    """Alembic's type comparison, except that SQLite reports the BINARY(16) of a GUID column as
    NUMERIC(16); that is the same column, not a change."""
    if context.dialect.name == "sqlite" and isinstance(metadata_type, GUID):
        return str(inspected_type) not in ("NUMERIC(16)", "BINARY(16)")
    return None
