"""OIDC tokens: a real JWKS served over HTTP on 127.0.0.1, keys made here, tokens signed by PyJWT.

No mocks: the verifier fetches the key set through httpx from a small HTTP server running in a
thread. The server counts fetches, and its key set (or its status) can be changed mid-test.
Time is a fake clock handed to the verifier, so caching and throttling are tested without waiting.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from service.auth.oidc import OidcVerifier, TokenError
from service.auth.principal import Principal, Role, Scope
from service.settings import Settings, SettingsError

ISSUER = "https://idp.example.test/realms/tmn"
AUDIENCE = "tmn-api"


# Keys


@dataclass(frozen=True)
class Key:
    kid: str
    alg: str
    private: Any

    def jwk(self, *, with_alg: bool = True) -> dict[str, Any]:
        public = self.private.public_key()
        algorithm = RSAAlgorithm if isinstance(public, rsa.RSAPublicKey) else ECAlgorithm
        data: dict[str, Any] = algorithm.to_jwk(public, as_dict=True)
        data.update(kid=self.kid, use="sig")
        if with_alg:
            data["alg"] = self.alg
        return data


@dataclass(frozen=True)
class Keys:
    rsa: Key
    ec: Key
    rotated: Key  # the provider's next RSA key
    impostor: Key  # same kid as `rsa`, a different key the provider never published


@pytest.fixture(scope="module")
def keys() -> Keys:
    def rsa_key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    return Keys(
        rsa=Key("rsa-1", "RS256", rsa_key()),
        ec=Key("ec-1", "ES256", ec.generate_private_key(ec.SECP256R1())),
        rotated=Key("rsa-2", "RS256", rsa_key()),
        impostor=Key("rsa-1", "RS256", rsa_key()),
    )


def jwks(*published: Key) -> dict[str, Any]:
    return {"keys": [k.jwk() for k in published]}


# The identity provider's JWKS endpoint


class JwksServer:
    """A real HTTP server on 127.0.0.1 serving one JWKS at /jwks; thread-safe to reconfigure."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._body = b'{"keys": []}'
        self._status = 200
        self._fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = server._serve(self.path)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/jwks"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.01,), daemon=True)
        self._thread.start()
        self._running = True

    def _serve(self, path: str) -> tuple[int, bytes]:
        with self._lock:
            if path != "/jwks":
                return 404, b"{}"
            self._fetches += 1
            return self._status, self._body if self._status == 200 else b'{"error": "down"}'

    @property
    def fetches(self) -> int:
        with self._lock:
            return self._fetches

    def publish(self, document: dict[str, Any] | bytes) -> None:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        with self._lock:
            self._body = body

    def fail(self, status: int = 500) -> None:
        with self._lock:
            self._status = status

    def stop(self) -> None:
        """Stop listening: later fetches get connection refused."""
        if self._running:
            self._running = False
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)


@pytest.fixture
def idp(keys: Keys) -> Iterator[JwksServer]:
    server = JwksServer()
    server.publish(jwks(keys.rsa, keys.ec))
    try:
        yield server
    finally:
        server.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def oidc_settings(jwks_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "oidc_issuer": ISSUER,
        "oidc_audience": AUDIENCE,
        "oidc_jwks_url": jwks_url,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def verifier(idp: JwksServer, clock: Clock) -> AsyncIterator[OidcVerifier]:
    v = OidcVerifier(oidc_settings(idp.url), clock=clock)
    try:
        yield v
    finally:
        await v.aclose()


# Tokens

_UNSET: Any = object()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "f3b1c2d4-user",
        "iat": now,
        "exp": now + 300,
        "name": "Anna Andersson",
        "email": "anna@example.se",
        "tmn_role": "municipal_coordinator",
        "tmn_municipality": "2560",
    }
    for name, value in overrides.items():
        if value is _UNSET:
            body.pop(name, None)
        else:
            body[name] = value
    return body


def mint(
    key: Key, payload: dict[str, Any] | None = None, *, alg: str | None = None, kid: Any = _UNSET
) -> str:
    headers = {"kid": key.kid if kid is _UNSET else kid}
    return jwt.encode(payload or claims(), key.private, algorithm=alg or key.alg, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}.{b64(signature)}"


async def reason(verifier: OidcVerifier, token: str) -> str:
    with pytest.raises(TokenError) as caught:
        await verifier.verify(token)
    error = caught.value
    # The message is the reason and nothing else: no token, no claim, no chained PyJWT error.
    assert str(error) == error.reason
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    if token:
        assert token not in repr(error.args)
    return error.reason


