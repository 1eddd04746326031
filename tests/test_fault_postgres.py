"""PostgreSQL restarted while people use the API, with real processes: a private PostgreSQL
cluster made for the test, `tmn serve` on it, and a client that keeps reading and writing while
the cluster stops, stays down for two seconds and starts again.

What must hold: while the database is away every answer is a 503 `service-unavailable` problem
with Retry-After (never a 500, never a hang); /health/ready says the database is down; once it is
back the API answers 2xx again within seconds; and no write is half-done: each organization
created with a 2xx is there with its audit event, and a failed creation left neither.

Needs the PostgreSQL server binaries (initdb, pg_ctl: Debian's /usr/lib/postgresql/*/bin, or on
PATH, or TMN_TEST_PG_BIN) and, when run as root, the `postgres` OS user to run them as. Without
them the test is skipped, except under CI=true, where that is an error.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from service.certifications.credentials import IssuerKey
from service.seed import demo_key
from tests.conftest import IN_CI
from tests.test_cli import TMN, _free_port


def _pg_bin() -> Path | None:
    candidates = [os.environ.get("TMN_TEST_PG_BIN", "")]
    # The newest installed major version first (/usr/lib/postgresql/17/bin before 15).
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(versions, key=lambda p: [int(n) for n in re.findall(r"\d+", p)], reverse=True)
    which = shutil.which("pg_ctl")
    candidates.append(str(Path(which).parent) if which else "")
    for candidate in candidates:
        if candidate and all((Path(candidate) / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(candidate)
    return None


def _missing() -> str | None:
    """Why a private cluster cannot be made here, or None."""
    if _pg_bin() is None:
        return "the PostgreSQL server binaries (initdb, pg_ctl) are not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run PostgreSQL as"
    return None


def require_private_cluster() -> None:
    reason = _missing()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"CI=true needs a private PostgreSQL cluster: {reason}")
    pytest.skip(reason)


class PrivateCluster:
    """A throwaway PostgreSQL cluster in a temporary folder, on its own port, trust auth on
    loopback only; started, stopped and started again by the test, removed at the end."""

    def __init__(self) -> None:
        bindir = _pg_bin()
        assert bindir is not None
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="tmnfault_"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = _free_port()
        self.user: dict[str, Any] = {}
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self.user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/tmn"

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [str(self.bindir / tool), *args],
            check=True,
            cwd=self.root,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **self.user,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=40 -c shared_buffers=16MB"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "-t", "30", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def remove(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def query(self, sql: str, *args: Any) -> list[Any]:
        async def go() -> list[Any]:
            conn = await asyncpg.connect(host="127.0.0.1", port=self.port, user="postgres", database="tmn")
            try:
                return list(await conn.fetch(sql, *args))
            finally:
                await conn.close()

        return asyncio.run(go())


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    require_private_cluster()
    pg = PrivateCluster()
    try:
        pg.start()

        async def create_database() -> None:
            conn = await asyncpg.connect(host="127.0.0.1", port=pg.port, user="postgres", database="postgres")
            try:
                await conn.execute("CREATE DATABASE tmn")
            finally:
                await conn.close()

        asyncio.run(create_database())
        yield pg
    finally:
        pg.remove()


def server_env(url: str, workdir: Path) -> dict[str, str]:
    key = workdir / "credential-key.pem"
    key.write_bytes(IssuerKey.generate().to_pem())
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMN_")}
    env.update(
        TMN_DATABASE_URL=url,
        TMN_SECRET_KEY="fault-tests-secret-key",
        TMN_CREDENTIAL_KEY_FILE=str(key),
        TMN_RATE_LIMIT_PER_MINUTE="0",
        TMN_WORKER_IN_SERVER="no",
        TMN_DB_POOL_SIZE="5",
        TMN_EMAIL_TRANSPORT="file",
        TMN_PLUGIN_CONFIG='{"file": {"directory": "%s"}}' % (workdir / "mail"),
    )
    return env


@dataclass
class Served:
    base: str
    process: subprocess.Popen[bytes]
    log: Path


def start_server(env: dict[str, str], workdir: Path, *args: str) -> Served:
    """`tmn serve` as its own process; returns once /health/ready answers 200."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(TMN), "serve", "--port", str(port), *args],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                return Served(base, process, log_path)
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"server not ready within 60 s:\n{log_path.read_text()}")
        time.sleep(0.2)


