"""Dependencies injected into every controller: the session, the principal, the context."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias, cast

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.types import ASGIApp, Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncSession

from service import events
from service.auth.principal import Principal
from service.context import Context
from service.db import utcnow
from service.problems import Problem

# Where a request's scope lists the sessions provide_db_session opened (see release_sessions).
SESSIONS_KEY = "tmn_db_sessions"


async def provide_db_session(state: State, scope: Scope) -> AsyncGenerator[AsyncSession, None]:
    """One session and one transaction per request: committed when the handler succeeds,
    rolled back when anything raises, so a failed write leaves nothing half-written."""
    async with state.sessionmaker() as session:
        scope.setdefault(SESSIONS_KEY, []).append(session)  # type: ignore[misc]
        try:
            yield session
        except BaseException:
            await session.rollback()
            events.discard(session)
            raise
        else:
            # A request that read nothing through the session (the pickup-point list reads on a
            # connection of its own) has no transaction to commit: skip the empty one.
            if session.in_transaction():
                await session.commit()
            events.dispatch_committed(session, state.plugins)


def release_sessions(app: ASGIApp) -> ASGIApp:
    """Give back the session a request left open. When a dependency raises after the session's
    was resolved (a report's filter names an unknown county), Litestar never runs the session
    generator's cleanup: its connection stays checked out, in its transaction, until the garbage
    collector happens to finalise the generator (under load within moments; in the test suite,
    where every session shares one connection, its savepoint was rolled back under a later
    request's). Sessions closed as usual are skipped; one still in a transaction is rolled back
    and closed as soon as the request is answered."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await app(scope, receive, send)
        finally:
            sessions = cast("list[AsyncSession]", scope.get(SESSIONS_KEY, []))
            for session in sessions:
                if session.in_transaction():
                    events.discard(session)
                    await session.close()

    return middleware


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    principal = request.scope.get("user")
    if not isinstance(principal, Principal):
        # Only public routes run without a principal, and they ask for none.
        raise Problem("unauthorized", "this route needs a principal")
    return principal


def provide_context(
    request: Request[Any, Any, Any],
    db_session: NamedDependency[AsyncSession],
    principal: NamedDependency[Principal],
) -> Context:
    return context_for(request, db_session, principal)


def context_for(request: Request[Any, Any, Any], db_session: AsyncSession, principal: Principal) -> Context:
    """The context of a request on a session: what provide_context gives, for a handler that
    opens its own read-only session (the pickup-point list, where the dependency machinery of a
    per-request session and transaction costs a measurable share of the request)."""
    request_id = str(request.scope.get("tmn_request_id") or "")
    # The audit recorder reads who is acting from the session (see service/audit/recorder.py).
    db_session.info["principal_id"] = principal.id
    db_session.info["request_id"] = request_id or None
    clock = request.app.state.get("clock") or utcnow
    if request_id:
        return Context(session=db_session, principal=principal, request_id=request_id, clock=clock)
    return Context(session=db_session, principal=principal, clock=clock)


@asynccontextmanager
async def read_context(request: Request[Any, Any, Any]) -> AsyncIterator[Context]:
    """A context on a session of its own that commits nothing: for read-only handlers on the hot
    path. The principal is the authenticated one, as provide_principal gives it."""
    async with request.app.state.sessionmaker() as session:
        yield context_for(request, session, provide_principal(request))


# How controllers ask for the context: `ctx: RequestContext`.
RequestContext: TypeAlias = NamedDependency[Context]
