# ruff: noqa: T201
"""E-mail fan-out: how fast does the outbox deliver N invitations, next to bare aiosmtplib?

    .venv/bin/python bench/email_fanout.py [--messages 1000] [--db postgresql|sqlite]

A counting SMTP server (aiosmtpd) runs on loopback. The baseline sends N messages, built by
`service.outbox.mime.build_mime`, over one reused aiosmtplib connection. TMN then queues the same
N messages in one transaction (`OutboxService.enqueue_email`) in a freshly migrated database and
the outbox worker drains them through the `smtp` transport (`run_once` until it returns 0).

PostgreSQL (the default) uses a uniquely named database created on TEST_DATABASE_URL (or
postgresql+asyncpg://postgres@127.0.0.1:5432/postgres) and dropped afterwards; `--db sqlite` uses
a temporary file. The run fails (exit 1) unless the server received exactly N messages for each
run, N distinct Message-IDs (the outbox's own) for TMN, and every outbox row ended 'sent'.
The goal (drain ≤ 10 s and ≤ 2× the baseline) is reported; `--fail-on-goal` also exits 2 on a miss.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import platform
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg
import structlog
from _database import create_database, drop_database, pg_dsn
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.auth.principal import Principal
from service.context import Context
from service.db import create_engine, create_sessionmaker
from service.migrate import upgrade
from service.outbox.mime import build_mime
from service.outbox.models import OutboxMessage
from service.outbox.service import OutboxService, OutboxWorker, message_domain
from service.pluginhost import PluginHost
from service.pluginspec import OutgoingEmail
from service.settings import Settings

GOAL_SECONDS = 10.0
GOAL_RATIO = 2.0
BATCH_SIZE = 100
CONCURRENCY = 2
EMAIL_FROM = "TMN Älvsbyn <tmn@alvsbyn.example>"


# --- the counting SMTP server -------------------------------------------------------------------


class CountingHandler:
    """An aiosmtpd handler that keeps nothing but a count and the Message-IDs it saw."""

    def __init__(self) -> None:
        self.count = 0
        self.ids: set[str] = set()
        self._parser = BytesHeaderParser(policy=compat32)

    def reset(self) -> None:
        self.count = 0
        self.ids = set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        headers = self._parser.parsebytes(envelope.content)
        self.count += 1
        self.ids.add(str(headers.get("Message-ID", "")).strip())
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the messages ---------------------------------------------------------------------------------

MUNICIPALITIES = ["Älvsbyn", "Piteå", "Luleå", "Boden", "Kiruna", "Gällivare", "Haparanda", "Kalix"]


@dataclass(frozen=True)
class Draft:
    to: str
    subject: str
    text: str
    html: str


def drafts(n: int) -> list[Draft]:
    """N invitation-like messages (a few hundred bytes each of text and HTML), deterministic."""
    out = []
    for i in range(n):
        place = MUNICIPALITIES[i % len(MUNICIPALITIES)]
        day = 1 + i % 28
        link = f"https://tmn.example/v1/invitations/{uuid.UUID(int=i + 1).hex}"
        subject = f"Inbjudan: nätverksträff Tillsammans mot nätdroger i {place} den {day} mars"
        text_body = (
            f"Hej deltagare {i}!\n\n"
            f"Du är inbjuden till nätverksträffen för Tillsammans mot nätdroger i {place} "
            f"den {day} mars kl. 13.00–16.00. Vi går igenom lägesbilden, delar erfarenheter från "
            "kommunernas arbete och planerar nästa kvartals insatser.\n\n"
            f"Svara senast en vecka före träffen: {link}\n\n"
            "Välkommen!\nSamordnaren för Tillsammans mot nätdroger\n"
        )
        html_body = (
            f"<p>Hej deltagare {i}!</p>"
            f"<p>Du är inbjuden till nätverksträffen för <b>Tillsammans mot nätdroger</b> i {place} "
            f"den {day} mars kl. 13.00–16.00. Vi går igenom lägesbilden, delar erfarenheter från "
            "kommunernas arbete och planerar nästa kvartals insatser.</p>"
            f'<p><a href="{link}">Svara på inbjudan</a> senast en vecka före träffen.</p>'
            "<p>Välkommen!<br>Samordnaren för Tillsammans mot nätdroger</p>"
        )
        out.append(Draft(f"deltagare{i}@ombud.example", subject, text_body, html_body))
    return out


# --- the two runs ---------------------------------------------------------------------------------


@dataclass
class Figures:
    baseline_s: float = math.nan
    baseline_received: int = 0
    baseline_distinct: int = 0
    enqueue_s: float = math.nan
    drain_s: float = math.nan
    batches: int = 0
    attempted: int = 0
    tmn_received: int = 0
    tmn_distinct: int = 0
    tmn_ids_match: bool = False
    statuses: dict[str, int] = field(default_factory=dict)


async def baseline(port: int, mail: list[Draft]) -> float:
    """Bare aiosmtplib: one connection, the same MIME (built inside the timed loop, as the
    transport does), one message after the other."""
    domain = message_domain(Settings(email_from=EMAIL_FROM))
    outgoing = [
        OutgoingEmail(
            message_id=f"<{uuid.uuid4()}@{domain}>",
            sender=EMAIL_FROM,
            to=d.to,
            subject=d.subject,
            text=d.text,
            html=d.html,
        )
        for d in mail
    ]
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
    started = time.perf_counter()
    await client.connect()
    try:
        for message in outgoing:
            await client.send_message(build_mime(message))
    finally:
        if client.is_connected:
            await client.quit()
    return time.perf_counter() - started


async def tmn_run(settings: Settings, mail: list[Draft], figures: Figures) -> set[str]:
    """Migrate, enqueue in one transaction, drain with the worker; returns the outbox's Message-IDs."""
    engine: AsyncEngine = create_engine(settings)
    try:
        await upgrade(engine)
        maker = create_sessionmaker(engine)

        started = time.perf_counter()
        async with maker() as session:
            service = OutboxService(Context(session, Principal.system()), settings)
            for d in mail:
                await service.enqueue_email(to=d.to, subject=d.subject, text=d.text, html=d.html)
            await session.commit()
        figures.enqueue_s = time.perf_counter() - started

        worker = OutboxWorker(maker, PluginHost(settings), settings)

        async def drain() -> None:
            while attempted := await worker.run_once():
                figures.batches += 1
                figures.attempted += attempted

        started = time.perf_counter()
        await drain()
        figures.drain_s = time.perf_counter() - started

        async with maker() as session:
            rows = await session.execute(
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
            )
            figures.statuses = {status.value: count for status, count in rows.all()}
            return set(await session.scalars(select(OutboxMessage.message_id)))
    finally:
        await engine.dispose()


