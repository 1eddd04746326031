"""OIDC: turning an identity provider's signed token into a Principal.

People sign in through their municipality's identity provider, which signs a JWT with one of
the keys it publishes as a JWKS (`TMN_OIDC_JWKS_URL`). `OidcVerifier.verify` checks the
signature, issuer, audience and lifetime, and builds the Principal from the role and scope
claims. Nothing else from the token is kept: a person's name or e-mail never enters the
principal, and a `TokenError` carries only a short fixed reason, never the token or a claim.

Keys are cached for `oidc_jwks_cache_seconds`. A token naming an unknown `kid` (the provider
rotated its keys) refetches the JWKS, but no fetch happens more often than once per
`refetch_interval` seconds, so a stream of forged tokens cannot hammer the provider. A failed
fetch keeps the previously cached keys usable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Final, Literal

import httpx
import jwt
import msgspec
import structlog
from jwt.exceptions import (
    DecodeError,
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuedAtError,
    InvalidIssuerError,
    InvalidKeyError,
    InvalidSignatureError,
    InvalidSubjectError,
    MissingRequiredClaimError,
    PyJWTError,
)

from service.auth.principal import Principal, PrincipalError, Role
from service.settings import Settings, SettingsError

logger = structlog.get_logger("tmn.oidc")

Reason = Literal[
    "disabled",
    "malformed",
    "unsupported algorithm",
    "unknown key",
    "bad key",
    "bad signature",
    "expired",
    "not yet valid",
    "wrong audience",
    "wrong issuer",
    "missing claim",
    "no subject",
    "no role",
    "bad scope",
    "jwks unavailable",
    "invalid",
]

# Asymmetric algorithms only: "none" and HS* (where a published key would become the secret)
# are never accepted, whatever the settings say.
ASYMMETRIC_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_KEY_TYPES: Final = frozenset({"RSA", "EC", "OKP"})

JWKS_TIMEOUT_SECONDS: Final = 5.0
MAX_JWKS_BYTES: Final = 512 * 1024
MAX_TOKEN_CHARS: Final = 16 * 1024
MAX_CLAIM_CHARS: Final = 255
DEFAULT_REFETCH_INTERVAL_SECONDS: Final = 30.0


class TokenError(Exception):
    """A token that does not authenticate anyone. `reason` is short, fixed and safe to log or
    show; it never contains the token or any of its claims."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason)
        self.reason: Reason = reason


class _Key:
    """One signing key of the JWKS, bound to algorithms on demand.

    PyJWK binds a key to one algorithm (the JWK's `alg`, or a default by key type); a JWK
    without `alg` may serve several algorithms of its family (an RSA key: RS256 and PS256).
    """

    __slots__ = ("_bound", "declared_alg", "jwk", "kid")

    def __init__(self, jwk: dict[str, Any], default: jwt.PyJWK) -> None:
        self.jwk = jwk
        kid = jwk.get("kid")
        self.kid: str | None = kid if isinstance(kid, str) else None
        declared = jwk.get("alg")
        self.declared_alg: str | None = declared if isinstance(declared, str) else None
        self._bound: dict[str, jwt.PyJWK] = {default.algorithm_name: default}

    def for_algorithm(self, alg: str) -> jwt.PyJWK:
        """This key as a verifier of `alg`; TokenError("bad key") when it cannot be one."""
        bound = self._bound.get(alg)
        if bound is not None:
            return bound
        if self.declared_alg is not None:  # the provider said which algorithm this key is for
            raise TokenError("bad key")
        try:
            bound = jwt.PyJWK(self.jwk, algorithm=alg)
        except PyJWTError:  # e.g. an EC key named by an RS256 token
            raise TokenError("bad key") from None
        self._bound[alg] = bound
        return bound


