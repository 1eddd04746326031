"""Optional OpenTelemetry tracing: off unless TMN_OTEL_ENABLED, then exported over OTLP/HTTP.

On, every request gets a server span (Litestar's OpenTelemetry plugin, outermost, so it continues
a caller's W3C `traceparent`), named after its route template once routing found one; every SQL
statement a child span (SQLAlchemy's instrumentation on the engine), and every outgoing httpx
call (plugins, the identity provider's keys) a client span that passes the trace on. Logs carry
the current `trace_id` and `span_id` (`add_trace_ids`, a structlog processor).

Traces start at requests and at the outbox's deliveries. A queued message keeps the traceparent
of the request that queued it (`current_traceparent`, stored with the message); the worker's
batch (`tmn worker`, or the in-server one) is a consumer span, with its statements and webhook
calls as children, linked to each of those requests' traces (`link_for`). The worker's scheduled
jobs (a certification notice run, a registry pull) start traces of their own. Anything else
outside a request (the worker polling an empty outbox, its meeting tick every few seconds) is
not recorded.

Personal data never leaves the process in a span: what the instrumentations record (the URL with
its query string, the concrete path, the client's address, the user agent, exception messages,
which can quote a duplicate e-mail address) is cut by `_ScrubbingExporter` down to an allow-list
of attributes before export. SQL statements are exported; they hold placeholders, never the bound
values (the instrumentation records the statement only).

Off, nothing here runs but `add_trace_ids`, which finds no span and adds nothing; no tracer
provider, exporter or thread exists, and the SDK, the exporter and the SQLAlchemy and httpx
instrumentations are not imported (Litestar imports its plugin module, with the ASGI
instrumentation, whenever OpenTelemetry is installed: once, at start).
The standard OTEL_* variables apply where the SDK reads them (OTEL_EXPORTER_OTLP_HEADERS,
OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_TRACES_SAMPLER, OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*, and
OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT when TMN_OTEL_ENDPOINT is empty).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send
from opentelemetry import trace

if TYPE_CHECKING:
    from litestar.plugins.opentelemetry import OpenTelemetryPlugin
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import Sampler, SamplingResult
    from opentelemetry.trace import Link, SpanKind, TraceState
    from opentelemetry.util.types import Attributes
    from sqlalchemy.ext.asyncio import AsyncEngine

    from service.settings import Settings

# Paths never traced: scrapes and probes every few seconds would bury the requests that matter.
UNTRACED = ["^/metrics", "^/health/"]

# The only span attributes exported (old and stable semantic-convention names alike). Anything
# else an instrumentation records (http.url, http.target, url.full, url.path, url.query, client
# and peer addresses, user agent, captured headers) stays behind.
SAFE_ATTRIBUTES = frozenset(
    {
        # Server and client HTTP spans.
        "http.method",
        "http.request.method",
        "http.route",
        "http.status_code",
        "http.response.status_code",
        "http.scheme",
        "url.scheme",
        "http.flavor",
        "network.protocol.version",
        "net.host.port",
        "server.address",
        "server.port",
        "error.type",
        "tmn.request_id",
        # The outbox's delivery spans: how many messages a batch held, and what became of them.
        "messaging.system",
        "messaging.operation",
        "messaging.operation.type",
        "messaging.batch.message_count",
        "tmn.outbox.sent",
        "tmn.outbox.not_sent",
        # The worker's scheduled jobs (certification notices, registry pulls) and their carrier.
        "tmn.job",
        "tmn.carrier",
        # Database spans: the statement (with placeholders), the system, database and host.
        "db.system",
        "db.system.name",
        "db.name",
        "db.namespace",
        "db.statement",
        "db.query.text",
        "db.operation",
        "db.operation.name",
        "net.peer.name",
        "net.peer.port",
        "net.transport",
        "network.transport",
    }
)
# Of an exception event, only which exception it was: its message can quote the values.
SAFE_EVENT_ATTRIBUTES = frozenset({"exception.type", "exception.escaped"})


def add_trace_ids(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the current trace and span ids, when a span is being recorded."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


def current_traceparent() -> str | None:
    """The W3C traceparent of the span being recorded now (a request's), to keep with work it
    queues; None when tracing is off or the span is not sampled. Costs nothing when off."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def link_for(traceparent: str | None) -> trace.SpanContext | None:
    """The span context a stored traceparent names (to link to), or None if there is none or it
    does not parse."""
    if not traceparent:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    context = trace.get_current_span(
        TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    ).get_span_context()
    return context if context.is_valid else None


def route_span_middleware(app: ASGIApp) -> ASGIApp:
    """Name the server span after the route's template (`GET /v1/participants/{participant_id}`)
    and give it the request id. The OpenTelemetry middleware starts the span before routing,
    knowing only the method (the concrete path can carry an e-mail address); this runs after."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        span = trace.get_current_span()
        if scope["type"] == ScopeType.HTTP and span.is_recording():
            template = scope.get("path_template")
            if template:
                span.update_name(f"{scope['method']} {template}")
                span.set_attribute("http.route", template)
            request_id = scope.get("tmn_request_id")
            if isinstance(request_id, str):
                span.set_attribute("tmn.request_id", request_id)
        await app(scope, receive, send)

    return middleware


def _span_details(scope: Scope) -> tuple[str, dict[str, Any]]:
    # The span's name before routing: the method alone, never the path (route_span_middleware
    # adds the template). Returned attributes override the instrumentation's, so none here.
    return str(scope.get("method") or scope["type"]), {}


def _endpoint(base: str) -> str | None:
    """TMN_OTEL_ENDPOINT is the collector's base address (as OTEL_EXPORTER_OTLP_ENDPOINT is);
    traces go to its /v1/traces. Empty: None, so the exporter reads the OTEL_* variables."""
    base = base.strip().rstrip("/")
    if not base:
        return None
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


def _scrub(span: ReadableSpan) -> ReadableSpan:
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import Link, Status

    def keep(attributes: Mapping[str, Any] | None, allowed: frozenset[str]) -> dict[str, Any]:
        return {k: v for k, v in (attributes or {}).items() if k in allowed}

    attributes = keep(span.attributes, SAFE_ATTRIBUTES)
    name = span.name
    if attributes.get("db.system") == "sqlite":
        # SQLite's database name is its file's path ("SELECT /home/<someone>/tmn.sqlite3"): the
        # statement's operation alone names the span, and the path is not exported.
        name = f"{name.split(' ', 1)[0]} sqlite"
        attributes = {k: v for k, v in attributes.items() if k not in ("db.name", "db.namespace")}
        for key in ("db.operation", "db.operation.name"):
            if isinstance(attributes.get(key), str):
                attributes[key] = attributes[key].split(" ", 1)[0]
    return ReadableSpan(
        name=name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=[
            Event(e.name, keep(e.attributes, SAFE_EVENT_ATTRIBUTES), timestamp=e.timestamp)
            for e in span.events
        ],
        links=[Link(link.context) for link in span.links],
        kind=span.kind,
        # A status's description is an exception's message (SQLAlchemy's, with the values).
        status=Status(span.status.status_code),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _scrubbing(exporter: SpanExporter) -> SpanExporter:
    from opentelemetry.sdk.trace.export import SpanExporter

    class _ScrubbingExporter(SpanExporter):
        """Exports through `exporter` what the allow-lists keep of each span, nothing more."""

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return exporter.export([_scrub(span) for span in spans])

        def shutdown(self) -> None:
            exporter.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return exporter.force_flush(timeout_millis)

    return _ScrubbingExporter()


def _requests_only(inner: Sampler) -> Sampler:
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

    class _RequestsOnly(Sampler):
        """A trace starts at a request (a server span), at a batch of the outbox's deliveries
        (a consumer span) or at one of the worker's scheduled jobs (a span with `tmn.job`). A
        statement or call outside those, such as the worker polling an empty outbox every few
        seconds, would be a trace of its own with nothing to explain it: not recorded.
        Everything else is `inner`'s decision."""

        def should_sample(
            self,
            parent_context: Context | None,
            trace_id: int,
            name: str,
            kind: SpanKind | None = None,
            attributes: Attributes = None,
            links: Sequence[Link] | None = None,
            trace_state: TraceState | None = None,
        ) -> SamplingResult:
            parent = trace.get_current_span(parent_context).get_span_context()
            starts_trace = kind in (trace.SpanKind.SERVER, trace.SpanKind.CONSUMER) or (
                attributes is not None and "tmn.job" in attributes
            )
            if not parent.is_valid and not starts_trace:
                return SamplingResult(Decision.DROP)
            return inner.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

        def get_description(self) -> str:
            return f"RequestsOnly{{{inner.get_description()}}}"

    return _RequestsOnly()


class Tracing:
    """Tracing for one app: its tracer provider (not installed as the global one, so apps built in
    one process, as the tests do, stay apart), the Litestar plugin, and the instrumentations. Those
    two are process-wide (httpx's patches the transports): one traced app at a time, as in
    `tmn serve`, where each worker process builds its own."""

    def __init__(self, settings: Settings) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.provider: TracerProvider = TracerProvider(
            resource=Resource.create({SERVICE_NAME: settings.otel_service_name})
        )
        # The sampler OTEL_TRACES_SAMPLER chose (parent-based, always on by default), made to start
        # traces at requests only. Set before any tracer is made: tracers take it when made.
        self.provider.sampler = _requests_only(self.provider.sampler)
        exporter = OTLPSpanExporter(endpoint=_endpoint(settings.otel_endpoint))
        # Spans are sent from the processor's thread in batches, never on a request's path.
        self.provider.add_span_processor(BatchSpanProcessor(_scrubbing(exporter)))
        self._instrumented = False

    def plugin(self) -> OpenTelemetryPlugin:
        from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
        from opentelemetry.metrics import NoOpMeterProvider

        config = OpenTelemetryConfig(
            tracer_provider=self.provider,
            # Request metrics are Prometheus's (/metrics); the middleware's own would be a copy.
            meter_provider=NoOpMeterProvider(),
            scope_span_details_extractor=_span_details,
            exclude=UNTRACED,
            # No span per ASGI message: one server span per request is what is worth reading.
            exclude_spans=["receive", "send"],
        )
        return OpenTelemetryPlugin(config)

    def tracer(self, name: str) -> trace.Tracer:
        """A tracer of this app's provider (the worker's delivery spans)."""
        return self.provider.get_tracer(name)

    def instrument(self, engine: AsyncEngine) -> None:
        """Spans for the engine's statements and for outgoing httpx requests (until shutdown)."""
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, tracer_provider=self.provider)
        HTTPXClientInstrumentor().instrument(tracer_provider=self.provider)
        self._instrumented = True

    async def shutdown(self) -> None:
        """Stop tracing the engine and httpx, and send what is still queued."""
        if self._instrumented:
            from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            SQLAlchemyInstrumentor().uninstrument()
            HTTPXClientInstrumentor().uninstrument()
            self._instrumented = False
        # Blocks until the last batch is exported (or the exporter's timeout): off the loop.
        await asyncio.to_thread(self.provider.shutdown)


def setup_tracing(settings: Settings) -> Tracing | None:
    """Tracing for an app, or None when TMN_OTEL_ENABLED is off."""
    return Tracing(settings) if settings.otel_enabled else None


def tracer_of(tracing: Tracing | None, name: str) -> trace.Tracer | None:
    """A tracer for the worker's parts when tracing is on; None (they trace nothing) when off."""
    return tracing.tracer(name) if tracing is not None else None


__all__ = [
    "SAFE_ATTRIBUTES",
    "Tracing",
    "add_trace_ids",
    "current_traceparent",
    "link_for",
    "route_span_middleware",
    "setup_tracing",
    "tracer_of",
]
