"""The `webhooks` plugin: signs and POSTs webhook calls per the Standard Webhooks specification.

Headers: `webhook-id` (stable across retries and replays), `webhook-timestamp` (Unix seconds),
`webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per live secret,
space-separated, so receivers keep verifying while a secret is rotated).
Settings (`TMN_PLUGIN_CONFIG`, key `webhooks`): `timeout_seconds` (10).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from typing import Any

import httpx

from service.pluginspec import SendResult, WebhookDelivery, hookimpl

__version__ = "1.0.0"


def signature(secret: str, webhook_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


async def _deliver(client: httpx.AsyncClient, delivery: WebhookDelivery) -> SendResult:
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": delivery.id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(s, delivery.id, timestamp, delivery.body) for s in delivery.secrets
        ),
    }
    try:
        response = await client.post(delivery.url, content=delivery.body.encode(), headers=headers)
    except httpx.HTTPError as exc:
        return SendResult(
            message_id=delivery.message_id, ok=False, error=f"request failed: {type(exc).__name__}"
        )
    if 200 <= response.status_code < 300:
        return SendResult(message_id=delivery.message_id, ok=True, status_code=response.status_code)
    return SendResult(
        message_id=delivery.message_id,
        ok=False,
        permanent=response.status_code == 410,
        status_code=response.status_code,
        error=f"HTTP {response.status_code}",
    )


@hookimpl
async def tmn_deliver_webhooks(deliveries: list[WebhookDelivery], config: dict[str, Any]) -> list[SendResult]:
    timeout = float(config.get("timeout_seconds", 10))
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
        return list(await asyncio.gather(*(_deliver(client, d) for d in deliveries)))
