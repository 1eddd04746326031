"""People signing in through an identity provider: real JWKS over HTTP, tokens through the API."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from service.auth.oidc import OidcVerifier, TokenError
from service.settings import Settings
from tests.conftest import client_for
from tests.helpers import create, pickup_point, problem

ISSUER, AUDIENCE = "https://idp.alvsbyn.example", "tmn"


class Provider:
    """A minimal identity provider: a JWKS endpoint on loopback and a signing key."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = {"keys": [jwk | {"kid": "k1", "alg": "RS256", "use": "sig"}]}
        provider = self

        self.fetches = 0
        self.status = 200

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.fetches += 1
                body = json.dumps(provider.jwks).encode()
                self.send_response(provider.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def token(self, *, key: Any = None, kid: str = "k1", **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-4711", "iat": now, "exp": now + 300} | claims
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": kid})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    idp = Provider()
    yield idp
    idp.close()


@pytest.fixture
async def oidc_client(
    engine: AsyncEngine, settings: Settings, provider: Provider
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    configured = msgspec.structs.replace(
        settings, oidc_issuer=ISSUER, oidc_audience=AUDIENCE, oidc_jwks_url=provider.url
    )
    async with client_for(engine, configured) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_coordinator_token_acts_in_its_municipality(oidc_client, provider) -> None:
    await create(oidc_client, "/v1/organizations", pickup_point("Älvsby Livs"))
    await create(oidc_client, "/v1/organizations", pickup_point("Luleå Kiosk", municipality="2580"))
    token = provider.token(tmn_role="municipal_coordinator", tmn_municipality="2560")
    response = await oidc_client.get("/v1/organizations", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert [o["name"] for o in response.json()["items"]] == ["Älvsby Livs"]
    created = await oidc_client.post(
        "/v1/organizations", json=pickup_point("Nytt ombud"), headers=bearer(token)
    )
    assert created.status_code == 201
    events = (await oidc_client.get("/v1/audit-events", params={"entity_id": created.json()["id"]})).json()
    assert events["items"][0]["principal_id"] == "oidc:user-4711"


async def test_role_claim_decides_the_permissions(oidc_client, provider) -> None:
    auditor = provider.token(tmn_role=["auditor"])
    assert (await oidc_client.get("/v1/audit-events", headers=bearer(auditor))).status_code == 200
    problem(await oidc_client.get("/v1/organizations", headers=bearer(auditor)), 403)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "https://evil.example"}, "issuer"),
        ({"tmn_role": None}, "role"),
        ({"tmn_role": "municipal_coordinator"}, "scope"),  # no municipality claim
    ],
)
async def test_bad_tokens_are_401_problems(
    oidc_client, provider, claims: dict[str, Any], reason: str
) -> None:
    base = {"tmn_role": "viewer", "tmn_county": "25"}
    token = provider.token(**{k: v for k, v in (base | claims).items() if v is not None})
    body = problem(await oidc_client.get("/v1/counties", headers=bearer(token)), 401)
    assert reason in body["detail"]


async def test_a_token_signed_by_another_key_is_refused(oidc_client, provider) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = provider.token(key=stranger, tmn_role="viewer")
    problem(await oidc_client.get("/v1/counties", headers=bearer(token)), 401)
    unsigned = jwt.encode(
        {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "x",
            "exp": int(time.time()) + 60,
            "tmn_role": "national_admin",
        },
        None,
        algorithm="none",
    )
    problem(await oidc_client.get("/v1/counties", headers=bearer(unsigned)), 401)


async def test_tokens_are_refused_when_no_provider_is_configured(client, provider) -> None:
    token = provider.token(tmn_role="national_admin")
    body = problem(await client.get("/v1/counties", headers=bearer(token)), 401)
    assert "not configured" in body["detail"]


def verifier_settings(provider: Provider) -> Settings:
    return Settings(oidc_issuer=ISSUER, oidc_audience=AUDIENCE, oidc_jwks_url=provider.url)


@pytest.fixture
def idp() -> Iterator[Provider]:
    fresh = Provider()
    yield fresh
    fresh.close()


async def test_keys_are_cached_and_refetched_for_an_unknown_kid(idp: Provider) -> None:
    verifier = OidcVerifier(verifier_settings(idp), refetch_interval=0.0)
    try:
        for _ in range(3):
            principal = await verifier.verify(idp.token(tmn_role="viewer", tmn_county="25"))
            assert principal.scope.county_codes == frozenset({"25"})
        assert idp.fetches == 1
        # The provider rotates its key: a token with the new kid makes TMN fetch once more.
        new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(new_key.public_key()))
        idp.jwks = {"keys": [jwk | {"kid": "k2", "alg": "RS256", "use": "sig"}]}
        principal = await verifier.verify(idp.token(key=new_key, kid="k2", tmn_role="auditor"))
        assert principal.id == "oidc:user-4711" and idp.fetches == 2
    finally:
        await verifier.aclose()


async def test_refetching_is_throttled(idp: Provider) -> None:
    verifier = OidcVerifier(verifier_settings(idp), refetch_interval=30.0)
    try:
        await verifier.verify(idp.token(tmn_role="auditor"))
        for kid in ("x1", "x2", "x3"):
            with pytest.raises(TokenError) as caught:
                await verifier.verify(idp.token(kid=kid, tmn_role="auditor"))
            assert caught.value.reason == "unknown key"
        assert idp.fetches == 1  # a stream of unknown kids cannot hammer the provider
    finally:
        await verifier.aclose()


async def test_an_unreachable_provider(idp: Provider) -> None:
    idp.status = 500
    verifier = OidcVerifier(verifier_settings(idp), refetch_interval=0.0)
    try:
        with pytest.raises(TokenError) as caught:
            await verifier.verify(idp.token(tmn_role="auditor"))
        assert caught.value.reason == "jwks unavailable"
        idp.status = 200
        await verifier.verify(idp.token(tmn_role="auditor"))
        # Keys already fetched keep working while the provider is down.
        idp.close()
        assert (await verifier.verify(idp.token(tmn_role="auditor"))).id == "oidc:user-4711"
    finally:
        await verifier.aclose()
