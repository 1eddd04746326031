from __future__ import annotations

import msgspec
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db import database_unavailable
from service.migrate import current_revisions, head_revisions


class CheckResult(msgspec.Struct, frozen=True):
    name: str
    ok: bool
    detail: str | None = None


def _down(exc: Exception) -> list[CheckResult]:
    return [
        CheckResult("database", False, f"unreachable: {type(exc).__name__}"),
        CheckResult("migrations", False, "database unreachable"),
    ]


async def readiness(engine: AsyncEngine) -> list[CheckResult]:
    # Down covers the whole probe: PostgreSQL may refuse connections (stopped), still be starting
    # (asyncpg's CannotConnectNowError arrives unwrapped) or go away between the two checks.
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        if isinstance(exc, (SQLAlchemyError, OSError)) or database_unavailable(exc):
            return _down(exc)
        raise
    try:
        current = await current_revisions(engine)
    except Exception as exc:
        if database_unavailable(exc):
            return _down(exc)
        raise
    heads = head_revisions()
    migrations = CheckResult(
        "migrations",
        current == heads,
        None
        if current == heads
        else f"at {sorted(current) or 'nothing'}, head is {sorted(heads)}; run `tmn migrate`",
    )
    return [CheckResult("database", True), migrations]
