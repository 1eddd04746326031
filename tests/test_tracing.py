"""OpenTelemetry tracing, end to end: the app exports over OTLP/HTTP to a real receiver on loopback,
and what arrives (decoded with opentelemetry-proto) is checked. Runs on both databases (`tmn
worker` as a process: on PostgreSQL).

On: a server span per request named after the route template, with its status; the statements
as child spans; a caller's `traceparent` continued; the trace and span ids in the log lines; and
no e-mail address, name or phone number anywhere in the bytes sent. Off: nothing is sent at all.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import msgspec
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from service.db import create_engine, create_sessionmaker
from service.meetings.mail import Outside
from service.meetings.ticker import MeetingTicker
from service.outbox.service import OutboxService, OutboxWorker
from service.settings import Settings
from tests.conftest import client_for
from tests.helpers import context, create
from tests.meeting_helpers import cast, collaboration_meeting, mail_settings
from tests.test_fault_postgres import server_env
from tests.test_registries import pull_settings, registry
from tests.test_shutdown import migrate, shutdown_db, start_worker

# Fixtures: a database of its own for `tmn worker`; a carrier's registry (its HTTP samples).
__all__ = ["registry", "shutdown_db"]

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01"
PERSON = {"name": "Zlatana Örnsköld", "email": "zlatana.ornskold@alvsby.example", "phone": "070-174 06 11"}
SECRETS = ["zlatana", "örnsköld", "ornskold", "alvsby.example", "1740611", "174 06 11", "hemligt@"]


@dataclass
class OtlpReceiver:
    """An OTLP/HTTP trace receiver on loopback: keeps every body POSTed to /v1/traces."""

    bodies: list[bytes] = field(default_factory=list)
    # Other requests (as an outgoing plugin call): the path without query, and any traceparent.
    other_requests: list[tuple[str, str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    receiver.other_requests.append((self.path, None))
                    self.send_response(404)
                    self.end_headers()
                    return
                receiver.bodies.append(body)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def do_GET(self) -> None:
                # Anything else is a contact list, as the http_directory plugin fetches: empty.
                receiver.other_requests.append((self.path.split("?")[0], self.headers.get("traceparent")))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"[]")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def spans(self) -> list[Span]:
        found: list[Span] = []
        for body in self.bodies:
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    found.extend(scope_spans.spans)
        return found


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    yield server
    server.stop()


def _attributes(span: Span) -> dict[str, object]:
    values: dict[str, object] = {}
    for attribute in span.attributes:
        kind = attribute.value.WhichOneof("value")
        values[attribute.key] = getattr(attribute.value, kind) if kind else None
    return values


def _status_code(span: Span) -> object:
    attributes = _attributes(span)
    return attributes.get("http.status_code", attributes.get("http.response.status_code"))


async def test_requests_are_traced_with_their_route_statements_and_the_callers_trace(
    engine, settings: Settings, receiver: OtlpReceiver, tmn_logs: list[str]
) -> None:
    # The http_directory plugin fetches a contact list over httpx while answering a request.
    contact_list = f"{receiver.url}/kontakter?kommun={{municipality}}&kontakt={PERSON['email']}"
    traced = msgspec.structs.replace(
        settings,
        otel_enabled=True,
        otel_endpoint=receiver.url,
        plugin_config=json.dumps({"http_directory": {"url": contact_list, "source": "lansstyrelsen"}}),
    )
    async with client_for(engine, traced) as client:
        counties = await client.get(
            "/v1/counties", headers={"traceparent": TRACEPARENT, "X-Request-ID": "traced-1"}
        )
        assert counties.status_code == 200
        created = await client.post("/v1/participants", json=PERSON)
        assert created.status_code == 201
        # The same person again (409), a search by e-mail in the query, an address in the path:
        # the values are in the request, in SQL parameters and perhaps in a driver's error.
        assert (await client.post("/v1/participants", json=PERSON)).status_code == 409
        found = await client.get("/v1/participants", params={"email": PERSON["email"], "q": "Zlatana"})
        assert found.status_code == 200
        await client.delete("/v1/email-holds/hemligt@alvsby.example")
        await client.get("/health/live")
        assert (await client.get("/v1/municipalities/2560/contacts")).status_code == 200
        # A call outside any request (as the in-server worker makes) starts no trace.
        async with httpx.AsyncClient() as outside:
            await outside.get(f"{receiver.url}/outside")
    # Leaving the client ran the app's shutdown, which flushed the last spans to the receiver.

    assert receiver.bodies, "nothing was exported"
    exported = b"".join(receiver.bodies).lower()
    assert [s for s in SECRETS if s.encode() in exported] == []
    # Nor where an SQLite database lives (its name is its file's path, which can hold a user's
    # name): its statements' spans are named by their operation. (PostgreSQL's name is exported.)
    if traced.database_url.startswith("sqlite"):
        database = make_url(traced.database_url).database or ""
        assert database.encode().lower() not in exported

    spans = receiver.spans()
    names = sorted({span.name for span in spans})
    [server] = [s for s in spans if s.name == "GET /v1/counties" and s.kind == Span.SPAN_KIND_SERVER]
    assert _status_code(server) == 200
    assert _attributes(server)["http.route"] == "/v1/counties"
    assert _attributes(server)["tmn.request_id"] == "traced-1"
    # The caller's trace goes on: same trace id, the caller's span as parent.
    assert server.trace_id.hex() == TRACE_ID
    assert server.parent_span_id.hex() == CALLER_SPAN_ID
    statements = [s for s in spans if s.parent_span_id == server.span_id]
    assert statements, names
    assert all(s.kind == Span.SPAN_KIND_CLIENT and s.trace_id == server.trace_id for s in statements)
    assert any("county" in str(_attributes(s).get("db.statement", "")).lower() for s in statements)
    assert {_attributes(s)["db.system"] for s in statements} <= {"sqlite", "postgresql"}

    # Other requests start their own traces, named by route (never by the concrete path).
    assert any(s.name == "POST /v1/participants" and _status_code(s) == 409 for s in spans)
    assert any(s.name == "GET /v1/participants" and _status_code(s) == 200 for s in spans)
    assert any(s.name.startswith("DELETE /v1/email-holds/{") for s in spans), names
    assert all(s.trace_id.hex() != TRACE_ID for s in spans if s.name == "POST /v1/participants")
    assert not any("/health" in s.name for s in spans), names
    # The plugin's outgoing call: a client span in the request's trace (without its URL), and the
    # trace passed on to the service it called. The call outside a request: no span, no trace.
    [contacts] = [s for s in spans if s.name == "GET /v1/municipalities/{code}/contacts"]
    [outgoing] = [s for s in spans if s.kind == Span.SPAN_KIND_CLIENT and "db.system" not in _attributes(s)]
    assert _attributes(outgoing).get("http.method", _attributes(outgoing).get("http.request.method")) == "GET"
    assert outgoing.trace_id == contacts.trace_id
    assert [path for path, _ in receiver.other_requests] == ["/kontakter", "/outside"]
    sent = {path: (traceparent or "").split("-") for path, traceparent in receiver.other_requests}
    assert sent["/kontakter"][1:3] == [outgoing.trace_id.hex(), outgoing.span_id.hex()]
    assert int(sent["/kontakter"][3], 16) & 1  # sampled
    # (httpx's instrumentation still passes on a trace id, marked "not sampled", and records nothing.)
    outside = receiver.other_requests[-1][1]
    if outside is not None:
        _, outside_trace, _, flags = outside.split("-")
        assert not int(flags, 16) & 1
        assert all(s.trace_id.hex() != outside_trace for s in spans)
    # Only allow-listed attributes left the process: no URL, path, query or client address.
    keys = {key for span in spans for key in _attributes(span)}
    assert not keys & {"http.url", "http.target", "url.full", "url.path", "url.query", "net.peer.ip"}

    # The request's log line carries the trace and the server span.
    [line] = [json.loads(x) for x in tmn_logs if '"traced-1"' in x]
    assert line["trace_id"] == TRACE_ID
    assert line["span_id"] == server.span_id.hex()


async def test_deliveries_are_traced_and_linked_to_the_requests_that_queued_them(
    engine, settings: Settings, receiver: OtlpReceiver, smtp
) -> None:
    traced = msgspec.structs.replace(
        mail_settings(settings, smtp.port), otel_enabled=True, otel_endpoint=receiver.url
    )
    async with client_for(engine, traced) as client:
        people = await cast(client)
        meeting = await create(client, "/v1/meetings", collaboration_meeting(people))
        mid = meeting["id"]
        assert (await client.post(f"/v1/meetings/{mid}/schedule")).status_code == 200
        shops = [people.shops[0]["id"], people.shops[1]["id"]]
        invited = await client.post(f"/v1/meetings/{mid}/invitations", json={"organization_ids": shops})
        assert invited.status_code == 200
        sent = await client.post(f"/v1/meetings/{mid}/send-invitations", headers={"traceparent": TRACEPARENT})
        assert sent.status_code == 200, sent.text
        state = client.app.state
        # The worker as the app runs it in-process (and `tmn worker` on its own): the app's tracer.
        worker = OutboxWorker(
            state.sessionmaker, state.plugins, state.settings, tracer=state.tracing.tracer("x")
        )
        delivered = 0
        while batch := client.blocking_portal.call(worker.run_once):
            delivered += batch
        # An empty outbox polled again: no span, no trace.
        assert client.blocking_portal.call(worker.run_once) == 0
    assert delivered >= 2 and len(smtp.inbox.messages) == delivered

    exported = b"".join(receiver.bodies).lower()
    addresses = [people.coordinator["email"], "butik@storgatanslivs.example", "info@icanara.example"]
    assert [s for s in [*SECRETS, *addresses] if s.lower().encode() in exported] == []

    spans = receiver.spans()
    [request] = [s for s in spans if s.name == "POST /v1/meetings/{meeting_id}/send-invitations"]
    assert request.trace_id.hex() == TRACE_ID
    deliveries = [s for s in spans if s.name == "outbox deliver"]
    assert deliveries
    for delivery in deliveries:
        # Each batch starts a trace of its own (a consumer span, no parent) ...
        assert delivery.kind == Span.SPAN_KIND_CONSUMER and not delivery.parent_span_id
        assert delivery.trace_id.hex() != TRACE_ID
        attributes = _attributes(delivery)
        assert attributes["messaging.system"] == "tmn.outbox"
        assert attributes["tmn.outbox.sent"] == attributes["messaging.batch.message_count"]
        # ... with its statements as children.
        assert any(
            s.parent_span_id == delivery.span_id
            and "outbox_message" in str(_attributes(s).get("db.statement"))
            for s in spans
        )
    assert sum(int(str(_attributes(d)["tmn.outbox.sent"])) for d in deliveries) == delivered
    # ... linked to the request that queued its messages (the invitations), in the caller's trace.
    links = {(link.trace_id.hex(), link.span_id) for d in deliveries for link in d.links}
    assert (TRACE_ID, request.span_id) in links
    # Messages queued outside a traced request (the meeting's set-up mail, if any) carry no link:
    # every link points at a request span that was exported.
    request_spans = {(s.trace_id.hex(), s.span_id) for s in spans if s.kind == Span.SPAN_KIND_SERVER}
    assert links <= request_spans


async def test_tmn_worker_exports_its_deliveries(
    shutdown_db: str, tmp_path: Path, receiver: OtlpReceiver, smtp
) -> None:
    """`tmn worker` as its own process, tracing on: a message queued by a traced request (its
    traceparent kept with it) is delivered in a consumer span linked to that request, and the
    span reaches the collector by the time the worker has stopped on SIGTERM."""
    await migrate(shutdown_db)
    engine = create_engine(Settings(database_url=shutdown_db), poolclass=NullPool)
    async with create_sessionmaker(engine)() as session:
        outbox = OutboxService(context(session), Settings(database_url=shutdown_db))
        for subject in ("Inbjudan 1", "Inbjudan 2"):
            message = await outbox.enqueue_email(
                to="butik@storgatanslivs.example", subject=subject, text="Hej!"
            )
            message.trace_context = TRACEPARENT
        await session.commit()
    await engine.dispose()

    env = server_env(shutdown_db, tmp_path)
    env.update(
        TMN_EMAIL_TRANSPORT="smtp",
        TMN_PLUGIN_CONFIG=json.dumps({"smtp": {"host": "127.0.0.1", "port": smtp.port}}),
        TMN_OUTBOX_POLL_SECONDS="0.2",
        TMN_OTEL_ENABLED="true",
        TMN_OTEL_ENDPOINT=receiver.url,
        TMN_OTEL_SERVICE_NAME="tmn-worker-test",
    )
    log_path = tmp_path / "worker.log"
    worker = start_worker(env, tmp_path, log_path)
    try:
        deadline = time.monotonic() + 30
        while len(smtp.inbox.messages) < 2:
            assert time.monotonic() < deadline and worker.poll() is None, log_path.read_text()
            await asyncio.sleep(0.1)
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait, 20) == 0, log_path.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    assert "Traceback" not in log_path.read_text()

    bodies = [ExportTraceServiceRequest.FromString(body) for body in receiver.bodies]
    services = {
        attribute.value.string_value
        for body in bodies
        for resource_spans in body.resource_spans
        for attribute in resource_spans.resource.attributes
        if attribute.key == "service.name"
    }
    assert services == {"tmn-worker-test"}
    spans = receiver.spans()
    [delivery] = [s for s in spans if s.name == "outbox deliver"]
    assert delivery.kind == Span.SPAN_KIND_CONSUMER
    assert _attributes(delivery)["tmn.outbox.sent"] == 2
    assert [(link.trace_id.hex(), link.span_id.hex()) for link in delivery.links] == [
        (TRACE_ID, CALLER_SPAN_ID)
    ] * 2
    assert any(s.parent_span_id == delivery.span_id for s in spans)  # its statements
    # Its schedule's first round sent the certifications' notices (a job, a trace of its own);
    # the polls of an empty outbox before and after, and the meeting tick: no traces.
    [notify] = [s for s in spans if s.name == "certification notify"]
    assert {s.trace_id for s in spans} == {delivery.trace_id, notify.trace_id}
    assert b"storgatanslivs" not in b"".join(receiver.bodies)


async def test_the_workers_jobs_are_traced_and_its_tick_is_not(
    engine, settings: Settings, receiver: OtlpReceiver, registry
) -> None:
    traced = pull_settings(
        settings,
        registry,
        otel_enabled=True,
        otel_endpoint=receiver.url,
        registry_sync_carriers=("postnord",),
        meetings_tick_seconds=3600.0,
    )
    async with client_for(engine, traced) as client:
        state = client.app.state
        outside = Outside(
            settings=state.settings, plugins=state.plugins, directory_cache=state.directory_cache
        )
        ticker = MeetingTicker(state.sessionmaker, outside, tracer=state.tracing.tracer("tmn.worker"))

        async def one_round() -> None:
            # One round of the schedule: the tick, the certifications' notices, the registries.
            running = asyncio.ensure_future(ticker.run())
            for _ in range(100):  # until the registry was asked, then a moment for the rest
                if registry.requests:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            ticker.stop()
            await running

        client.blocking_portal.call(one_round)

    spans = receiver.spans()
    [pull] = [s for s in spans if s.name == "registry pull"]
    [notify] = [s for s in spans if s.name == "certification notify"]
    assert not pull.parent_span_id and not notify.parent_span_id and pull.trace_id != notify.trace_id
    assert _attributes(pull) == {"tmn.job": "registry pull", "tmn.carrier": "postnord"}
    pull_children = [s for s in spans if s.trace_id == pull.trace_id and s.parent_span_id == pull.span_id]
    # The registry's pages fetched over HTTP, and the sync's statements, inside the pull's trace
    # (this first pull of a carrier stops at a safety limit without force: an error, by type).
    fetched = [
        s for s in pull_children if s.kind == Span.SPAN_KIND_CLIENT and "db.system" not in _attributes(s)
    ]
    assert len(fetched) == len(registry.requests)
    assert any("FROM carrier" in str(_attributes(s).get("db.statement")) for s in pull_children)
    assert any(s.trace_id == notify.trace_id and s.parent_span_id == notify.span_id for s in spans)
    # The tick's statements (reminders, offers) start no trace: every span is in a job's trace
    # or the list request's.
    request_traces = {s.trace_id for s in spans if s.kind == Span.SPAN_KIND_SERVER}
    assert {s.trace_id for s in spans} == {pull.trace_id, notify.trace_id} | request_traces


async def test_with_tracing_off_nothing_is_sent(
    engine, settings: Settings, receiver: OtlpReceiver, tmn_logs: list[str], monkeypatch
) -> None:
    # Even with a collector named, in TMN_* and in the standard variable, off means off.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    untraced = msgspec.structs.replace(settings, otel_enabled=False, otel_endpoint=receiver.url)
    async with client_for(engine, untraced) as client:
        assert not any(type(p).__name__ == "OpenTelemetryPlugin" for p in client.app.plugins)
        response = await client.get(
            "/v1/counties", headers={"traceparent": TRACEPARENT, "X-Request-ID": "untraced-1"}
        )
        assert response.status_code == 200
        await client.get("/v1/participants", params={"email": PERSON["email"]})
        async with httpx.AsyncClient() as outside:
            await outside.get(f"{receiver.url}/outside")
    assert receiver.bodies == []
    [line] = [json.loads(x) for x in tmn_logs if '"untraced-1"' in x]
    assert "trace_id" not in line and "span_id" not in line
    # No traceparent went out with the plugin-like call either (httpx is not instrumented).
    assert receiver.other_requests == [("/outside", None)]


def test_settings_turn_tracing_on() -> None:
    settings = Settings.from_env(
        {
            "TMN_OTEL_ENABLED": "true",
            "TMN_OTEL_ENDPOINT": "http://collector:4318",
            "TMN_OTEL_SERVICE_NAME": "tmn-lulea",
        }
    )
    assert (settings.otel_enabled, settings.otel_endpoint, settings.otel_service_name) == (
        True,
        "http://collector:4318",
        "tmn-lulea",
    )
    assert Settings().otel_enabled is False
    assert Settings().otel_service_name == "tmn"