def stop_server(served: Served) -> None:
    if served.process.poll() is None:
        served.process.terminate()
        try:
            served.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            served.process.kill()
            served.process.wait(timeout=10)


@dataclass
class Answer:
    kind: str  # "read", "write" or "ready"
    started: float
    ended: float
    status: int | None  # None: no answer within the client's timeout, or the connection failed
    content_type: str = ""
    problem_type: str | None = None
    retry_after: str | None = None
    name: str | None = None  # the organization a write tried to create
    organization_id: str | None = None
    error: str | None = None


def organization(name: str) -> dict[str, Any]:
    return {
        "kind": "pickup_point",
        "name": name,
        "street_address": "Storgatan 12",
        "postal_code": "942 31",
        "city": "Älvsbyn",
        "latitude": 65.6759,
        "longitude": 21.0043,
        "municipality_code": "2560",
    }


class Load:
    """Two client threads: one reads the organization list, one creates organizations (each
    POST is one transaction: the organization and its audit event); and a probe of
    /health/ready. Every answer is recorded with its time."""

    TIMEOUT = 5.0

    def __init__(self, base: str) -> None:
        self.base = base
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(kind,), daemon=True)
            for kind in ("read", "write", "ready")
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2 * self.TIMEOUT)

    def _loop(self, kind: str) -> None:
        headers = {"Authorization": f"Bearer {demo_key('demoadmn')}"}
        # A fresh connection per request, as many clients behind a proxy would have.
        with httpx.Client(base_url=self.base, headers=headers, timeout=self.TIMEOUT) as api:
            n = 0
            while not self._stop.is_set():
                n += 1
                name = f"Fault {kind} {n} {uuid.uuid4().hex[:8]}" if kind == "write" else None
                started = time.monotonic()
                try:
                    if kind == "read":
                        response = api.get("/v1/organizations", params={"limit": 20})
                    elif kind == "write":
                        response = api.post("/v1/organizations", json=organization(name or ""))
                    else:
                        response = api.get("/health/ready")
                except httpx.HTTPError as exc:
                    answer = Answer(
                        kind, started, time.monotonic(), None, name=name, error=type(exc).__name__
                    )
                else:
                    answer = Answer(
                        kind,
                        started,
                        time.monotonic(),
                        response.status_code,
                        response.headers.get("content-type", ""),
                        retry_after=response.headers.get("retry-after"),
                        name=name,
                    )
                    body = _json(response)
                    if response.headers.get("content-type", "").startswith("application/problem+json"):
                        answer.problem_type = body.get("type")
                    elif kind == "write" and response.status_code == 201:
                        answer.organization_id = body.get("id")
                    elif kind == "ready" and response.status_code == 503:
                        answer.problem_type = "ready:" + ",".join(
                            c["name"] for c in body.get("checks", []) if not c["ok"]
                        )
                with self._lock:
                    self.answers.append(answer)
                time.sleep(0.05)

    def since(self, moment: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.started >= moment]


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def test_postgres_restart_under_load(cluster: PrivateCluster, tmp_path: Path) -> None:
    env = server_env(cluster.url, tmp_path)
    migrate = subprocess.run([str(TMN), "migrate"], env=env, cwd=tmp_path, capture_output=True, timeout=120)
    assert migrate.returncode == 0, migrate.stderr.decode()
    served = start_server(env, tmp_path, "--demo")
    try:
        with Load(served.base) as load:
            time.sleep(1.5)
            before = load.since(0)
            cluster.stop("fast")  # terminates every session, in-flight transactions too
            stopped_at = time.monotonic()
            time.sleep(2)
            starting_at = time.monotonic()
            # What was asked and answered while the database was surely down.
            gap = [a for a in load.since(stopped_at) if a.ended <= starting_at]
            cluster.start()  # returns once PostgreSQL accepts connections
            up_at = time.monotonic()
            time.sleep(6)
        after = [a for a in load.answers if a.started >= up_at]
        # The server's error lines, for the assertion messages.
        log = "\n".join(
            line for line in served.log.read_text(errors="replace").splitlines() if '"level": "error"' in line
        )[-6000:]
    finally:
        stop_server(served)

    everything = load.answers
    # Before the restart, everything works.
    assert before and all(a.status is not None and a.status < 300 for a in before), before

    # Nothing hangs and nothing is a 500: every answer is a 2xx or a 503 (the client's timeout
    # is 5 s; a request that took longer has status None and fails here).
    for a in everything:
        assert a.status is not None, f"no answer: {a}\n{log}"
        assert a.status < 300 or a.status == 503, f"{a}\n{log}"
        assert a.ended - a.started < Load.TIMEOUT, a

    # While the database is away: 503 problems that say so, with Retry-After.
    api_gap = [a for a in gap if a.kind != "ready"]
    assert len(api_gap) >= 4, gap
    unavailable = [a for a in everything if a.status == 503 and a.kind != "ready"]
    assert unavailable and {a.kind for a in unavailable} == {"read", "write"}, unavailable
    for a in unavailable:
        assert a.content_type.startswith("application/problem+json"), a
        assert a.problem_type == "/problems/service-unavailable", a
        assert a.retry_after is not None and int(a.retry_after) >= 1, a
    assert all(a.status == 503 for a in api_gap), api_gap
    # The readiness probe reports the database down meanwhile.
    ready_gap = [a for a in gap if a.kind == "ready"]
    assert ready_gap and all(a.status == 503 and "database" in (a.problem_type or "") for a in ready_gap)

    # Back within 5 s: reads, writes and readiness answer 2xx again, and stay so.
    for kind in ("read", "write", "ready"):
        ok = [a for a in after if a.kind == kind and a.status is not None and a.status < 300]
        assert ok, f"no 2xx {kind} after the restart: {after}"
        assert ok[0].ended - up_at < 5, (kind, ok[0], after)
        settled = [a for a in after if a.kind == kind and a.started > ok[0].ended]
        assert settled and all(a.status is not None and a.status < 300 for a in settled), settled

    # No write is half-done: each 201 is there with its audit event; a failed one left nothing.
    writes = [a for a in everything if a.kind == "write"]
    created = {a.name: a.organization_id for a in writes if a.status == 201}
    failed = {a.name for a in writes if a.status != 201}
    assert created and failed, writes
    rows = cluster.query("SELECT id::text, name FROM organization WHERE name LIKE 'Fault %'")
    stored = {r["name"]: r["id"] for r in rows}
    assert set(stored) == set(created), set(stored) ^ set(created)
    assert stored == created
    audited = cluster.query(
        "SELECT entity_id, count(*) AS n FROM audit_event WHERE entity = 'organization' "
        "AND action = 'create' GROUP BY entity_id"
    )
    events = {r["entity_id"]: r["n"] for r in audited}
    for name, ident in created.items():
        assert events.get(ident) == 1, (name, ident)
    assert not failed & set(stored)
    orphans = cluster.query(
        "SELECT count(*) AS n FROM audit_event a WHERE entity = 'organization' "
        "AND NOT EXISTS (SELECT 1 FROM organization o WHERE o.id::text = a.entity_id)"
    )
    assert orphans[0]["n"] == 0


