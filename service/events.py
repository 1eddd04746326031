"""Domain events: what services call when something happened that others may react to.

`emit` queues the event's webhook deliveries in the caller's transaction and remembers the
event on the session; once the request's transaction has committed, the plugins' hook
`tmn_domain_event` is called for it (in the background, isolated like every hook). An event of
a request that rolled back reaches nobody.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from service.context import Context
from service.pluginhost import PluginHost
from service.pluginspec import EVENT_TYPES, DomainEvent
from service.settings import Settings
from service.webhooks.service import WebhookService

logger = structlog.get_logger("tmn.events")
_PENDING = "tmn_events"
# Background hook calls, kept referenced until they finish.
_RUNNING: set[asyncio.Task[Any]] = set()


async def emit(ctx: Context, settings: Settings, event: DomainEvent) -> None:
    if event.type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event.type}")
    await WebhookService(ctx, settings).publish(event)
    ctx.session.info.setdefault(_PENDING, []).append(event)


def dispatch_committed(session: AsyncSession, host: PluginHost) -> None:
    """Call after a commit: hand the session's events to the plugins, without waiting."""
    events: list[DomainEvent] = session.info.pop(_PENDING, [])
    for event in events:
        task = asyncio.create_task(host.call_all("tmn_domain_event", event=event))
        _RUNNING.add(task)
        task.add_done_callback(_RUNNING.discard)


def discard(session: AsyncSession) -> None:
    session.info.pop(_PENDING, None)


async def drain() -> None:
    """Wait for hook calls still running (shutdown, tests)."""
    if _RUNNING:
        await asyncio.gather(*_RUNNING, return_exceptions=True)
