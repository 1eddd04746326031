"""Dependencies injected into every controller: the session, the principal, the context."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, TypeAlias

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from service import events
from service.auth.principal import Principal
from service.context import Context
from service.db import utcnow
from service.problems import Problem


async def provide_db_session(state: State) -> AsyncGenerator[AsyncSession, None]:
    """One session and one transaction per request: committed when the handler succeeds,
    rolled back when anything raises, so a failed write leaves nothing half-written."""
    async with state.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            events.discard(session)
            raise
        else:
            await session.commit()
            events.dispatch_committed(session, state.plugins)


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
    request_id = str(request.scope.get("tmn_request_id") or "")
    # The audit recorder reads who is acting from the session (see service/audit/recorder.py).
    db_session.info["principal_id"] = principal.id
    db_session.info["request_id"] = request_id or None
    clock = request.app.state.get("clock") or utcnow
    if request_id:
        return Context(session=db_session, principal=principal, request_id=request_id, clock=clock)
    return Context(session=db_session, principal=principal, clock=clock)


# How controllers ask for the context: `ctx: RequestContext`.
RequestContext: TypeAlias = NamedDependency[Context]
