"""Bearer authentication: an API key (`tmn_…`) or an identity provider's signed token (JWT).

Every route requires a principal except those marked public (health, docs, problem types);
every failure is the same 401 problem, with a reason that is safe to show.
"""

from __future__ import annotations

from typing import Any, Protocol

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from service.api_keys.service import ApiKeyService, AuthError
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
        state = connection.app.state
        if token.startswith("tmn_"):
            principal = await self._api_key(state, token)
        elif token.count(".") == 2:
            verifier: TokenVerifier | None = state.get("oidc")
            if verifier is None or not verifier.enabled:
                raise unauthorized("tokens from an identity provider are not configured")
            try:
                principal = await verifier.verify(token)
            except Exception as exc:
                raise unauthorized(str(getattr(exc, "reason", "invalid token"))) from None
        else:
            raise unauthorized("malformed credential")
        return AuthenticationResult(user=principal, auth=None)

    @staticmethod
    async def _api_key(state: Any, token: str) -> Principal:
        # Its own short transaction: last_used_at is kept even when the request itself fails.
        async with state.sessionmaker() as session:
            try:
                principal = await ApiKeyService(Context(session, Principal.system())).authenticate(token)
            except AuthError as exc:
                raise unauthorized(exc.reason) from None
            await session.commit()
        return principal
