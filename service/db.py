"""Engine and session configuration, the declarative bases and the schema's metadata.

Transactions follow a unit-of-work rule: services never commit. The caller that owns the
unit (the request's session dependency, a CLI command, the worker) commits once at the
end, so every write request is exactly one transaction.
"""

from __future__ import annotations

import enum
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from advanced_alchemy.base import DefaultBase, UUIDv7AuditBase, orm_registry
from sqlalchemy import ColumnElement, Integer, MetaData, String, event
from sqlalchemy import Enum as SAEnum
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, declared_attr, mapped_column
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.functions import FunctionElement

from service.settings import Settings

metadata: MetaData = orm_registry.metadata


class NaturalKeyBase(DefaultBase):
    """Base for tables keyed by their own columns (codes, association rows)."""

    __abstract__ = True


class EntityBase(UUIDv7AuditBase):
    """Base for domain entities: UUIDv7 key, created/updated timestamps, a version for ETags.

    The version is SQLAlchemy's optimistic-concurrency counter: an UPDATE that lost a race
    raises StaleDataError instead of silently overwriting.
    """

    __abstract__ = True

    version: Mapped[int] = mapped_column(Integer, nullable=False)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.version}


def enum_type(enum_cls: type[enum.StrEnum]) -> SAEnum:
    """A StrEnum stored by value as VARCHAR: portable, and new members need no ALTER TYPE."""
    return SAEnum(
        enum_cls,
        native_enum=False,
        create_constraint=False,
        length=40,
        values_callable=lambda members: [m.value for m in members],
    )


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_sqlite_url(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


DB_CONNECT_TIMEOUT_SECONDS = 5.0

# SQLSTATEs that mean "the database is not there right now", not "the statement is wrong":
# class 08 (connection exception), 57P01-57P03 (admin or crash shutdown, cannot connect now: the
# server is stopping or starting) and 53300 (too many connections).
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached or lost the connection (it restarts,
    it is down, the pool is exhausted), as opposed to an error in what was asked of it. Looks
    through SQLAlchemy's wrapper and the exceptions' causes: asyncpg's errors arrive wrapped when
    a statement fails and raw when a connection attempt fails."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen or len(seen) > 20:
            continue
        seen.add(id(current))
        if isinstance(current, OperationalError) and type(current.orig).__module__ == "sqlite3":
            # SQLite says OperationalError for a bad statement too ("no such table"); only a
            # busy or missing database file is "unavailable" there.
            return any(w in str(current.orig) for w in ("locked", "busy", "unable to open"))
        if isinstance(current, (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError)):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, (ConnectionError, TimeoutError, socket.gaierror)):
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and (sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES):
            return True
        # asyncpg's InterfaceError: "connection is closed", "connection was closed in the middle
        # of operation" (by name, so this module does not import the driver).
        if type(current).__name__ == "InterfaceError" and type(current).__module__.startswith("asyncpg"):
            return True
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return False


def create_engine(settings: Settings, *, poolclass: Any = None) -> AsyncEngine:
    url = settings.effective_database_url
    if is_sqlite_url(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url, echo=settings.db_echo, hide_parameters=True, poolclass=poolclass or NullPool
        )
        _configure_sqlite(engine)
        return engine
    # hide_parameters: bound values (names, e-mails) never reach logs or exception texts.
    # `timeout` bounds a connection attempt (asyncpg's default is 60 s), so a database host that
    # does not answer costs a request seconds (a 503) rather than a minute. Pooled connections
    # are checked before use when they have been idle (see _ping_idle_connections).
    kwargs: dict[str, Any] = {
        "echo": settings.db_echo,
        "hide_parameters": True,
        # JIT compiling pays off for long analytic scans, not for an API's short queries: on the
        # reports it cost more than the query itself (bench/reports.py), so it is off.
        "connect_args": {"timeout": DB_CONNECT_TIMEOUT_SECONDS, "server_settings": {"jit": "off"}},
    }
    if poolclass is not None:
        kwargs["poolclass"] = poolclass
    else:
        kwargs["pool_size"] = settings.db_pool_size
    engine = create_async_engine(url, **kwargs)
    _ping_idle_connections(engine)
    return engine


# A connection back in the pool for longer than this is checked before it is used again.
IDLE_PING_SECONDS = 1.0


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """SQLAlchemy's pool_pre_ping checks every checkout, and on asyncpg a check is three round
    trips (BEGIN, a ping, ROLLBACK): an eighth of a fast request (bench/api.py). Connections in
    steady use need no check: the ones left idle do (after PostgreSQL restarts, every pooled one
    is idle for the gap), so only they are pinged, and a dead one is replaced on the spot. One
    in use when the database goes away fails its request (a 503) and is discarded."""

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["tmn_checked_in"] = time.monotonic()

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("tmn_checked_in")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:  # the pool retries the checkout with a new connection
            raise DisconnectionError("an idle pooled connection did not answer") from exc


def _configure_sqlite(engine: AsyncEngine) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINT and delays BEGIN; take it over,
    # as SQLAlchemy's SQLite notes recommend, so rollbacks (and the test savepoints) are real.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()
        # SQLite's lower() folds ASCII only; searches for "älv" must find "Älvsbyn".
        dbapi_connection.create_function("tmn_fold", 1, _fold, deterministic=True)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")


def _fold(value: str | None) -> str | None:
    return value.casefold() if value is not None else None


class fold(FunctionElement[str]):
    """Case-insensitive form of a text column: lower() on PostgreSQL, casefold on SQLite."""

    type = String()
    inherit_cache = True


@compiles(fold)
def _fold_default(element: fold, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(fold, "sqlite")
def _fold_sqlite(element: fold, compiler: Any, **kw: Any) -> str:
    return f"tmn_fold({compiler.process(element.clauses, **kw)})"


def contains_folded(column: Any, text: str) -> ColumnElement[bool]:
    """`column` contains `text`, ignoring case, with LIKE wildcards in `text` taken literally."""
    return fold(column).contains(text.casefold(), autoescape=True)


def create_sessionmaker(bind: Any, **kwargs: Any) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(bind=bind, expire_on_commit=False, autoflush=False, **kwargs)


def migrations_dir() -> Path:
    """The Alembic script directory: the repository's migrations/, or the copy in a wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "migrations", here / "_migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise FileNotFoundError("migrations directory not found")