def test_what_counts_as_the_database_being_away() -> None:
    """The classification behind the 503s, without a server: connection-level failures (raw from
    a connection attempt, or wrapped by SQLAlchemy) are; errors in what was asked are not."""
    import sqlite3

    from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from service.db import database_unavailable

    class Adapted(Exception):  # how SQLAlchemy's asyncpg adapter carries the SQLSTATE
        def __init__(self, sqlstate: str) -> None:
            super().__init__(sqlstate)
            self.sqlstate = sqlstate

    away = [
        ConnectionRefusedError(111, "refused"),
        ConnectionResetError(),
        TimeoutError(),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.TooManyConnectionsError("too many clients"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("connection is closed"),
        DBAPIError("SELECT 1", {}, Adapted("57P01")),  # terminating connection (admin shutdown)
        OperationalError("SELECT 1", {}, Exception("server closed the connection")),
        PoolTimeout("QueuePool limit reached"),
        OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked")),
    ]
    there = [
        ValueError("bad"),
        IntegrityError("INSERT", {}, Adapted("23505")),
        ProgrammingError("SELECT", {}, Adapted("42P01")),
        asyncpg.UniqueViolationError("duplicate key"),
        OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: organization")),
    ]
    assert [e for e in away if not database_unavailable(e)] == []
    assert [e for e in there if database_unavailable(e)] == []
    # A cause further down the chain counts too (an error raised while handling a lost connection).
    wrapped = RuntimeError("while reading")
    wrapped.__cause__ = ConnectionResetError()
    assert database_unavailable(wrapped)
