"""`tmn certifications notify` and the worker's schedule: one transaction, the system's principal,
the clock as a parameter (tests move it)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import msgspec
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.auth.principal import Principal
from service.certifications.schemas import NotifyReport
from service.certifications.service import CertificationService
from service.context import Context
from service.db import utcnow
from service.meetings.mail import Outside

logger = structlog.get_logger("tmn.certifications")


async def run_notify(
    sessionmaker: async_sessionmaker[AsyncSession], outside: Outside, clock: Callable[[], datetime] = utcnow
) -> NotifyReport:
    async with sessionmaker() as session:
        session.info["principal_id"] = "system:certifications"
        ctx = Context(session=session, principal=Principal.system(), clock=clock)
        report = await CertificationService(ctx, outside).notify()
        await session.commit()
    if report.follow_up_due or report.in_grace or report.lapsed:
        logger.info("certifications noticed", **msgspec.structs.asdict(report))
    return report