# Valid tokens


async def test_rs256_municipal_coordinator(verifier: OidcVerifier, keys: Keys) -> None:
    principal = await verifier.verify(mint(keys.rsa))
    assert principal == Principal(
        id="oidc:f3b1c2d4-user",
        name="oidc:f3b1c2d4-user",
        roles=frozenset({Role.MUNICIPAL_COORDINATOR}),
        scope=Scope(municipality_codes=frozenset({"2560"})),
    )
    # The person's name and e-mail stay in the token.
    assert "Anna" not in repr(principal)
    assert "anna@" not in repr(principal)


async def test_es256_county_coordinator(verifier: OidcVerifier, keys: Keys) -> None:
    token = mint(keys.ec, claims(tmn_role="county_coordinator", tmn_municipality=_UNSET, tmn_county="25"))
    principal = await verifier.verify(token)
    assert principal.roles == frozenset({Role.COUNTY_COORDINATOR})
    assert principal.scope == Scope(county_codes=frozenset({"25"}))
    assert principal.id == "oidc:f3b1c2d4-user"


@pytest.mark.parametrize(
    ("extra", "role", "scope"),
    [
        ({"tmn_role": ["national_admin"], "tmn_municipality": _UNSET}, Role.NATIONAL_ADMIN, Scope.national()),
        ({"tmn_role": "auditor", "tmn_municipality": ""}, Role.AUDITOR, Scope.national()),
        ({"tmn_role": "viewer", "tmn_municipality": _UNSET}, Role.VIEWER, Scope.national()),
        (
            {"tmn_role": "instructor", "tmn_municipality": ["0180"]},
            Role.INSTRUCTOR,
            Scope(municipality_codes=frozenset({"0180"})),
        ),
        (
            {"tmn_role": "carrier_integration", "tmn_municipality": _UNSET, "tmn_carrier": "postnord"},
            Role.CARRIER_INTEGRATION,
            Scope(carrier="postnord"),
        ),
    ],
)
async def test_roles_and_scopes(
    verifier: OidcVerifier, keys: Keys, extra: dict[str, Any], role: Role, scope: Scope
) -> None:
    principal = await verifier.verify(mint(keys.rsa, claims(**extra)))
    assert principal.roles == frozenset({role})
    assert principal.scope == scope


async def test_audience_list_and_leeway(verifier: OidcVerifier, keys: Keys) -> None:
    now = int(time.time())
    token = mint(keys.rsa, claims(aud=["other-app", AUDIENCE], exp=now - 10, iat=_UNSET))
    assert (await verifier.verify(token)).id == "oidc:f3b1c2d4-user"


async def test_custom_claim_names(idp: JwksServer, keys: Keys, clock: Clock) -> None:
    settings = oidc_settings(
        idp.url,
        oidc_role_claim="roles",
        oidc_municipality_claim="kommun",
        oidc_county_claim="lan",
        oidc_carrier_claim="carrier",
    )
    v = OidcVerifier(settings, clock=clock)
    try:
        token = mint(keys.rsa, claims(roles=["county_coordinator"], lan="25"))
        principal = await v.verify(token)
        assert principal.roles == frozenset({Role.COUNTY_COORDINATOR})
        assert principal.scope == Scope(county_codes=frozenset({"25"}))
        # The default claim names mean nothing now.
        assert await reason(v, mint(keys.rsa, claims())) == "no role"
        token = mint(keys.rsa, claims(roles="municipal_coordinator", kommun="2560", tmn_municipality=_UNSET))
        assert (await v.verify(token)).scope == Scope(municipality_codes=frozenset({"2560"}))
    finally:
        await v.aclose()


async def test_rsa_key_without_alg_serves_ps256(idp: JwksServer, keys: Keys, clock: Clock) -> None:
    idp.publish({"keys": [keys.rsa.jwk(with_alg=False)]})
    v = OidcVerifier(oidc_settings(idp.url, oidc_algorithms=("RS256", "PS256")), clock=clock)
    try:
        assert (await v.verify(mint(keys.rsa, alg="PS256"))).id == "oidc:f3b1c2d4-user"
        assert (await v.verify(mint(keys.rsa, alg="RS256"))).id == "oidc:f3b1c2d4-user"
    finally:
        await v.aclose()


