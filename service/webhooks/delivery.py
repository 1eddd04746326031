"""The outbox worker's side of webhooks: turn leased rows into signed calls via the plugin."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import utcnow
from service.outbox.models import OutboxMessage
from service.pluginhost import PluginFailure, PluginHost
from service.pluginspec import SendResult, WebhookDelivery
from service.webhooks.models import WebhookEndpoint

PLUGIN = "webhooks"


async def endpoints_for(session: AsyncSession, messages: list[OutboxMessage]) -> dict[UUID, WebhookEndpoint]:
    ids = {UUID(m.recipient) for m in messages}
    if not ids:
        return {}
    rows = await session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.id.in_(ids)))
    return {e.id: e for e in rows}


async def deliver(
    host: PluginHost, messages: list[OutboxMessage], endpoints: dict[UUID, WebhookEndpoint]
) -> dict[str, SendResult]:
    """One SendResult per message. Calls to a disabled or removed endpoint are not made (dead);
    an endpoint that answers 410 Gone is disabled (the caller's session saves that)."""
    if not messages:
        return {}
    now = utcnow()
    results: dict[str, SendResult] = {}
    deliveries: list[WebhookDelivery] = []
    target: dict[str, WebhookEndpoint] = {}
    for message in messages:
        endpoint = endpoints.get(UUID(message.recipient))
        if endpoint is None or endpoint.disabled_at is not None:
            results[message.message_id] = SendResult(
                message_id=message.message_id, ok=False, permanent=True, error="endpoint disabled"
            )
            continue
        target[message.message_id] = endpoint
        deliveries.append(
            WebhookDelivery(
                message_id=message.message_id,
                id=message.headers["webhook-id"],
                url=endpoint.url,
                body=message.text,
                secrets=endpoint.live_secrets(now),
            )
        )
    if deliveries:
        try:
            answer: Any = await host.call("tmn_deliver_webhooks", PLUGIN, deliveries=deliveries)
        except PluginFailure as exc:
            answer = [
                SendResult(message_id=d.message_id, ok=False, error=f"plugin {exc.reason}")
                for d in deliveries
            ]
        by_id = {r.message_id: r for r in answer or [] if isinstance(r, SendResult)}
        for delivery in deliveries:
            result = by_id.get(delivery.message_id) or SendResult(
                message_id=delivery.message_id, ok=False, error="the plugin gave no result"
            )
            results[delivery.message_id] = result
            if result.status_code == 410:
                endpoint = target[delivery.message_id]
                if endpoint.disabled_at is None:
                    endpoint.disabled_at, endpoint.disabled_reason = now, "the receiver answered 410 Gone"
    return results
