from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, MediaType, Response, get
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.status_codes import HTTP_503_SERVICE_UNAVAILABLE

from service.auth.permissions import PUBLIC
from service.health.service import readiness
from service.pluginhost import PluginStatus
from service.problems import PROBLEM_TYPES, ProblemType, not_found


class Liveness(msgspec.Struct):
    status: str


class Check(msgspec.Struct):
    name: str
    ok: bool
    detail: str | None = None


class Readiness(msgspec.Struct):
    """`status` follows the database checks; a degraded plugin is reported, not fatal."""

    status: str
    checks: list[Check]
    plugins: list[PluginStatus]


class HealthController(Controller):
    path = "/health"
    tags = ["Health"]

    @get("/live", **PUBLIC, summary="The process answers", cache=False)
    async def live(self) -> Liveness:
        return Liveness(status="ok")

    @get("/ready", **PUBLIC, summary="The database answers and its schema is at the newest migration")
    async def ready(self, state: State) -> Response[Readiness]:
        results = await readiness(state.engine)
        checks = [Check(name=r.name, ok=r.ok, detail=r.detail) for r in results]
        ok = all(c.ok for c in checks)
        body = Readiness(status="ok" if ok else "unavailable", checks=checks, plugins=state.plugins.status())
        return Response(body, status_code=200 if ok else HTTP_503_SERVICE_UNAVAILABLE)


class ProblemTypeController(Controller):
    path = "/problems"
    tags = ["Problems"]

    @get("/", **PUBLIC, summary="Every problem type this API answers with")
    async def list_problem_types(self) -> list[ProblemType]:
        return list(PROBLEM_TYPES.values())

    @get("/{slug:str}", **PUBLIC, summary="What one problem type means", media_type=MediaType.JSON)
    async def get_problem_type(self, slug: FromPath[str]) -> Any:
        if slug not in PROBLEM_TYPES:
            raise not_found("problem type", slug)
        return PROBLEM_TYPES[slug]
