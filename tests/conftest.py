"""Fixtures: every database test runs on SQLite and on PostgreSQL.

Each backend gets a fresh database per run, built by running the Alembic migrations (so
they are tested too) and seeded with the reference geography. Each test then runs inside
an outer transaction that is rolled back, with the app's sessions joined to it through
savepoints, so a request's commit or rollback behaves as in production.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.pool import NullPool

from service.api_keys.schemas import ApiKeyCreate
from service.api_keys.service import ApiKeyService
from service.app import create_app
from service.auth.principal import Principal, Role
from service.context import Context
from service.db import create_engine, create_sessionmaker
from service.migrate import upgrade
from service.seed import seed
from service.settings import Settings
from tests.smtp_server import SmtpServer

PG_ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"
BACKENDS = ("sqlite", "postgresql")
ADMIN_PREFIX, ADMIN_SECRET = "testadmn", "national-administrator-of-the-tests"
ADMIN_KEY = f"tmn_{ADMIN_PREFIX}_{ADMIN_SECRET}"


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _pg_reachable() -> str | None:
    try:
        conn = await asyncpg.connect(_asyncpg_dsn(PG_ADMIN_URL), timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


_PG_PROBLEM: str | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _PG_PROBLEM
    _PG_PROBLEM = asyncio.run(_pg_reachable())
    if _PG_PROBLEM and IN_CI:
        raise pytest.UsageError(f"CI=true requires PostgreSQL at {PG_ADMIN_URL}: {_PG_PROBLEM}")


def pytest_report_header() -> list[str]:
    state = "reachable" if _PG_PROBLEM is None else f"NOT reachable ({_PG_PROBLEM}); its tests are skipped"
    return [f"PostgreSQL for tests: {make_url(PG_ADMIN_URL).render_as_string()} {state}"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Keep each backend's tests together so its session fixture is built once.
    def backend(item: pytest.Item) -> str:
        callspec = getattr(item, "callspec", None)
        return str(callspec.params.get("backend", "")) if callspec else ""

    items.sort(key=lambda i: BACKENDS.index(backend(i)) if backend(i) in BACKENDS else -1)


class PgDatabases:
    """Creates and drops uniquely named PostgreSQL databases for one test run."""

    def __init__(self) -> None:
        self.created: list[str] = []

    async def create(self) -> str:
        name = f"tmn_test_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(_asyncpg_dsn(PG_ADMIN_URL))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self.created.append(name)
        return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    async def drop_all(self) -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(PG_ADMIN_URL))
        try:
            for name in self.created:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@pytest.fixture(scope="session")
async def pg_databases() -> AsyncIterator[PgDatabases]:
    dbs = PgDatabases()
    yield dbs
    if dbs.created:
        await dbs.drop_all()


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tmn")


async def new_database_url(backend: str, pg_databases: PgDatabases, tmp_root: Path) -> str:
    """An empty database of the given backend (not migrated)."""
    if backend == "postgresql":
        if _PG_PROBLEM is not None:
            pytest.skip(f"PostgreSQL not reachable: {_PG_PROBLEM}")
        return await pg_databases.create()
    return f"sqlite+aiosqlite:///{tmp_root / f'{uuid.uuid4().hex[:12]}.sqlite3'}"


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
async def engine(backend: str, pg_databases: PgDatabases, tmp_root: Path) -> AsyncIterator[AsyncEngine]:
    url = await new_database_url(backend, pg_databases, tmp_root)
    eng = create_engine(Settings(database_url=url), poolclass=NullPool)
    await upgrade(eng)
    async with create_sessionmaker(eng)() as session:
        await seed(session, demo=False)
        admin = ApiKeyCreate(name="tests: national administrator", role=Role.NATIONAL_ADMIN)
        await ApiKeyService(Context(session, Principal.system())).create(
            admin, prefix=ADMIN_PREFIX, secret=ADMIN_SECRET
        )
        await session.commit()
    yield eng
    await eng.dispose()


@pytest.fixture(scope="session")
def credential_key(tmp_root: Path) -> str:
    """One signing key for the run, as production has (TMN_CREDENTIAL_KEY_FILE)."""
    from service.certifications.credentials import IssuerKey

    path = tmp_root / "credential-key.pem"
    if not path.exists():
        path.write_bytes(IssuerKey.generate().to_pem())
    return str(path)


@pytest.fixture
def settings(engine: AsyncEngine, credential_key: str) -> Settings:
    # No rate limit and no worker inside the app by default: the tests of those turn them on.
    return Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        rate_limit_per_minute=0,
        public_rate_limit_per_minute=0,
        worker_in_server="no",
        secret_key="tests-secret-key-for-signed-links",
        credential_key_file=credential_key,
    )


async def _open_transaction(engine: AsyncEngine) -> AsyncConnection:
    conn = await engine.connect()
    await conn.begin()
    return conn


async def _roll_back(conn: AsyncConnection) -> None:
    await conn.rollback()
    await conn.close()


@asynccontextmanager
async def client_for(engine: AsyncEngine, settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """Litestar's async test client on a transaction that is rolled back afterwards.

    The client runs the app on its own event loop (an anyio portal), so the test's
    connection is opened and rolled back on that loop; asyncpg connections are bound to one.
    """
    app = create_app(settings, engine=engine)
    async with AsyncTestClient(app=app) as test_client:
        # Requests act as a national administrator unless a test sends another Authorization.
        test_client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        portal = test_client.blocking_portal
        conn = portal.call(_open_transaction, engine)
        app.state.sessionmaker = create_sessionmaker(conn, join_transaction_mode="create_savepoint")
        try:
            yield test_client
        finally:
            portal.call(_roll_back, conn)


@pytest.fixture
async def client(engine: AsyncEngine, settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with client_for(engine, settings) as test_client:
        yield test_client


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        outer = await conn.begin()
        try:
            yield conn
        finally:
            if outer.is_active:
                await outer.rollback()


@pytest.fixture
async def session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """A session inside the test's transaction, for service-level tests."""
    async with create_sessionmaker(connection, join_transaction_mode="create_savepoint")() as s:
        yield s


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def tmn_logs() -> Iterator[list[str]]:
    """Every line our loggers (`tmn.*`, structlog JSON) write during the test."""
    handler = _Lines()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("tmn")
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback; `smtp.inbox.messages` holds what arrived."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()