async def test_token_without_kid_uses_the_only_key(
    idp: JwksServer, verifier: OidcVerifier, keys: Keys
) -> None:
    token = jwt.encode(claims(), keys.rsa.private, algorithm="RS256")
    assert await reason(verifier, token) == "unknown key"  # two keys published: ambiguous
    idp.publish(jwks(keys.rsa))
    v = OidcVerifier(oidc_settings(idp.url))
    try:
        assert (await v.verify(token)).id == "oidc:f3b1c2d4-user"
    finally:
        await v.aclose()


# The key cache


async def test_keys_are_cached(idp: JwksServer, verifier: OidcVerifier, keys: Keys, clock: Clock) -> None:
    await verifier.verify(mint(keys.rsa))
    await verifier.verify(
        mint(keys.ec, claims(tmn_role="county_coordinator", tmn_municipality=_UNSET, tmn_county="25"))
    )
    clock.advance(599)
    await verifier.verify(mint(keys.rsa))
    assert idp.fetches == 1
    clock.advance(1)  # oidc_jwks_cache_seconds (600) have passed
    await verifier.verify(mint(keys.rsa))
    assert idp.fetches == 2


async def test_concurrent_first_requests_fetch_once(
    idp: JwksServer, verifier: OidcVerifier, keys: Keys
) -> None:
    tokens = [mint(keys.rsa, claims(sub=f"user-{i}")) for i in range(10)]
    principals = await asyncio.gather(*(verifier.verify(t) for t in tokens))
    assert {p.id for p in principals} == {f"oidc:user-{i}" for i in range(10)}
    assert idp.fetches == 1


async def test_unknown_kid_refetches_after_rotation(
    idp: JwksServer, verifier: OidcVerifier, keys: Keys, clock: Clock
) -> None:
    await verifier.verify(mint(keys.rsa))
    assert idp.fetches == 1
    idp.publish(jwks(keys.rotated))  # the provider rotates its key
    clock.advance(31)
    principal = await verifier.verify(mint(keys.rotated))
    assert principal.id == "oidc:f3b1c2d4-user"
    assert idp.fetches == 2
    await verifier.verify(mint(keys.rotated))
    assert idp.fetches == 2
    # The retired key is gone from the cache with the refetch.
    assert await reason(verifier, mint(keys.rsa)) == "unknown key"


async def test_unknown_kid_refetch_is_throttled(
    idp: JwksServer, verifier: OidcVerifier, keys: Keys, clock: Clock
) -> None:
    await verifier.verify(mint(keys.rsa))
    clock.advance(31)
    assert await reason(verifier, mint(keys.rsa, kid="forged-1")) == "unknown key"
    assert idp.fetches == 2
    clock.advance(10)
    assert await reason(verifier, mint(keys.rsa, kid="forged-2")) == "unknown key"
    assert idp.fetches == 2  # within 30 s of the last fetch: answered from the cache
    # A genuine rotation right after a fetch is accepted once the interval has passed.
    idp.publish(jwks(keys.rsa, keys.rotated))
    assert await reason(verifier, mint(keys.rotated)) == "unknown key"
    assert idp.fetches == 2
    clock.advance(21)
    assert (await verifier.verify(mint(keys.rotated))).id == "oidc:f3b1c2d4-user"
    assert idp.fetches == 3


async def test_many_unknown_kids_fetch_once(
    idp: JwksServer, verifier: OidcVerifier, keys: Keys, clock: Clock
) -> None:
    await verifier.verify(mint(keys.rsa))
    clock.advance(31)
    tokens = [mint(keys.rsa, kid=f"forged-{i}") for i in range(20)]
    results = await asyncio.gather(*(verifier.verify(t) for t in tokens), return_exceptions=True)
    assert all(isinstance(r, TokenError) and r.reason == "unknown key" for r in results)
    assert idp.fetches == 2


async def test_default_refetch_interval_is_30_seconds(idp: JwksServer, keys: Keys) -> None:
    v = OidcVerifier(oidc_settings(idp.url))
    try:
        await v.verify(mint(keys.rsa))
        assert await reason(v, mint(keys.rsa, kid="forged-1")) == "unknown key"
        assert await reason(v, mint(keys.rsa, kid="forged-2")) == "unknown key"
        assert idp.fetches == 1
    finally:
        await v.aclose()


# The JWKS endpoint failing


