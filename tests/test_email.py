"""E-mail through the outbox: a real SMTP server (aiosmtpd) on loopback reads what arrives."""

from __future__ import annotations

import asyncio
import email
import json
import threading
import time
from datetime import timedelta
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import create_engine, create_sessionmaker, utcnow
from service.migrate import upgrade
from service.outbox.models import EmailHold, OutboxMessage, OutboxStatus
from service.outbox.service import OutboxService, OutboxWorker
from service.pluginhost import PluginFailure, PluginHost
from service.pluginspec import Attachment, OutgoingEmail, SendResult, hookimpl
from service.settings import Settings
from tests.conftest import PgDatabases, new_database_url
from tests.helpers import context, problem
from tests.smtp_server import Inbox, free_port
from tests.test_auth import bearer, make_key


def mail_settings(settings: Settings, port: int, **extra: Any) -> Settings:
    config = json.dumps({"smtp": {"host": "127.0.0.1", "port": port, "timeout_seconds": 2}})
    values = {"outbox_backoff_seconds": 0.0, **extra}
    return msgspec.structs.replace(
        settings,
        email_transport="smtp",
        plugin_config=config,
        email_from="TMN Älvsbyn <tmn@alvsbyn.example>",
        **values,
    )


def worker_for(session: AsyncSession, settings: Settings) -> OutboxWorker:
    # The worker's sessions join the test's transaction through savepoints.
    bind = session.bind
    return OutboxWorker(
        create_sessionmaker(bind, join_transaction_mode="create_savepoint"), PluginHost(settings), settings
    )


async def queue(
    session: AsyncSession, settings: Settings, n: int = 1, to: str = "staff{}@ombud.example", **kwargs: Any
) -> list[OutboxMessage]:
    service = OutboxService(context(session), settings)
    out = [
        await service.enqueue_email(to=to.format(i), subject=f"Inbjudan {i}", text=f"Hej {i}!", **kwargs)
        for i in range(n)
    ]
    await session.commit()
    return out


async def statuses(session: AsyncSession) -> dict[str, int]:
    rows = (await session.scalars(select(OutboxMessage.status))).all()
    counts: dict[str, int] = {}
    for status in rows:
        counts[status.value] = counts.get(status.value, 0) + 1
    return counts


async def test_messages_arrive_with_headers_bodies_and_attachments(session, settings, smtp) -> None:
    settings = mail_settings(settings, smtp.port)
    ics = Attachment(
        filename="mote.ics", content_type="text/calendar", content=b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    )
    [queued] = await queue(
        session,
        settings,
        html="<p>Hej &amp; välkommen!</p>",
        attachments=[ics],
        headers={"Reply-To": "samordnare@alvsbyn.example"},
    )
    assert await worker_for(session, settings).run_once() == 1

    [received] = smtp.inbox.messages
    assert received["Message-ID"] == queued.message_id
    assert received["From"] == "TMN Älvsbyn <tmn@alvsbyn.example>"
    assert received["To"] == "staff0@ombud.example"
    assert received["Subject"] == "Inbjudan 0"
    assert received["Reply-To"] == "samordnare@alvsbyn.example"
    assert received.get_body(("plain",)).get_content().strip() == "Hej 0!"
    assert "välkommen" in received.get_body(("html",)).get_content()
    [attachment] = list(received.iter_attachments())
    assert attachment.get_filename() == "mote.ics"
    assert attachment.get_content_type() == "text/calendar"
    await session.refresh(queued)
    assert queued.status is OutboxStatus.SENT and queued.attempts == 1 and queued.sent_at is not None


