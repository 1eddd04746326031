"""Metrics at /metrics. Request counts and latency histograms come from Litestar's Prometheus
middleware, labelled by route template (never the concrete path, which can carry an address);
the outbox and plugin gauges are read fresh at each scrape.

With several uvicorn worker processes each process has its own counters; scrape each replica,
or run one worker per container as compose.yaml does for scaling.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, generate_latest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.permissions import PUBLIC
from service.db import utcnow
from service.outbox.models import OutboxMessage, OutboxStatus
from service.pluginhost import PluginHost

# Registry syncs (pushed snapshots and pulls) by carrier and outcome: applied, refused, failed.
REGISTRY_SYNCS = Counter("tmn_registry_syncs", "Carrier registry syncs", ["carrier", "outcome"])
OUTBOX_MESSAGES = Gauge("tmn_outbox_messages", "Outbox messages by status", ["status"])
OUTBOX_OLDEST_PENDING = Gauge("tmn_outbox_oldest_pending_seconds", "Age of the oldest message still pending")
PLUGIN_HEALTHY = Gauge("tmn_plugin_healthy", "1 when the plugin's last call succeeded", ["plugin"])
PLUGIN_FAILURES = Gauge("tmn_plugin_failures", "Failed hook calls since the process started", ["plugin"])
PLUGIN_TIMEOUTS = Gauge(
    "tmn_plugin_timeouts", "Hook calls that timed out since the process started", ["plugin"]
)


def prometheus_config() -> PrometheusConfig:
    return PrometheusConfig(app_name="tmn", prefix="tmn", group_path=True, exclude=["^/metrics"])


async def refresh(session: AsyncSession, host: PluginHost) -> None:
    counts = dict(
        (await session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)))
        .tuples()
        .all()
    )
    for status in OutboxStatus:
        OUTBOX_MESSAGES.labels(status=status.value).set(counts.get(status, 0))
    oldest = await session.scalar(
        select(func.min(OutboxMessage.created_at)).where(OutboxMessage.status == OutboxStatus.PENDING)
    )
    OUTBOX_OLDEST_PENDING.set((utcnow() - oldest).total_seconds() if oldest is not None else 0)
    for plugin in host.status():
        PLUGIN_HEALTHY.labels(plugin=plugin.name).set(1 if plugin.health == "ok" else 0)
        PLUGIN_FAILURES.labels(plugin=plugin.name).set(plugin.failures)
        PLUGIN_TIMEOUTS.labels(plugin=plugin.name).set(plugin.timeouts)


class MetricsController(Controller):
    path = "/metrics"
    tags = ["Health"]
    include_in_schema = False

    @get("/", **PUBLIC, summary="Prometheus metrics", cache=False)
    async def metrics(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
    ) -> Response[bytes]:
        await refresh(db_session, request.app.state.plugins)
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