@pytest.mark.parametrize("failure", ["stopped", "500", "404", "not json", "no keys", "only unusable keys"])
async def test_jwks_unavailable_without_cached_keys(
    idp: JwksServer, verifier: OidcVerifier, keys: Keys, failure: str
) -> None:
    if failure == "stopped":
        idp.stop()
    elif failure == "500":
        idp.fail(500)
    elif failure == "404":
        idp.fail(404)
    elif failure == "not json":
        idp.publish(b"<html>maintenance</html>")
    elif failure == "no keys":
        idp.publish({"keys": []})
    else:
        secret = {"kty": "oct", "k": b64(b"s" * 32), "kid": "rsa-1", "alg": "HS256"}
        encryption = keys.rsa.jwk() | {"use": "enc"}
        idp.publish({"keys": [secret, encryption, {"kty": "RSA", "kid": "broken"}, "junk"]})
    assert await reason(verifier, mint(keys.rsa)) == "jwks unavailable"


async def test_cached_keys_survive_an_outage(
    idp: JwksServer, verifier: OidcVerifier, keys: Keys, clock: Clock
) -> None:
    await verifier.verify(mint(keys.rsa))
    idp.fail(500)
    await verifier.verify(mint(keys.rsa))  # cached
    clock.advance(700)  # the cache has expired; the refetch fails; the old keys still verify
    assert (await verifier.verify(mint(keys.rsa))).id == "oidc:f3b1c2d4-user"
    assert idp.fetches == 2
    clock.advance(31)
    assert await reason(verifier, mint(keys.rotated)) == "jwks unavailable"
    assert idp.fetches == 3
    # With the provider gone altogether, the cached keys still verify.
    idp.stop()
    clock.advance(31)
    token = mint(keys.ec, claims(tmn_role="viewer", tmn_municipality=_UNSET))
    assert (await verifier.verify(token)).roles == frozenset({Role.VIEWER})


async def test_recovery_after_outage(
    idp: JwksServer, verifier: OidcVerifier, keys: Keys, clock: Clock
) -> None:
    idp.fail(500)
    assert await reason(verifier, mint(keys.rsa)) == "jwks unavailable"
    idp.fail(200)
    assert await reason(verifier, mint(keys.rsa)) == "jwks unavailable"  # throttled: no fetch yet
    assert idp.fetches == 1
    clock.advance(30)
    assert (await verifier.verify(mint(keys.rsa))).id == "oidc:f3b1c2d4-user"
    assert idp.fetches == 2


# Rejected tokens


async def test_expired(verifier: OidcVerifier, keys: Keys) -> None:
    now = int(time.time())
    assert await reason(verifier, mint(keys.rsa, claims(exp=now - 3600, iat=now - 7200))) == "expired"


async def test_not_yet_valid(verifier: OidcVerifier, keys: Keys) -> None:
    now = int(time.time())
    assert await reason(verifier, mint(keys.rsa, claims(nbf=now + 3600))) == "not yet valid"


async def test_exp_is_required(verifier: OidcVerifier, keys: Keys) -> None:
    assert await reason(verifier, mint(keys.rsa, claims(exp=_UNSET))) == "missing claim"


@pytest.mark.parametrize("aud", ["other-app", ["other-app", "third-app"], _UNSET])
async def test_wrong_audience(verifier: OidcVerifier, keys: Keys, aud: Any) -> None:
    assert await reason(verifier, mint(keys.rsa, claims(aud=aud))) == "wrong audience"


@pytest.mark.parametrize("iss", ["https://evil.example.test/realms/tmn", ISSUER + "/", _UNSET])
async def test_wrong_issuer(verifier: OidcVerifier, keys: Keys, iss: Any) -> None:
    assert await reason(verifier, mint(keys.rsa, claims(iss=iss))) == "wrong issuer"


async def test_key_not_in_jwks(verifier: OidcVerifier, keys: Keys) -> None:
    assert await reason(verifier, mint(keys.impostor)) == "bad signature"


async def test_tampered_payload(verifier: OidcVerifier, keys: Keys) -> None:
    header, _, signature = mint(keys.rsa).split(".")
    payload = b64(json.dumps(claims(tmn_role="national_admin", tmn_municipality=_UNSET)).encode())
    assert await reason(verifier, f"{header}.{payload}.{signature}") == "bad signature"


async def test_kid_of_a_key_of_another_type(verifier: OidcVerifier, keys: Keys) -> None:
    # An ES256 token naming the RSA key's kid.
    assert await reason(verifier, mint(keys.ec, kid=keys.rsa.kid)) == "bad key"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b.c",
        "a.b",
        "...",
        "eyJhbGciOiJSUzI1NiJ9.e30",
        "x" * 20_000,
    ],
)
async def test_malformed(verifier: OidcVerifier, token: str) -> None:
    assert await reason(verifier, token) == "malformed"