async def test_smtp_down_then_up_delivers_every_message_exactly_once(session, settings, smtp) -> None:
    settings = mail_settings(settings, smtp.port, outbox_batch_size=50, outbox_backoff_seconds=60.0)
    smtp.stop()
    await queue(session, settings, 200)
    worker = worker_for(session, settings)
    while await worker.run_once():  # every message tried once against the dead server
        pass
    assert await statuses(session) == {"pending": 200}
    attempts = (await session.scalars(select(OutboxMessage.attempts))).all()
    assert set(attempts) == {1}

    smtp.start()
    await session.execute(update(OutboxMessage).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    await session.commit()
    while await worker.run_once():
        pass
    assert await statuses(session) == {"sent": 200}
    ids = [m["Message-ID"] for m in smtp.inbox.messages]
    assert len(ids) == len(set(ids)) == 200


async def test_a_failing_transport_backs_off_and_then_gives_up(session, settings, smtp) -> None:
    settings = mail_settings(settings, smtp.port, outbox_backoff_seconds=60.0, outbox_max_attempts=2)
    smtp.stop()
    [message] = await queue(session, settings)
    worker = worker_for(session, settings)
    assert worker.backoff(1) == timedelta(seconds=60) and worker.backoff(3) == timedelta(seconds=240)
    await worker.run_once()
    await session.refresh(message)
    assert message.status is OutboxStatus.PENDING and message.attempts == 1
    assert message.next_attempt_at > utcnow() + timedelta(seconds=50)
    assert "cannot connect" in (message.last_error or "")
    assert await worker.run_once() == 0  # not due yet
    message.next_attempt_at = utcnow()
    await session.commit()
    await worker.run_once()
    await session.refresh(message)
    assert message.status is OutboxStatus.DEAD and message.attempts == 2


async def test_a_permanent_rejection_holds_the_address(session, settings, smtp) -> None:
    settings = mail_settings(settings, smtp.port)
    smtp.inbox.refuse.add("gone@ombud.example")
    [bounced, fine] = await queue(session, settings, 2, to="{}")
    bounced.recipient, fine.recipient = "gone@ombud.example", "here@ombud.example"
    await session.commit()
    worker = worker_for(session, settings)
    await worker.run_once()
    await session.refresh(bounced)
    assert bounced.status is OutboxStatus.DEAD and "550" in (bounced.last_error or "")
    assert await session.get(EmailHold, "gone@ombud.example") is not None
    assert [m["To"] for m in smtp.inbox.messages] == ["here@ombud.example"]

    # Further mail to the address waits on the hold; retrying lifts it.
    [later] = await queue(session, settings, to="Gone@Ombud.example")
    await worker.run_once()
    await session.refresh(later)
    assert later.status is OutboxStatus.HELD and len(smtp.inbox.messages) == 1
    smtp.inbox.refuse.clear()
    await OutboxService(context(session), settings).retry(later.id)
    await session.commit()
    assert await session.get(EmailHold, "gone@ombud.example") is None
    await worker.run_once()
    assert len(smtp.inbox.messages) == 2


async def test_the_file_transport_writes_one_eml_per_message(session, settings, tmp_path: Path) -> None:
    config = json.dumps({"file": {"directory": str(tmp_path)}})
    settings = msgspec.structs.replace(settings, email_transport="file", plugin_config=config)
    [message] = await queue(session, settings, html="<b>Hej</b>")
    worker = worker_for(session, settings)
    await worker.run_once()
    [written] = list(tmp_path.glob("*.eml"))
    parsed = email.message_from_bytes(written.read_bytes(), policy=default_policy)
    assert parsed["Message-ID"] == message.message_id
    # A message sent again (an administrator's retry after a crash) overwrites, never duplicates.
    await session.refresh(message)
    message.status, message.next_attempt_at = OutboxStatus.PENDING, utcnow()
    await session.commit()
    await worker.run_once()
    assert len(list(tmp_path.glob("*.eml"))) == 1


class Exploding:
    @hookimpl
    def tmn_send_email(self, messages: list[Any]) -> list[SendResult]:
        raise RuntimeError("transport bug")


class Hanging:
    @hookimpl
    async def tmn_send_email(self, messages: list[Any]) -> list[SendResult]:
        await asyncio.sleep(30)
        return []


@pytest.mark.parametrize("plugin", [Exploding(), Hanging()], ids=["raises", "hangs"])
async def test_a_broken_transport_keeps_the_message(session, settings, plugin: object) -> None:
    settings = msgspec.structs.replace(settings, email_transport="broken", plugin_timeout_seconds=0.2)
    [message] = await queue(session, settings)
    host = PluginHost(settings, extra=[("broken", plugin)])
    worker = OutboxWorker(
        create_sessionmaker(session.bind, join_transaction_mode="create_savepoint"), host, settings
    )
    await worker.run_once()
    await session.refresh(message)
    assert message.status is OutboxStatus.PENDING and message.attempts == 1
    [status] = [s for s in host.status() if s.name == "broken"]
    assert status.health == "degraded" and status.failures == 1


async def test_concurrent_workers_never_claim_the_same_message(
    backend: str, pg_databases: PgDatabases, tmp_root: Path
) -> None:
    if backend != "postgresql":
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite serialises writers")
    url = await new_database_url(backend, pg_databases, tmp_root)
    settings = Settings(database_url=url)
    engine = create_engine(settings)
    await upgrade(engine)
    maker = create_sessionmaker(engine)
    async with maker() as session:
        await queue(session, settings, 100)
    from service.outbox.repository import OutboxRepository

    now = utcnow()
    first, second = maker(), maker()
    try:
        # The first claim stays uncommitted (rows locked) while the second runs: it must skip them.
        a = await OutboxRepository(session=first).claim(now=now, lease_until=now, worker="a", limit=60)
        b = await asyncio.wait_for(
            OutboxRepository(session=second).claim(now=now, lease_until=now, worker="b", limit=60), 5
        )
        assert len(a) == 60 and len(b) == 40
        assert not set(a) & set(b)
    finally:
        await first.rollback()
        await second.rollback()
        await first.close()
        await second.close()
        await engine.dispose()


@pytest.fixture
async def outbox_rows(client) -> list[str]:
    async def add() -> list[str]:
        async with client.app.state.sessionmaker() as session:
            settings = client.app.state.settings
            service = OutboxService(context(session), settings)
            made = [
                await service.enqueue_email(to=f"p{i}@ombud.example", subject="Hej", text="Text")
                for i in range(3)
            ]
            made[0].status = OutboxStatus.DEAD
            await session.commit()
            return [str(m.id) for m in made]

    return client.blocking_portal.call(add)


async def test_administrators_inspect_and_retry_the_outbox(client, outbox_rows) -> None:
    listed = (await client.get("/v1/outbox")).json()["items"]
    assert {m["id"] for m in listed} == set(outbox_rows)
    assert all("text" not in m or m["text"] is None for m in listed)
    dead = (await client.get("/v1/outbox", params={"status": "dead"})).json()["items"]
    assert [m["id"] for m in dead] == [outbox_rows[0]]
    one = (await client.get(f"/v1/outbox/{outbox_rows[0]}")).json()
    assert one["text"] == "Text" and one["message_id"].startswith("<")
    retried = await client.post(f"/v1/outbox/{outbox_rows[0]}/retry")
    assert retried.json()["status"] == "pending" and retried.json()["attempts"] == 0
    problem(await client.post(f"/v1/outbox/{outbox_rows[1]}/retry"), 409)  # pending: nothing to retry
    coordinator = (await make_key(client, "municipal_coordinator", municipality_code="2560"))["key"]
    problem(await client.get("/v1/outbox", headers=bearer(coordinator)), 403)


async def test_plugins_are_listed_with_their_health(client) -> None:
    plugins = {p["name"]: p for p in (await client.get("/v1/plugins")).json()}
    assert {"file", "smtp"} <= set(plugins)
    assert plugins["smtp"]["hooks"] == ["tmn_send_email"]
    assert plugins["smtp"]["version"] and plugins["smtp"]["health"] == "ok"
    ready = (await client.get("/health/ready")).json()
    assert {p["name"] for p in ready["plugins"]} >= {"file", "smtp"}


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made for the test."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tmn test smtp")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.pem", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class _Login:
    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"tmn", b"hemligt")
        return AuthResult(success=ok, handled=False)