# --- databases ------------------------------------------------------------------------------------


async def create_pg_database() -> tuple[str, str, str]:
    """(name, SQLAlchemy URL, server version) of a new, empty PostgreSQL database."""
    conn = await asyncpg.connect(pg_dsn(), timeout=10)
    try:
        version = str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()
    name, url = await create_database("tmn_bench_fanout")
    return name, url, version


async def sqlite_version(url: str) -> str:
    engine = create_engine(Settings(database_url=url))
    try:
        async with engine.connect() as conn:
            return str((await conn.execute(text("select sqlite_version()"))).scalar_one())
    finally:
        await engine.dispose()


# --- the report -----------------------------------------------------------------------------------


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:9.0f}" if seconds > 0 and not math.isnan(seconds) else f"{'-':>9}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(n: int, database: str, f: Figures, problems: list[str]) -> bool:
    """Prints the table; returns whether both goals were met."""
    ratio = f.drain_s / f.baseline_s if f.baseline_s > 0 else math.nan
    under_seconds = f.drain_s <= GOAL_SECONDS
    under_ratio = ratio <= GOAL_RATIO
    rows = [
        ("baseline: aiosmtplib, 1 connection", f.baseline_s),
        (f"TMN drain: worker, smtp x{CONCURRENCY}, batch {BATCH_SIZE}", f.drain_s),
        ("TMN enqueue: 1 transaction", f.enqueue_s),
        ("TMN enqueue + drain", f.enqueue_s + f.drain_s),
    ]
    print()
    print(f"E-mail fan-out, {n} messages, {database}")
    print(
        f"machine: Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{os.cpu_count()} CPUs, {platform.platform()}; aiosmtplib {aiosmtplib.__version__}"
    )
    print()
    print(f"{'':44} {'seconds':>9} {'msg/s':>9}")
    for label, seconds in rows:
        print(f"{label:44} {seconds:9.3f} {rate(n, seconds)}")
    print(f"{'ratio TMN drain / baseline':44} {ratio:8.2f}x")
    print()
    print(f"goal: drain <= {GOAL_SECONDS:g} s{'':27} {verdict(under_seconds)}  ({f.drain_s:.2f} s)")
    print(f"goal: drain <= {GOAL_RATIO:g}x baseline{'':20} {verdict(under_ratio)}  ({ratio:.2f}x)")
    print()
    print(
        f"verify: baseline received {f.baseline_received}/{n}; TMN received {f.tmn_received}/{n}, "
        f"{f.tmn_distinct} distinct Message-IDs (the outbox's: {'yes' if f.tmn_ids_match else 'NO'}), "
        f"{f.attempted} attempted in {f.batches} batches; outbox rows {f.statuses}"
    )
    print("verification: " + ("OK" if not problems else "FAILED: " + "; ".join(problems)))
    return under_seconds and under_ratio


