"""Faults, with real processes: the mail relay down and up again, and a directory source that
hangs while people use the API."""

from __future__ import annotations

import json
import mailbox
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import select

from service.outbox.models import OutboxMessage, OutboxStatus
from service.outbox.service import OutboxService
from service.seed import demo_key
from tests.helpers import context
from tests.smtp_server import free_port
from tests.test_cli import TMN, _free_port
from tests.test_email import mail_settings, worker_for


def start_relay(port: int, maildir: Path) -> subprocess.Popen[bytes]:
    """aiosmtpd as its own process, keeping what it receives in a Maildir."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "aiosmtpd.handlers.Mailbox",
            str(maildir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with __import__("socket").create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("the relay did not start")


async def test_the_relay_down_and_up_again_loses_nothing(session, settings, tmp_path: Path) -> None:
    port = free_port()
    settings = msgspec.structs.replace(mail_settings(settings, port), outbox_backoff_seconds=0.0)
    outbox = OutboxService(context(session), settings)
    for i in range(20):
        await outbox.enqueue_email(to=f"ombud{i}@ombud.example", subject=f"Inbjudan {i}", text="Hej!")
    await session.commit()
    worker = worker_for(session, settings)

    # Nobody listens on the port: every attempt fails, nothing is lost, everything waits.
    assert await worker.run_once() == 20
    statuses = {m.status for m in await session.scalars(select(OutboxMessage))}
    assert statuses == {OutboxStatus.PENDING}

    relay = start_relay(port, tmp_path / "maildir")
    try:
        while await worker.run_once():
            pass
    finally:
        relay.terminate()
        relay.wait(timeout=10)
    received = sorted(str(m["Subject"]) for m in mailbox.Maildir(tmp_path / "maildir", create=False))
    assert received == sorted(f"Inbjudan {i}" for i in range(20))  # each once
    session.expire_all()
    assert {m.status for m in await session.scalars(select(OutboxMessage))} == {OutboxStatus.SENT}


class Hanging:
    """A contact source that answers after `delay` seconds."""

    def __init__(self, delay: float) -> None:
        release = self.release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                release.wait(delay)
                body = b"[]"
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/contacts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


@pytest.fixture
def hanging_server(tmp_path: Path) -> Iterator[tuple[str, Hanging]]:
    source = Hanging(delay=30.0)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMN_")}
    env.update(
        TMN_DATA_DIR=str(tmp_path / "data"),
        TMN_PLUGIN_TIMEOUT_SECONDS="2",
        TMN_PLUGIN_CONFIG=json.dumps({"http_directory": {"url": source.url}}),
        TMN_RATE_LIMIT_PER_MINUTE="0",
    )
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [str(TMN), "serve", "--demo", "--port", str(port)], cwd=tmp_path, env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{base}/health/live", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.2)
        yield base, source
    finally:
        process.terminate()
        process.wait(timeout=30)
        source.close()
        log.close()


def test_a_hanging_source_costs_only_its_own_answer(hanging_server: tuple[str, Hanging]) -> None:
    base, _ = hanging_server
    headers = {"Authorization": f"Bearer {demo_key('demoadmn')}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as api:
        before = _latencies(api, 20)
        answer: dict[str, Any] = {}

        def contacts() -> None:
            started = time.perf_counter()
            response = api.get("/v1/municipalities/2560/contacts")
            answer.update(
                status=response.status_code, body=response.json(), seconds=time.perf_counter() - started
            )

        waiting = threading.Thread(target=contacts)
        waiting.start()
        time.sleep(0.3)  # the contacts request is now waiting on the hanging source
        during = _latencies(api, 20)
        waiting.join(timeout=30)
    # The source is cut off at the plugin timeout (2 s); the answer names it and still comes.
    assert answer["status"] == 200 and "http_directory" in answer["body"]["failed_sources"]
    assert 1.5 < answer["seconds"] < 6
    assert any(c["phone"] == "112" for c in answer["body"]["contacts"])
    # Everyone else is served as before: no request waits for the hanging source.
    assert max(during) < 1.0 and sorted(during)[len(during) // 2] < 3 * max(
        sorted(before)[len(before) // 2], 0.02
    )


def _latencies(api: httpx.Client, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        assert api.get("/v1/counties").status_code == 200
        out.append(time.perf_counter() - started)
    return out
