"""Authentication with API keys; public routes; every other route needs a principal."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from service.api_keys.models import ApiKey
from service.api_keys.service import ApiKeyService, hash_key
from service.auth.principal import Principal
from service.cli import main as tmn
from service.context import Context
from service.db import create_engine, create_sessionmaker
from service.settings import Settings
from tests.helpers import error_fields, problem

# Exactly these are public: probes, metrics, docs, problem types, and what the signed links of
# e-mails open (unsubscribe; a meeting's invitation, registration and survey, as JSON under /v1/
# and as the small HTML pages at /rsvp/, /seat/ and /survey/, which are not in the OpenAPI document),
# and a certification's public check from its sticker with the keys and status lists of credentials.
# The dashboard's pages check the sign-in cookie themselves (a browser sends no bearer header).
PUBLIC_PREFIXES = (
    "/dashboard",
    "/health/",
    "/docs",
    "/problems",
    "/metrics",
    "/v1/unsubscribe/",
    "/v1/invitations/",
    "/v1/registrations/",
    "/v1/surveys/",
    "/rsvp/",
    "/seat/",
    "/survey/",
    "/v1/verify/",
    "/verify/",
    "/v1/credentials/",
    "/.well-known/",
)


async def make_key(client: Any, role: str, **scope: str) -> dict[str, Any]:
    response = await client.post("/v1/api-keys", json={"name": f"test {role}", "role": role, **scope})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "Bearer garbage",
        "Bearer tmn_short_x",
        "Bearer tmn_abcdefgh_wrong-secret-wrong-secret",
        "Bearer a.b.c",
    ],
)
async def test_bad_credentials_are_401_problems(client, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    if header is None:
        client.headers.pop("Authorization")
    response = await client.get("/v1/organizations", headers=headers)
    body = problem(response, 401)
    assert body["type"] == "/problems/unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "secret" not in body["detail"]


async def test_a_known_prefix_with_the_wrong_secret_is_refused(client) -> None:
    key = (await make_key(client, "viewer", county_code="25"))["key"]
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    problem(await client.get("/v1/organizations", headers=bearer(forged)), 401)
    assert (await client.get("/v1/organizations", headers=bearer(key))).status_code == 200


async def test_key_is_shown_once_and_stored_as_a_hash(client) -> None:
    created = await make_key(client, "municipal_coordinator", municipality_code="2560")
    key = created["key"]
    assert key.startswith(f"tmn_{created['prefix']}_")
    assert created["status"] == "active" and created["role"] == "municipal_coordinator"
    again = (await client.get(f"/v1/api-keys/{created['id']}")).json()
    assert "key" not in again and again["prefix"] == created["prefix"]
    listed = (await client.get("/v1/api-keys", params={"limit": 200})).json()["items"]
    assert created["id"] in {k["id"] for k in listed}
    assert all("key" not in k and "secret_hash" not in k for k in listed)

    async def read_hash() -> str:
        async with client.app.state.sessionmaker() as session:
            record = await session.get(ApiKey, UUID(created["id"]))
            return str(record.secret_hash)

    assert client.blocking_portal.call(read_hash) == hash_key(key)


async def test_last_used_is_recorded(client) -> None:
    created = await make_key(client, "viewer")
    assert created["last_used_at"] is None
    assert (await client.get("/v1/counties", headers=bearer(created["key"]))).status_code == 200
    used = (await client.get(f"/v1/api-keys/{created['id']}")).json()
    assert used["last_used_at"] is not None


async def test_revoked_and_expired_keys_are_refused(client) -> None:
    revoked = await make_key(client, "viewer")
    assert (await client.get("/v1/counties", headers=bearer(revoked["key"]))).status_code == 200
    response = await client.post(f"/v1/api-keys/{revoked['id']}/revoke")
    assert response.json()["status"] == "revoked"
    body = problem(await client.get("/v1/counties", headers=bearer(revoked["key"])), 401)
    assert "revoked" in body["detail"]

    expiring = await make_key(client, "viewer")

    async def expire() -> None:
        async with client.app.state.sessionmaker() as session:
            past = datetime.now(UTC) - timedelta(minutes=1)
            await session.execute(
                update(ApiKey).where(ApiKey.prefix == expiring["prefix"]).values(expires_at=past)
            )
            await session.commit()

    client.blocking_portal.call(expire)
    body = problem(await client.get("/v1/counties", headers=bearer(expiring["key"])), 401)
    assert "expired" in body["detail"]
    assert (await client.get(f"/v1/api-keys/{expiring['id']}")).json()["status"] == "expired"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "municipal_coordinator"}, "role"),
        ({"role": "county_coordinator", "municipality_code": "2560"}, "role"),
        ({"role": "national_admin", "county_code": "25"}, "role"),
        ({"role": "carrier_integration"}, "role"),
        ({"role": "system"}, "role"),
        ({"role": "municipal_coordinator", "municipality_code": "9999"}, "municipality_code"),
        ({"role": "viewer", "county_code": "99"}, "county_code"),
        ({"role": "carrier_integration", "carrier": "Post Nord!"}, "carrier"),
        ({"role": "viewer", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"role": "root"}, "role"),
    ],
)
async def test_key_role_and_scope_must_fit(client, body: dict[str, Any], field: str) -> None:
    assert error_fields(await client.post("/v1/api-keys", json={"name": "k"} | body)) == {field}


async def test_only_administrators_manage_keys(client) -> None:
    coordinator = (await make_key(client, "county_coordinator", county_code="25"))["key"]
    problem(await client.get("/v1/api-keys", headers=bearer(coordinator)), 403)
    response = await client.post(
        "/v1/api-keys", json={"name": "x", "role": "viewer"}, headers=bearer(coordinator)
    )
    problem(response, 403)


async def test_public_routes_need_no_principal(client) -> None:
    client.headers.pop("Authorization")
    for path in (
        "/health/live",
        "/health/ready",
        "/docs",
        "/docs/openapi.json",
        "/problems",
        "/problems/not-found",
        "/docs/assets/swagger-ui.css",
    ):
        assert (await client.get(path)).status_code == 200, path


async def test_every_other_route_requires_a_principal(client) -> None:
    client.headers.pop("Authorization")
    paths = client.app.openapi_schema.to_schema()["paths"]
    checked = 0
    for path, item in paths.items():
        if path.startswith(PUBLIC_PREFIXES):
            continue
        concrete = path
        for name in (
            "organization_id",
            "network_id",
            "member_id",
            "participant_id",
            "key_id",
            "message_id",
            "webhook_id",
            "delivery_id",
            "meeting_id",
            "registration_id",
            "reminder_id",
            "certification_id",
            "external_id",
            "address",
            "token",
        ):
            concrete = concrete.replace("{" + name + "}", "01a21156-3321-75b5-b66a-4f92e0dbc60e")
        concrete = concrete.replace("{code}", "25")
        for method in item:
            if method not in ("get", "post", "patch", "put", "delete"):
                continue
            response = await client.request(method.upper(), concrete, json={} if method != "get" else None)
            assert response.status_code == 401, (method, path, response.status_code)
            checked += 1
    assert checked >= 30


def test_every_route_has_a_permission_or_is_public(client) -> None:
    for route in client.app.routes:
        for handler in getattr(route, "route_handlers", []):
            opt = handler.opt
            if route.path.startswith("/docs") or set(handler.http_methods) == {"OPTIONS"}:
                continue
            assert opt.get("permission") or opt.get("public"), (
                f"{route.path} {handler.http_methods} has no rule"
            )


def test_cli_creates_lists_and_revokes_keys(settings: Settings) -> None:
    env = {"TMN_DATABASE_URL": settings.effective_database_url}
    runner = CliRunner()
    created = runner.invoke(
        tmn,
        [
            "keys",
            "create",
            "--name",
            "Älvsbyn case system",
            "--role",
            "municipal_coordinator",
            "--municipality",
            "2560",
            "--expires-days",
            "30",
        ],
        env=env,
    )
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    prefix = key.split("_")[1]

    async def authenticate() -> Principal:
        engine = create_engine(Settings(database_url=settings.effective_database_url))
        try:
            async with create_sessionmaker(engine)() as session:
                return await ApiKeyService(Context(session, Principal.system())).authenticate(key)
        finally:
            await engine.dispose()

    principal = asyncio.run(authenticate())
    assert principal.id == f"key:{prefix}"
    assert principal.scope.municipality_codes == frozenset({"2560"})

    listed = runner.invoke(tmn, ["keys", "list"], env=env)
    assert prefix in listed.output and key not in listed.output
    assert runner.invoke(tmn, ["keys", "revoke", prefix], env=env).exit_code == 0
    assert f"{prefix}  municipal_coordinator" in runner.invoke(tmn, ["keys", "list"], env=env).output
    assert "revoked" in runner.invoke(tmn, ["keys", "list"], env=env).output
    bad = runner.invoke(tmn, ["keys", "create", "--name", "x", "--role", "municipal_coordinator"], env=env)
    assert bad.exit_code != 0 and "municipality" in bad.output
