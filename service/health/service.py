from __future__ import annotations

import msgspec
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from service.migrate import current_revisions, head_revisions


class CheckResult(msgspec.Struct, frozen=True):
    name: str
    ok: bool
    detail: str | None = None


async def readiness(engine: AsyncEngine) -> list[CheckResult]:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as exc:
        return [
            CheckResult("database", False, f"unreachable: {type(exc).__name__}"),
            CheckResult("migrations", False, "database unreachable"),
        ]
    current, heads = await current_revisions(engine), head_revisions()
    migrations = CheckResult(
        "migrations",
        current == heads,
        None
        if current == heads
        else f"at {sorted(current) or 'nothing'}, head is {sorted(heads)}; run `tmn migrate`",
    )
    return [CheckResult("database", True), migrations]