def check(n: int, f: Figures) -> list[str]:
    problems = []
    if f.baseline_received != n or f.baseline_distinct != n:
        problems.append(
            f"baseline: server got {f.baseline_received} ({f.baseline_distinct} distinct), not {n}"
        )
    if f.tmn_received != n:
        problems.append(f"TMN: server got {f.tmn_received} messages, not {n}")
    if f.tmn_distinct != n or not f.tmn_ids_match:
        problems.append(f"TMN: {f.tmn_distinct} distinct Message-IDs, not the outbox's {n}")
    if f.statuses != {"sent": n}:
        problems.append(f"TMN: outbox rows are {f.statuses}, not {{'sent': {n}}}")
    return problems


# --- main -----------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> int:
    n: int = args.messages
    mail = drafts(n)
    figures = Figures()
    handler = CountingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    pg_name: str | None = None
    tmp = tempfile.TemporaryDirectory(prefix="tmn-bench-")
    controller.start()
    try:
        async with asyncio.timeout(args.timeout):
            figures.baseline_s = await baseline(port, mail)
        figures.baseline_received, figures.baseline_distinct = handler.count, len(handler.ids)
        handler.reset()

        if args.db == "postgresql":
            pg_name, url, version = await create_pg_database()
            database = f"PostgreSQL {version} (database {pg_name}, dropped afterwards)"
        else:
            url = f"sqlite+aiosqlite:///{Path(tmp.name) / 'bench.sqlite3'}"
            database = f"SQLite {await sqlite_version(url)} (temporary file)"
        settings = Settings(
            database_url=url,
            email_transport="smtp",
            email_from=EMAIL_FROM,
            plugin_config=json.dumps(
                {
                    "smtp": {
                        "host": "127.0.0.1",
                        "port": port,
                        "timeout_seconds": 10,
                        "concurrency": CONCURRENCY,
                    }
                }
            ),
            outbox_batch_size=BATCH_SIZE,
            outbox_backoff_seconds=60.0,
        )
        async with asyncio.timeout(args.timeout):
            outbox_ids = await tmn_run(settings, mail, figures)
        figures.tmn_received, figures.tmn_distinct = handler.count, len(handler.ids)
        figures.tmn_ids_match = handler.ids == outbox_ids and len(outbox_ids) == n
    except TimeoutError:
        print(f"gave up: a run took longer than {args.timeout:g} s (--timeout)", file=sys.stderr)
        return 1
    finally:
        controller.stop()
        try:
            if pg_name is not None:
                await drop_database(pg_name)
        finally:
            tmp.cleanup()

    problems = check(n, figures)
    goals_met = report(n, database, figures, problems)
    if problems:
        return 1
    if args.fail_on_goal and not goals_met:
        return 2
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=1000, help="how many messages (default 1000)")
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="give up on a run after this many seconds (120)"
    )
    parser.add_argument("--fail-on-goal", action="store_true", help="exit 2 when a goal is missed")
    args = parser.parse_args(argv)
    if args.messages < 1:
        parser.error("--messages must be at least 1")
    return args


if __name__ == "__main__":
    # The worker logs a line per batch at INFO; keep only warnings (a failing transport) visible.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    sys.exit(asyncio.run(main(parse_args())))
