"""Pulling a carrier's list from its registry through the registry plugins (`tmn sync CARRIER`
and the worker's schedule), then applying it as a snapshot: the same rules as a push."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.auth.principal import Principal
from service.context import Context
from service.db import utcnow
from service.meetings.mail import Outside
from service.observability.metrics import REGISTRY_SYNCS
from service.pluginspec import PickupPointRecord
from service.problems import Problem
from service.registries import schemas
from service.registries.sync import RegistryService

logger = structlog.get_logger("tmn.registries")


async def fetch(outside: Outside, code: str) -> list[dict[str, object]]:
    """The carrier's points from the first registry plugin that serves it (by plugin name)."""
    host = outside.plugins
    if host is None:
        raise Problem("service-unavailable", "no plugins are loaded")
    answers, failures = await host.call_all(
        "tmn_fetch_pickup_points", time_limit=outside.settings.registry_pull_timeout_seconds, carrier=code
    )
    for name in sorted(answers):
        records = answers[name]
        if records is not None:
            return [_row(r) for r in records if isinstance(r, PickupPointRecord)]
    if failures:
        raise Problem(
            "service-unavailable",
            f"the registry of {code} failed: " + "; ".join(f"{n} {r}" for n, r in sorted(failures.items())),
        )
    raise Problem("not-found", f"no registry plugin serves carrier {code}")


def _row(record: PickupPointRecord) -> dict[str, object]:
    return {
        "id": record.carrier_point_id,
        "name": record.name,
        "kind": record.kind,
        "street_address": record.street_address,
        "postal_code": record.postal_code,
        "city": record.city,
        "latitude": record.latitude,
        "longitude": record.longitude,
        "opening_hours": record.opening_hours,
    }


async def run_sync(
    sessionmaker: async_sessionmaker[AsyncSession],
    outside: Outside,
    code: str,
    *,
    dry_run: bool = False,
    force: bool = False,
    clock: Callable[[], datetime] = utcnow,
) -> schemas.SyncReport:
    try:
        rows = await fetch(outside, code)
    except Problem as exc:
        REGISTRY_SYNCS.labels(carrier=code, outcome="failed").inc()
        logger.warning("registry not fetched", carrier=code, status=exc.status_code)
        raise
    async with sessionmaker() as session:
        session.info["principal_id"] = f"system:sync:{code}"
        ctx = Context(session=session, principal=Principal.system(), clock=clock)
        report = await RegistryService(ctx, outside).snapshot(code, rows, dry_run=dry_run, force=force)
        await session.commit()
    logger.info(
        "registry sync",
        carrier=code,
        created=report.created,
        updated=report.updated,
        closed=report.closed,
        errors=len(report.errors),
    )
    return report