async def test_malformed_header_values(verifier: OidcVerifier, keys: Keys) -> None:
    assert await reason(verifier, unsigned({"alg": "RS256", "kid": 7}, claims())) == "malformed"
    assert await reason(verifier, unsigned({"kid": "rsa-1"}, claims())) == "malformed"
    assert await reason(verifier, unsigned({"alg": 256, "kid": "rsa-1"}, claims())) == "malformed"


async def test_alg_none_rejected(idp: JwksServer, verifier: OidcVerifier, keys: Keys) -> None:
    token = jwt.encode(claims(), "", algorithm="none", headers={"kid": keys.rsa.kid})
    assert await reason(verifier, token) == "unsupported algorithm"
    assert await reason(verifier, unsigned({"alg": "none"}, claims())) == "unsupported algorithm"
    assert idp.fetches == 0  # rejected before any key is looked up


async def test_hs256_rejected(verifier: OidcVerifier, keys: Keys) -> None:
    token = jwt.encode(
        claims(), "a-shared-secret-of-32-bytes-long!", algorithm="HS256", headers={"kid": "rsa-1"}
    )
    assert await reason(verifier, token) == "unsupported algorithm"
    # The classic confusion: HMAC "signed" with the published RSA key as the secret.
    pem = keys.rsa.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": keys.rsa.kid}).encode())
    payload = b64(json.dumps(claims(tmn_role="national_admin", tmn_municipality=_UNSET)).encode())
    signature = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert await reason(verifier, f"{header}.{payload}.{b64(signature)}") == "unsupported algorithm"


async def test_algorithm_outside_settings_rejected(verifier: OidcVerifier, keys: Keys) -> None:
    # RS512 is an asymmetric algorithm PyJWT knows, but the settings allow RS256 and ES256 only.
    assert await reason(verifier, mint(keys.rsa, alg="RS512")) == "unsupported algorithm"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"tmn_role": _UNSET}, "no role"),
        ({"tmn_role": "mayor"}, "no role"),
        ({"tmn_role": "system", "tmn_municipality": _UNSET}, "no role"),
        ({"tmn_role": ["municipal_coordinator", "national_admin"]}, "no role"),
        ({"tmn_role": []}, "no role"),
        ({"tmn_role": 3}, "no role"),
        ({"tmn_municipality": _UNSET}, "bad scope"),
        ({"tmn_role": "national_admin"}, "bad scope"),
        ({"tmn_county": "25"}, "bad scope"),
        ({"tmn_role": "county_coordinator", "tmn_municipality": _UNSET, "tmn_county": 25}, "bad scope"),
        ({"tmn_municipality": ["2560", "2580"]}, "bad scope"),
        ({"tmn_role": "carrier_integration", "tmn_municipality": _UNSET}, "bad scope"),
        ({"sub": _UNSET}, "no subject"),
        ({"sub": ""}, "no subject"),
        ({"sub": 42}, "no subject"),
        ({"sub": "a\nb"}, "malformed"),
    ],
)
async def test_bad_claims(verifier: OidcVerifier, keys: Keys, extra: dict[str, Any], expected: str) -> None:
    assert await reason(verifier, mint(keys.rsa, claims(**extra))) == expected


# Settings and lifecycle


async def test_disabled_without_issuer() -> None:
    v = OidcVerifier(Settings())
    assert not v.enabled
    assert await reason(v, "abc") == "disabled"
    await v.aclose()


@pytest.mark.parametrize(
    "overrides",
    [
        {"oidc_algorithms": ("RS256", "HS256")},
        {"oidc_algorithms": ("none",)},
        {"oidc_algorithms": ()},
        {"oidc_audience": ""},
        {"oidc_jwks_url": ""},
        {"oidc_jwks_url": "ftp://idp.example.test/jwks"},
    ],
)
def test_unsafe_settings_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(SettingsError):
        OidcVerifier(oidc_settings("https://idp.example.test/jwks", **overrides))


async def test_client_passed_in_is_not_closed(idp: JwksServer, keys: Keys) -> None:
    async with httpx.AsyncClient() as client:
        v = OidcVerifier(oidc_settings(idp.url), client)
        assert v.enabled
        await v.verify(mint(keys.rsa))
        await v.aclose()
        assert not client.is_closed
    assert idp.fetches == 1
