"""The application factory: wires settings, database, routes, errors and OpenAPI."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import time
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast
from uuid import uuid4

import structlog
from litestar import Litestar, Request
from litestar.config.cors import CORSConfig
from litestar.datastructures import MutableScopeHeaders, State
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig, get_remote_address
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Tag
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, ExceptionHandlersMap, Message, Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service import events
from service.api_keys.controller import ApiKeyController
from service.audit import recorder as _audit_recorder  # noqa: F401  (registers the flush listener)
from service.audit.controller import AuditController
from service.auth.middleware import PUBLIC_PATHS, BearerAuthenticationMiddleware
from service.auth.oidc import OidcVerifier
from service.auth.principal import Principal
from service.certifications.controller import CertificationController, PublicCredentialController
from service.db import create_engine, create_sessionmaker
from service.deps import provide_context, provide_db_session, provide_principal, release_sessions
from service.directory.controller import DirectoryController
from service.directory.service import DirectoryCache
from service.geography.controller import CountyController, MunicipalityController
from service.health.controller import HealthController, ProblemTypeController
from service.meetings.controller import (
    CalendarFeedController,
    InstructorController,
    MeetingController,
    SurveyResultsController,
)
from service.meetings.mail import Outside
from service.meetings.pages import LinkPageController
from service.meetings.public import InvitationLinkController, RegistrationLinkController, SurveyLinkController
from service.meetings.ticker import MeetingTicker
from service.networks.controller import NetworkController, NetworkMemberController
from service.observability.metrics import MetricsController, prometheus_config
from service.observability.tracing import add_trace_ids, route_span_middleware, setup_tracing, tracer_of
from service.organizations.controller import OrganizationController
from service.outbox.controller import (
    EmailHoldController,
    OutboxController,
    PluginController,
    UnsubscribeController,
)
from service.outbox.service import OutboxWorker
from service.participants.controller import ParticipantController
from service.pluginhost import PluginHost
from service.problems import EXCEPTION_HANDLERS, handler_for
from service.registries.controller import CarrierController, PickupPointController
from service.reports.controller import DecisionController, ReportController
from service.reports.dashboard import DashboardController
from service.settings import Settings
from service.webhooks.controller import WebhookController

API_VERSION = "0.1.0"
DOCS_ASSETS = "/docs/assets"
_STATIC = Path(__file__).parent / "static" / "swagger-ui"
request_log = structlog.get_logger("tmn.request")

DESCRIPTION = """\
The coordination API for **Tillsammans mot nätdroger** (Together against online drugs): networks on
national, regional and local level, the organizations and people in them, and the Swedish geography
they live in.

Conventions: every error is RFC 9457 `application/problem+json` naming the offending field; lists are
cursor-paginated (`limit` 1–200, `cursor`, `next_cursor` in the body and a `Link` header); single
resources carry an `ETag`, and updates honour `If-Match` (412 when stale); creating POSTs honour
`Idempotency-Key`; PATCH is a JSON merge patch.
"""


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Give every request an id (the caller's X-Request-ID, or a new one), echo it back, and log
    one line per request: method, route, status, duration, ids. Never the concrete path, query
    string or body, which may hold personal data (an e-mail address, a name)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if 0 < len(incoming) <= 100 and incoming.isprintable() else uuid4().hex
        scope["tmn_request_id"] = request_id  # type: ignore[typeddict-unknown-key]
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableScopeHeaders.from_message(message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            principal = scope.get("user")
            request_log.info(
                "request",
                method=scope["method"],
                # The route's template, not the path: a path can carry an e-mail address.
                path=scope.get("path_template") or "(unrouted)",
                status=status,
                duration_ms=round(elapsed, 1),
                request_id=request_id,
                principal_id=principal.id if isinstance(principal, Principal) else None,
            )

    return middleware


def middleware_problems(app: ASGIApp) -> ASGIApp:
    """Answer what a middleware raises (authentication's 401, the rate limit's 429) before any
    route ran, as the same problem+json a route would give, inside the request-id and metrics
    layers: so it carries its X-Request-ID and is logged and counted with its real status."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await app(scope, receive, send)
        except HTTPException as exc:
            if scope["type"] != ScopeType.HTTP:
                raise
            request: Request[Any, Any, Any] = Request(scope, receive)
            response = handler_for(exc)(request, exc)
            await response.to_asgi_response(app=None, request=request)(scope, receive, send)

    return middleware


