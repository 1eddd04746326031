"""Bearer authentication: an API key (`tmn_…`) or an identity provider's signed token (JWT).

Every route requires a principal except those marked public (health, docs, problem types);
every failure is the same 401 problem, with a reason that is safe to show.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from service.api_keys.service import ApiKeyCache, ApiKeyService, AuthError, VerifiedKey, hash_key
from service.auth.principal import Principal
from service.context import Context
from service.problems import Problem

PUBLIC_PATHS = ["^/health/", "^/docs", "^/problems", "^/metrics"]


class TokenVerifier(Protocol):
    @property
    def enabled(self) -> bool: ...

    async def verify(self, token: str) -> Principal: ...


def unauthorized(reason: str) -> Problem:
    return Problem(
        "unauthorized",
        f"authentication failed: {reason}",
        headers={
            "WWW-Authenticate": f'Bearer realm="tmn", error="invalid_token", error_description="{reason}"'
        },
    )


async def principal_for(state: Any, token: str) -> Principal:
    """The principal of a credential (an API key or an identity provider's token), or the 401
    problem; also what the dashboard's sign-in checks its cookie with."""
    if token.startswith("tmn_"):
        return await BearerAuthenticationMiddleware._api_key(state, token)
    if token.count(".") == 2:
        verifier: TokenVerifier | None = state.get("oidc")
        if verifier is None or not verifier.enabled:
            raise unauthorized("tokens from an identity provider are not configured")
        try:
            return await verifier.verify(token)
        except Exception as exc:
            raise unauthorized(str(getattr(exc, "reason", "invalid token"))) from None
    raise unauthorized("malformed credential")


class BearerAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get("authorization")
        if not header:
            raise Problem(
                "unauthorized",
                "send Authorization: Bearer <API key or token>",
                headers={"WWW-Authenticate": 'Bearer realm="tmn"'},
            )
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("not a bearer credential")
        principal = await principal_for(connection.app.state, token)
        return AuthenticationResult(user=principal, auth=None)

    @staticmethod
    async def _api_key(state: Any, token: str) -> Principal:
        cache: ApiKeyCache | None = state.get("api_key_cache")
        if cache is None:
            cache = state.api_key_cache = ApiKeyCache(state.settings.api_key_cache_seconds)
        if not cache.enabled:
            return (await _verify(state, token)).principal
        digest = hash_key(token)
        principal = cache.get(digest)
        if principal is not None:
            return principal
        # One database check per key at a time, in a task of its own (a request that goes away
        # does not cancel it): the requests that arrive meanwhile wait for its answer.
        checks: dict[str, asyncio.Task[VerifiedKey]] = state.setdefault("api_key_checks", {})
        check = checks.get(digest)
        if check is None:
            check = asyncio.ensure_future(_verify_and_cache(state, token, cache, digest, cache.epoch))
            checks[digest] = check
            check.add_done_callback(lambda done: _check_done(checks, digest, done))
        return (await asyncio.shield(check)).principal


def _check_done(
    checks: dict[str, asyncio.Task[VerifiedKey]], digest: str, done: asyncio.Task[VerifiedKey]
) -> None:
    if checks.get(digest) is done:
        del checks[digest]
    if not done.cancelled():
        done.exception()  # retrieved, so a failure nobody waited for is not reported as lost


async def _verify_and_cache(
    state: Any, token: str, cache: ApiKeyCache, digest: str, epoch: int
) -> VerifiedKey:
    verified = await _verify(state, token)
    cache.put(digest, verified, epoch)
    return verified


async def _verify(state: Any, token: str) -> VerifiedKey:
    # Its own short transaction: last_used_at is kept even when the request itself fails.
    async with state.sessionmaker() as session:
        try:
            verified = await ApiKeyService(Context(session, Principal.system())).verify(token)
        except AuthError as exc:
            raise unauthorized(exc.reason) from None
        await session.commit()
    return verified
