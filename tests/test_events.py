"""Domain events reach plugins after the commit, and webhooks in the same transaction; an event
of a request that failed reaches nobody."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import post
from litestar.params import FromPath

from service import events
from service.deps import RequestContext
from service.pluginhost import PluginHost
from service.pluginspec import DomainEvent, hookimpl
from service.settings import Settings
from tests.test_webhooks import event


class Recorder:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    async def tmn_domain_event(self, event: DomainEvent) -> None:
        self.seen.append(event.type)


class Broken:
    @hookimpl
    def tmn_domain_event(self, event: DomainEvent) -> None:
        raise RuntimeError("plugin bug")


async def test_events_after_commit_only(client) -> None:
    recorder = Recorder()
    settings: Settings = client.app.state.settings
    client.app.state.plugins = PluginHost(
        Settings(plugins=("none",)), extra=[("recorder", recorder), ("broken", Broken())]
    )
    hook = await client.post("/v1/webhooks", json={"name": "S", "url": "https://hooks.example/x"})
    assert hook.status_code == 201

    @post("/test/emit/{fail:int}")
    async def emit(ctx: RequestContext, fail: FromPath[int]) -> None:
        await events.emit(ctx, settings, event("meeting.cancelled"))
        if fail:
            raise RuntimeError("the change failed after the event was emitted")

    client.app.register(emit)
    assert (await client.post("/test/emit/1")).status_code == 500
    assert (await client.post("/test/emit/0")).status_code == 201

    async def settle() -> Any:
        await events.drain()
        await asyncio.sleep(0)

    client.blocking_portal.call(settle)
    assert recorder.seen == ["meeting.cancelled"]  # once: the failed request's event is gone
    deliveries = (await client.get(f"/v1/webhooks/{hook.json()['id']}/deliveries")).json()
    assert len(deliveries) == 1
    status = {s["name"]: s for s in (await client.get("/v1/plugins")).json()}
    assert status["broken"]["health"] == "degraded"  # and the API answered all along