def configure_logging(level: str) -> None:
    """structlog JSON lines on stderr for our loggers (`tmn.*`); one object per line."""
    structlog.configure(
        processors=[
            # First: a line below the level costs nothing more (no context, no JSON rendering).
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            add_trace_ids,  # the current trace and span, when tracing is on
            structlog.stdlib.add_logger_name,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    logger = logging.getLogger("tmn")
    logger.setLevel(level)
    if not any(getattr(h, "tmn_json", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.tmn_json = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    # Our lines are complete JSON already; the root handler would wrap them a second time.
    logger.propagate = False
    # aiosqlite logs every statement with its bound values at DEBUG; values can be personal data.
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO, logging.getLogger("aiosqlite").level))


def _rate_limit_identifier(request: Request[Any, Any, Any]) -> str:
    principal = request.scope.get("user")
    if isinstance(principal, Principal):
        return principal.id
    return get_remote_address(request)


def openapi_config() -> OpenAPIConfig:
    favicon = f"<link rel='icon' type='image/png' href='{DOCS_ASSETS}/favicon-32x32.png'>"
    return OpenAPIConfig(
        title="TMN API",
        version=API_VERSION,
        description=DESCRIPTION,
        path="/docs",
        render_plugins=[
            # Served from our own assets so the docs work without a CDN (and offline).
            SwaggerRenderPlugin(
                js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                standalone_preset_js_url=f"{DOCS_ASSETS}/swagger-ui-standalone-preset.js",
                path="/",
                favicon=favicon,
            )
        ],
        tags=[
            Tag(name="Geography", description="Counties (län) and municipalities (kommuner)."),
            Tag(
                name="Organizations",
                description="Authorities, carriers and the places parcels are handed out.",
            ),
            Tag(name="Networks", description="National, regional and local networks and their members."),
            Tag(name="Participants", description="People, their employment history, roles and consent."),
            Tag(name="API keys", description="Keys for machine clients (administrators only)."),
            Tag(name="Audit", description="Who changed what, when (auditors and administrators)."),
            Tag(name="Outbox", description="E-mail waiting, sent, dead or held (administrators)."),
            Tag(name="Plugins", description="Installed plugins and their health (administrators)."),
            Tag(
                name="Webhooks", description="Domain events pushed to municipal systems (Standard Webhooks)."
            ),
            Tag(
                name="Meetings",
                description="Meetings from draft to minutes: invitations, registrations, attendance, "
                "checklist, reminders, surveys, calendars.",
            ),
            Tag(
                name="Meeting links",
                description="What the links in meeting e-mails do, without an account (signed, expiring, "
                "rate-limited).",
            ),
            Tag(
                name="Certifications",
                description="Earned at a collaboration meeting, renewed at follow-up; documents, "
                "verifiable credentials and public verification from the sticker.",
            ),
            Tag(
                name="Pickup points",
                description="Carriers' lists of pickup points (push and pull sync), merged into shops, "
                "placed in their municipality; lists and maps.",
            ),
            Tag(name="Health", description="Probes for load balancers and orchestrators."),
            Tag(name="Problems", description="The problem types errors refer to."),
        ],
    )


def create_app(
    settings: Settings | None = None,
    *,
    engine: AsyncEngine | None = None,
    sessionmaker: async_sessionmaker[AsyncSession] | None = None,
) -> Litestar:
    """Build the app. Tests pass their own engine and sessionmaker; otherwise the lifespan owns them."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    tracing = setup_tracing(settings)
    plugins = PluginHost(settings)
    state = State(
        {
            "settings": settings,
            "engine": engine,
            "sessionmaker": sessionmaker,
            "plugins": plugins,
            "directory_cache": DirectoryCache(ttl=settings.directory_cache_seconds),
            # OpenTelemetry (None when off); the in-server worker's deliveries use its tracer.
            "tracing": tracing,
        }
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncGenerator[None, None]:
        owned = app.state.engine is None
        if owned:
            app.state.engine = create_engine(settings)
        if app.state.sessionmaker is None:
            app.state.sessionmaker = create_sessionmaker(app.state.engine)
        if tracing is not None:
            tracing.instrument(app.state.engine)
        app.state.oidc = OidcVerifier(settings)
        # What is alive now (modules, routes, mappers) lives as long as the app: keep it out of
        # the collector's sight, so a full collection does not walk ~250,000 objects every few
        # seconds under load (issue 10: it cost a third of the list's CPU, and its p99).
        gc.freeze()
        worker: asyncio.Future[Any] | None = None
        if settings.worker_in_server == "yes" or (
            settings.worker_in_server == "auto" and settings.is_embedded
        ):
            # The embedded default has no separate worker process; deliver from here.
            outbox_worker = OutboxWorker(
                app.state.sessionmaker,
                plugins,
                settings,
                tracer=tracer_of(tracing, "tmn.outbox"),
            )
            ticker = MeetingTicker(
                app.state.sessionmaker,
                Outside(settings=settings, plugins=plugins, directory_cache=app.state.directory_cache),
                tracer=tracer_of(tracing, "tmn.worker"),
            )
            worker = asyncio.gather(outbox_worker.run(), ticker.run())
        try:
            yield
        finally:
            if worker is not None:
                outbox_worker.stop()
                ticker.stop()
                await worker
            await events.drain()
            await app.state.oidc.aclose()
            if tracing is not None:
                await tracing.shutdown()
            if owned:
                await app.state.engine.dispose()
            gc.unfreeze()  # what outlives the app (in tests, the next one) is collectable again

    cors = (
        CORSConfig(allow_origins=list(settings.cors_origins), expose_headers=_EXPOSED)
        if settings.cors_origins
        else None
    )
    middleware: list[Any] = [
        request_id_middleware,
        prometheus_config().middleware,
        *([route_span_middleware] if tracing is not None else []),
        middleware_problems,
        release_sessions,  # a request's session, given back even when Litestar leaves it open
        DefineMiddleware(
            BearerAuthenticationMiddleware, exclude=PUBLIC_PATHS, exclude_from_auth_key="exclude_from_auth"
        ),
    ]
    if settings.rate_limit_per_minute > 0:
        rate_limit = RateLimitConfig(
            rate_limit=("minute", settings.rate_limit_per_minute),
            exclude=PUBLIC_PATHS,
            identifier_for_request=_rate_limit_identifier,
        )
        middleware.append(rate_limit.middleware)
    if settings.public_rate_limit_per_minute > 0:
        # The links in e-mails act without an account: a tighter budget per client address.
        public_limit = RateLimitConfig(
            rate_limit=("minute", settings.public_rate_limit_per_minute),
            check_throttle_handler=_is_public_link,
            identifier_for_request=get_remote_address,
            store="public_rate_limit",
        )
        middleware.append(public_limit.middleware)
    app = Litestar(
        route_handlers=[
            HealthController,
            ProblemTypeController,
            CountyController,
            MunicipalityController,
            OrganizationController,
            NetworkController,
            NetworkMemberController,
            ParticipantController,
            ApiKeyController,
            AuditController,
            OutboxController,
            PluginController,
            EmailHoldController,
            UnsubscribeController,
            WebhookController,
            DirectoryController,
            ReportController,
            DecisionController,
            DashboardController,
            MeetingController,
            InstructorController,
            SurveyResultsController,
            CalendarFeedController,
            InvitationLinkController,
            RegistrationLinkController,
            SurveyLinkController,
            LinkPageController,
            CertificationController,
            PublicCredentialController,
            CarrierController,
            PickupPointController,
            MetricsController,
            create_static_files_router(path=DOCS_ASSETS, directories=[_STATIC], include_in_schema=False),
        ],
        dependencies={
            "db_session": Provide(provide_db_session),
            "principal": Provide(provide_principal, sync_to_thread=False),
            "ctx": Provide(provide_context, sync_to_thread=False),
        },
        exception_handlers=cast(ExceptionHandlersMap, EXCEPTION_HANDLERS),
        # Outermost first: every request gets an id and a log line, then a principal, then a budget.
        middleware=middleware,
        request_max_body_size=settings.max_request_bytes,
        openapi_config=openapi_config(),
        cors_config=cors,
        lifespan=[lifespan],
        # Tracing's middleware wraps the whole app, outside routing: it sees every request first.
        plugins=[tracing.plugin()] if tracing is not None else [],
        state=state,
        debug=settings.debug,
    )
    _document_common_problems(app)
    return app


def _document_common_problems(app: Litestar) -> None:
    """Every operation can answer some problems whatever it does: a body too large or unreadable,
    a field invalid, the budget spent, the database away for a moment (503 with Retry-After); and
    without a credential, 401 and 403. Documented on each, so a client generated from the OpenAPI
    document knows them (and the fuzzer holds us to it)."""
    from litestar.handlers.http_handlers import HTTPRouteHandler

    from service.http import problem_responses

    everywhere = problem_responses(400, 413, 422, 429, 503)
    signed_in = problem_responses(401, 403)
    missing = problem_responses(404)
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if not isinstance(handler, HTTPRouteHandler):
                continue
            public = bool(handler.opt.get("public")) or handler.opt.get("exclude_from_auth")
            extra = dict(everywhere) if public else {**everywhere, **signed_in}
            if "{" in route.path:  # whatever the path names may not exist (or not for the caller)
                extra.update(missing)
            handler.responses = {**extra, **(handler.responses or {})}


# The links in e-mails (meetings, unsubscribe): the routes the public budget applies to.
_PUBLIC_LINKS = re.compile(
    r"^/(v1/(invitations|registrations|surveys|unsubscribe|verify)|rsvp|seat|survey|verify)/"
)


async def _is_public_link(request: Request[Any, Any, Any]) -> bool:
    # async: Litestar runs a plain function here in a worker thread, on every request.
    return bool(_PUBLIC_LINKS.match(request.url.path))


_EXPOSED = ["ETag", "Location", "Link", "X-Request-ID", "Idempotent-Replayed"]


__all__ = ["create_app"]