# Implicit TLS: the test server cannot tell that its whole connection is encrypted, and says so.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_tls_and_login(session, settings, tmp_path: Path, security: str) -> None:
    import ssl

    from aiosmtpd.controller import Controller

    from tests.smtp_server import Inbox, free_port

    cert, key = _certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    inbox, port = Inbox(), free_port()
    auth = {"authenticator": _Login(), "auth_require_tls": True, "auth_required": True}
    if security == "starttls":
        controller = Controller(
            inbox, hostname="127.0.0.1", port=port, tls_context=server_tls, require_starttls=True, **auth
        )
    else:
        # The whole connection is TLS here; aiosmtpd only counts STARTTLS as TLS for auth_require_tls.
        controller = Controller(
            inbox,
            hostname="127.0.0.1",
            port=port,
            ssl_context=server_tls,
            **(auth | {"auth_require_tls": False}),
        )
    controller.start()
    try:
        config = {
            "smtp": {
                "host": "127.0.0.1",
                "port": port,
                "security": security,
                "username": "tmn",
                "password": "hemligt",
                "ca_file": str(cert),
                "timeout_seconds": 5,
            }
        }
        secure = msgspec.structs.replace(
            settings, email_transport="smtp", plugin_config=json.dumps(config), outbox_backoff_seconds=60.0
        )
        [message] = await queue(session, secure)
        await worker_for(session, secure).run_once()
        await session.refresh(message)
        assert message.status is OutboxStatus.SENT, message.last_error
        assert [m["Message-ID"] for m in inbox.messages] == [message.message_id]

        # A wrong password is a failed attempt, retried later; nothing is lost.
        config["smtp"]["password"] = "fel"
        wrong = msgspec.structs.replace(secure, plugin_config=json.dumps(config))
        [again] = await queue(session, wrong, to="other{}@ombud.example")
        await worker_for(session, wrong).run_once()
        await session.refresh(again)
        assert again.status is OutboxStatus.PENDING and again.attempts == 1
    finally:
        controller.stop()


class _HoldingInbox(Inbox):
    """A relay that holds every message at DATA until released (it never says goodbye either)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.to_thread(self.release.wait, 60)
        return await super().handle_DATA(server, session, envelope)


async def test_a_send_cut_off_by_the_time_limit_hangs_up_at_once(settings) -> None:
    """The host's time limit cancels a send stuck at DATA: the plugin hangs up instead of waiting
    (for up to its own SMTP timeout, 30 s here) for a goodbye the relay will not give."""
    inbox = _HoldingInbox()
    port = free_port()
    relay = Controller(inbox, hostname="127.0.0.1", port=port)
    relay.start()
    message = OutgoingEmail(
        message_id="<held@tmn.example>",
        sender="tmn@tmn.example",
        to="ombud@ombud.example",
        subject="Hej",
        text="Hej",
    )
    try:
        host = PluginHost(settings)
        started = time.monotonic()
        with pytest.raises(PluginFailure, match="timed out"):
            await host.call(
                "tmn_send_email",
                "smtp",
                time_limit=1,
                messages=[message],
                config={"host": "127.0.0.1", "port": port, "timeout_seconds": 30},
            )
        assert time.monotonic() - started < 5
    finally:
        inbox.release.set()
        relay.stop()
