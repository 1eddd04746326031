"""Graceful shutdown, with real processes on PostgreSQL (a database of its own on the test server,
TEST_DATABASE_URL, dropped afterwards).

`tmn serve`: SIGTERM while a request is in flight (made slow by a table lock the test holds from
its own connection): the request still completes with 200, new connections are refused at once,
and the process exits 0 once the request is done.

`tmn worker`: SIGTERM while it holds a leased batch that the mail relay is slow to take: it
finishes the batch (every message sent once) or, when the relay does not answer within the
SMTP timeout, hands the messages back (pending again, no lease left); either way it exits 0
and nothing stays claimed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from service.db import create_engine, create_sessionmaker
from service.migrate import upgrade
from service.outbox.models import OutboxMessage, OutboxStatus
from service.outbox.service import OutboxService
from service.seed import demo_key
from service.settings import Settings
from tests import conftest
from tests.helpers import context
from tests.smtp_server import Inbox, free_port
from tests.test_cli import TMN
from tests.test_fault_postgres import server_env, start_server, stop_server


@pytest.fixture
async def shutdown_db() -> AsyncIterator[str]:
    """A database of its own on the test server, migrated; dropped at the end."""
    if conftest._PG_PROBLEM is not None:
        pytest.skip(f"PostgreSQL not reachable: {conftest._PG_PROBLEM}")
    admin = conftest._asyncpg_dsn(conftest.PG_ADMIN_URL)
    name = f"tmn_shutdown_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield make_url(conftest.PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def migrate(url: str) -> None:
    """The schema, in-process (one process start less than `tmn migrate`, which other tests run)."""
    engine = create_engine(Settings(database_url=url), poolclass=NullPool)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


async def wait_for(predicate: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await predicate():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_lets_the_request_in_flight_finish(
    shutdown_db: str, tmp_path: Path, workers: int
) -> None:
    env = server_env(shutdown_db, tmp_path)
    await migrate(shutdown_db)
    served = start_server(env, tmp_path, "--demo", "--workers", str(workers))
    port = int(served.base.rsplit(":", 1)[1])
    dsn = conftest._asyncpg_dsn(shutdown_db)
    locker = await asyncpg.connect(dsn)
    watcher = await asyncpg.connect(dsn)
    try:
        # The test's own transaction locks the table the request reads: the request waits for it.
        lock = locker.transaction()
        await lock.start()
        await locker.execute("LOCK TABLE organization IN ACCESS EXCLUSIVE MODE")
        headers = {"Authorization": f"Bearer {demo_key('demoadmn')}"}
        async with httpx.AsyncClient(base_url=served.base, headers=headers, timeout=40) as api:
            slow = asyncio.create_task(api.get("/v1/organizations", params={"limit": 5}))

            async def waiting_on_the_lock() -> bool:
                return bool(
                    await watcher.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND query ILIKE '%organization%'"
                    )
                )

            await wait_for(waiting_on_the_lock, 15, "the request waits on the lock")
            served.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()

            # Shutting down: new connections are refused at once, while the request still runs.
            await wait_for(lambda: asyncio.to_thread(refused, port), 3, "new connections are refused")
            await asyncio.sleep(1.0)
            assert served.process.poll() is None, "the server quit with a request in flight"
            assert not slow.done()

            await lock.rollback()  # the request can go on now
            response = await asyncio.wait_for(slow, 10)
        assert response.status_code == 200, response.text
        assert response.json()["items"]
        assert response.headers.get("connection") == "close"
        returncode = await asyncio.to_thread(served.process.wait, 30)
        assert returncode == 0, served.log.read_text()
        assert time.monotonic() - signalled < 30
        log = served.log.read_text()
        assert "Finished server process" in log
        assert "unhandled error" not in log
    finally:
        await locker.close()
        await watcher.close()
        stop_server(served)


def start_worker(env: dict[str, str], workdir: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [str(TMN), "worker"], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
        )


class SlowRelay(Inbox):
    """A mail relay that holds every message at DATA until released."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()
        self.release = threading.Event()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.started.set()
        await asyncio.to_thread(self.release.wait, 60)
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.parametrize("relay_answers", [True, False], ids=["relay-answers", "relay-hangs"])
async def test_sigterm_worker_leaves_nothing_claimed(
    shutdown_db: str, tmp_path: Path, relay_answers: bool
) -> None:
    env = server_env(shutdown_db, tmp_path)
    await migrate(shutdown_db)
    relay = SlowRelay()
    relay.controller.start()
    # A relay that never answers is given up on after the SMTP client's timeout (each command's);
    # one that answers is released well within it.
    smtp = {"host": "127.0.0.1", "port": relay.port, "timeout_seconds": 30 if relay_answers else 3}
    env.update(
        TMN_EMAIL_TRANSPORT="smtp",
        TMN_PLUGIN_CONFIG=json.dumps({"smtp": smtp}),
        TMN_OUTBOX_POLL_SECONDS="0.2",
        TMN_OUTBOX_LEASE_SECONDS="300",
        TMN_OUTBOX_BACKOFF_SECONDS="60",
    )
    engine = create_engine(Settings(database_url=shutdown_db), poolclass=NullPool)
    sessionmaker = create_sessionmaker(engine)
    subjects = {f"Inbjudan {i}" for i in range(6)}
    async with sessionmaker() as session:
        outbox = OutboxService(context(session), Settings(database_url=shutdown_db))
        for subject in sorted(subjects):
            await outbox.enqueue_email(to="ombud@ombud.example", subject=subject, text="Hej!")
        await session.commit()

    async def rows() -> list[OutboxMessage]:
        async with sessionmaker() as session:
            return list(await session.scalars(select(OutboxMessage)))

    log_path = tmp_path / "worker.log"
    worker = start_worker(env, tmp_path, log_path)
    try:
        assert await asyncio.to_thread(relay.started.wait, 30), log_path.read_text()
        # The worker holds the whole batch, leased to it, while the relay takes its time.
        claimed = await rows()
        assert all(m.locked_by and m.locked_until for m in claimed), [
            (m.locked_by, m.status) for m in claimed
        ]
        worker.send_signal(signal.SIGTERM)
        await asyncio.sleep(1.0)
        assert worker.poll() is None, "the worker quit in the middle of its batch"
        if relay_answers:
            relay.release.set()
        returncode = await asyncio.to_thread(worker.wait, 20)
        assert returncode == 0, log_path.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
        relay.release.set()
        relay.controller.stop()

    messages = await rows()
    await engine.dispose()
    assert {m.subject for m in messages} == subjects
    # Nothing stays claimed: no lease, no owner; each message was tried exactly once.
    assert all(m.locked_by is None and m.locked_until is None and m.attempts == 1 for m in messages)
    if relay_answers:
        assert {m.status for m in messages} == {OutboxStatus.SENT}
        assert sorted(str(m["Subject"]) for m in relay.messages) == sorted(subjects)  # each once
    else:
        # Handed back: pending again, retried after the backoff by this or another worker.
        assert {m.status for m in messages} == {OutboxStatus.PENDING}
        assert all(m.last_error and m.next_attempt_at > m.created_at for m in messages)
    assert "Traceback" not in log_path.read_text()
    assert os.path.exists(log_path)