class OidcVerifier:
    """Verifies identity providers' tokens and builds their Principals.

    One instance lives as long as the app (it holds the key cache); call `aclose` on shutdown.
    `refetch_interval` and `clock` exist for tests; production uses the defaults.
    """

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient | None = None,
        *,
        refetch_interval: float = DEFAULT_REFETCH_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._client = client
        self._owns_client = client is None
        self._refetch_interval = refetch_interval
        self._clock = clock
        self._lock = asyncio.Lock()
        self._keys: list[_Key] | None = None
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last fetch, successful or not
        self._algorithms: tuple[str, ...] = settings.oidc_algorithms
        if self.enabled:
            self._check_settings()

    def _check_settings(self) -> None:
        s = self._settings
        unsafe = [a for a in s.oidc_algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if unsafe:
            raise SettingsError(
                f"TMN_OIDC_ALGORITHMS: only {', '.join(sorted(ASYMMETRIC_ALGORITHMS))} are accepted"
            )
        if not s.oidc_algorithms:
            raise SettingsError("TMN_OIDC_ALGORITHMS: name at least one algorithm")
        if not s.oidc_audience:
            raise SettingsError("TMN_OIDC_AUDIENCE is required when TMN_OIDC_ISSUER is set")
        if not s.oidc_jwks_url:
            raise SettingsError("TMN_OIDC_JWKS_URL is required when TMN_OIDC_ISSUER is set")
        try:
            url = httpx.URL(s.oidc_jwks_url)
        except httpx.InvalidURL:
            raise SettingsError("TMN_OIDC_JWKS_URL is not a URL") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise SettingsError("TMN_OIDC_JWKS_URL must be an http(s) URL")

    @property
    def enabled(self) -> bool:
        return bool(self._settings.oidc_issuer)

    async def aclose(self) -> None:
        """Close the HTTP client, unless the caller passed it in (then it is theirs to close)."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def verify(self, token: str) -> Principal:
        """The Principal a token authenticates; TokenError when it authenticates no one."""
        if not self.enabled:
            raise TokenError("disabled")
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise TokenError("malformed")
        try:
            header = jwt.get_unverified_header(token)
        except PyJWTError:
            raise TokenError("malformed") from None
        alg = header.get("alg")
        if not isinstance(alg, str):
            raise TokenError("malformed")
        if alg not in self._algorithms:
            raise TokenError("unsupported algorithm")
        kid = header.get("kid")  # PyJWT has checked that a kid, when present, is a string
        key = (await self._key(kid if isinstance(kid, str) else None)).for_algorithm(alg)
        claims = self._decode(token, key, alg)
        return self._principal(claims)

    # Claims

    def _decode(self, token: str, key: jwt.PyJWK, alg: str) -> dict[str, Any]:
        s = self._settings
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=s.oidc_audience,
                issuer=s.oidc_issuer,
                leeway=s.oidc_leeway_seconds,
                options={
                    "require": ["exp", "iss", "aud"],
                    "verify_signature": True,
                    "verify_exp": True,
                    "verify_iat": True,
                    "verify_nbf": True,
                    "verify_iss": True,
                    "verify_aud": True,
                    "verify_sub": True,
                    "enforce_minimum_key_length": True,
                },
            )
        except PyJWTError as exc:
            # `from None`: PyJWT's messages are safe today, but the reason is all callers need.
            raise TokenError(_reason(exc)) from None
        return claims

    def _principal(self, claims: dict[str, Any]) -> Principal:
        s = self._settings
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise TokenError("no subject")
        if len(sub) > MAX_CLAIM_CHARS or not sub.isprintable():
            raise TokenError("malformed")
        role = _role(claims.get(s.oidc_role_claim))
        municipality = _scope_value(claims.get(s.oidc_municipality_claim))
        county = _scope_value(claims.get(s.oidc_county_claim))
        carrier = _scope_value(claims.get(s.oidc_carrier_claim))
        try:
            return Principal.for_role(
                id=f"oidc:{sub}",
                name=f"oidc:{sub}",
                role=role,
                municipality=municipality,
                county=county,
                carrier=carrier,
            )
        except PrincipalError:
            raise TokenError("bad scope") from None

    # Keys

    async def _key(self, kid: str | None) -> _Key:
        key = self._cached(kid)
        if key is not None and not self._stale():
            return key
        async with self._lock:
            # Another request may have refreshed the keys while this one waited.
            key = self._cached(kid)
            if key is not None and not self._stale():
                return key
            failed = False
            if self._may_fetch():
                try:
                    await self._refresh()
                except TokenError:
                    failed = True
            key = self._cached(kid)
            if key is not None:  # fresh, or stale but the provider could not be reached
                return key
            if failed or self._keys is None:
                raise TokenError("jwks unavailable")
            raise TokenError("unknown key")

    def _cached(self, kid: str | None) -> _Key | None:
        if self._keys is None:
            return None
        if kid is None:
            # A token without kid: only unambiguous when the provider publishes one key.
            return self._keys[0] if len(self._keys) == 1 else None
        return next((k for k in self._keys if k.kid == kid), None)

    def _stale(self) -> bool:
        return (
            self._fetched_at is None
            or self._clock() - self._fetched_at >= self._settings.oidc_jwks_cache_seconds
        )

    def _may_fetch(self) -> bool:
        return self._attempted_at is None or self._clock() - self._attempted_at >= self._refetch_interval

    async def _refresh(self) -> None:
        self._attempted_at = self._clock()
        keys = await self._fetch()
        self._keys = keys
        self._fetched_at = self._clock()

    async def _fetch(self) -> list[_Key]:
        url = self._settings.oidc_jwks_url
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=JWKS_TIMEOUT_SECONDS)
        body = bytearray()
        try:
            async with self._client.stream(
                "GET",
                url,
                headers={"Accept": "application/jwk-set+json, application/json"},
                timeout=JWKS_TIMEOUT_SECONDS,
            ) as response:
                if response.status_code != 200:
                    logger.warning("jwks fetch failed", url=url, status=response.status_code)
                    raise TokenError("jwks unavailable")
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        logger.warning("jwks fetch failed", url=url, error="too large")
                        raise TokenError("jwks unavailable")
        except httpx.HTTPError as exc:
            logger.warning("jwks fetch failed", url=url, error=type(exc).__name__)
            raise TokenError("jwks unavailable") from None
        keys = _parse_jwks(bytes(body))
        if not keys:
            logger.warning("jwks fetch failed", url=url, error="no usable keys")
            raise TokenError("jwks unavailable")
        return keys


def _parse_jwks(body: bytes) -> list[_Key]:
    """The usable signing keys of a JWKS document; unusable members are skipped."""
    try:
        document = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return []
    members = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(members, list):
        return []
    keys: list[_Key] = []
    for member in members:
        if not isinstance(member, dict) or member.get("kty") not in _KEY_TYPES:
            continue  # symmetric ("oct") keys are never trusted
        if member.get("use", "sig") != "sig":
            continue  # encryption keys
        declared = member.get("alg")
        if declared is not None and declared not in ASYMMETRIC_ALGORITHMS:
            continue
        try:
            default = jwt.PyJWK(member)
        except PyJWTError:
            continue
        keys.append(_Key(member, default))
    return keys


def _reason(exc: PyJWTError) -> Reason:
    # Subclasses before their bases: InvalidSignatureError is a DecodeError.
    if isinstance(exc, ExpiredSignatureError):
        return "expired"
    if isinstance(exc, ImmatureSignatureError):
        return "not yet valid"
    if isinstance(exc, InvalidAudienceError):
        return "wrong audience"
    if isinstance(exc, InvalidIssuerError):
        return "wrong issuer"
    if isinstance(exc, MissingRequiredClaimError):
        if exc.claim == "aud":
            return "wrong audience"
        if exc.claim == "iss":
            return "wrong issuer"
        return "missing claim"
    if isinstance(exc, InvalidSubjectError):
        return "no subject"
    if isinstance(exc, InvalidSignatureError):
        return "bad signature"
    if isinstance(exc, InvalidAlgorithmError):
        return "unsupported algorithm"
    if isinstance(exc, InvalidKeyError):
        return "bad key"
    if isinstance(exc, (DecodeError, InvalidIssuedAtError)):
        return "malformed"
    return "invalid"


def _single(value: Any) -> Any:
    """Identity providers send some attributes as one-element lists."""
    if isinstance(value, list):
        return value[0] if len(value) == 1 else None
    return value


def _role(value: Any) -> Role:
    value = _single(value)
    if not isinstance(value, str):
        raise TokenError("no role")
    try:
        role = Role(value)
    except ValueError:
        raise TokenError("no role") from None
    if role is Role.SYSTEM:  # the CLI's and worker's role; no token carries it
        raise TokenError("no role")
    return role


def _scope_value(value: Any) -> str | None:
    if isinstance(value, list):
        if len(value) > 1:  # more than one place: not a scope this API can express
            raise TokenError("bad scope")
        value = value[0] if value else None
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_CLAIM_CHARS or not value.isprintable():
        raise TokenError("bad scope")
    return value
