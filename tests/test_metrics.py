"""Prometheus metrics: requests by route template and status, latency, outbox and plugins."""

from __future__ import annotations

import re

from service.outbox.models import OutboxStatus
from service.outbox.service import OutboxService
from tests.helpers import context


def sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} {labels}")


async def test_metrics_count_requests_by_route_and_watch_the_outbox(client) -> None:
    before = (await client.get("/metrics")).text
    try:
        start = sample(before, "tmn_requests_total", path="/v1/municipalities/{code}", status_code="200")
    except AssertionError:
        start = 0.0
    for code in ("2560", "2580"):
        assert (await client.get(f"/v1/municipalities/{code}")).status_code == 200

    async def queue() -> None:
        async with client.app.state.sessionmaker() as session:
            service = OutboxService(context(session), client.app.state.settings)
            await service.enqueue_email(to="a@ombud.example", subject="S", text="T")
            dead = await service.enqueue_email(to="b@ombud.example", subject="S", text="T")
            dead.status = OutboxStatus.DEAD
            await session.commit()

    client.blocking_portal.call(queue)
    client.headers.pop("Authorization")  # scraped without credentials
    response = await client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    # Both municipalities count under one route: the concrete path never becomes a label.
    assert (
        sample(text, "tmn_requests_total", path="/v1/municipalities/{code}", status_code="200") == start + 2
    )
    assert "/v1/municipalities/2560" not in text
    assert "tmn_request_duration_seconds_bucket" in text
    assert sample(text, "tmn_outbox_messages", status="pending") >= 1
    assert sample(text, "tmn_outbox_messages", status="dead") >= 1
    assert sample(text, "tmn_outbox_oldest_pending_seconds") >= 0
    assert sample(text, "tmn_plugin_healthy", plugin="smtp") == 1
    assert "ombud.example" not in text
