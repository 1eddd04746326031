"""Rules for API keys: shown once, kept as a hash, scoped like the role requires."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta
from uuid import UUID

from service.api_keys import schemas
from service.api_keys.models import ApiKey
from service.api_keys.repository import ApiKeyRepository
from service.auth.principal import Principal, PrincipalError
from service.context import Context
from service.db import utcnow
from service.geography.service import GeographyService
from service.problems import Problem, invalid, not_found
from service.versioning import check_if_match, etag_of

KEY_PATTERN = re.compile(r"^tmn_([a-z0-9]{8})_([A-Za-z0-9_-]{20,100})$")
# last_used_at is written at most this often per key, so busy clients do not turn reads into writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class AuthError(Exception):
    """Authentication failed; `reason` is safe to show and to log (never the key itself)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(prefix: str | None = None, secret: str | None = None) -> tuple[str, str]:
    """A fresh key `tmn_<prefix>_<secret>`; returns (prefix, key)."""
    prefix = prefix or secrets.token_hex(4)
    key = f"tmn_{prefix}_{secret or secrets.token_urlsafe(32)}"
    if not KEY_PATTERN.match(key):
        raise ValueError("malformed key parts")
    return prefix, key


def status_of(key: ApiKey) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= utcnow():
        return "expired"
    return "active"


def to_schema(key: ApiKey) -> schemas.ApiKey:
    return schemas.ApiKey(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        role=key.role,
        municipality_code=key.municipality_code,
        county_code=key.county_code,
        carrier=key.carrier,
        created_by=key.created_by,
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
        status=status_of(key),
    )


def etag(key: ApiKey) -> str:
    return etag_of("api_key", key.id, key.version)


def principal_of(key: ApiKey) -> Principal:
    return Principal.for_role(
        id=f"key:{key.prefix}",
        name=key.name,
        role=key.role,
        municipality=key.municipality_code,
        county=key.county_code,
        carrier=key.carrier,
    )


class ApiKeyService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.repo = ApiKeyRepository(session=ctx.session)

    async def create(
        self, data: schemas.ApiKeyCreate, *, prefix: str | None = None, secret: str | None = None
    ) -> tuple[ApiKey, str]:
        try:
            Principal.for_role(
                id="check",
                name=data.name,
                role=data.role,
                municipality=data.municipality_code,
                county=data.county_code,
                carrier=data.carrier,
            )
        except PrincipalError as exc:
            raise invalid("role", str(exc)) from exc
        geography = GeographyService(self.ctx)
        if data.municipality_code is not None:
            await geography.require_municipality(data.municipality_code, field="municipality_code")
        if data.county_code is not None:
            await geography.require_county(data.county_code, field="county_code")
        if data.expires_at is not None:
            if data.expires_at.tzinfo is None:
                raise invalid("expires_at", "give a time zone, e.g. 2027-01-31T00:00:00Z")
            if data.expires_at <= utcnow():
                raise invalid("expires_at", "must be in the future")
        prefix, key = new_key(prefix, secret)
        if await self.repo.by_prefix(prefix) is not None:
            raise Problem("conflict", "a key with this prefix exists")
        record = ApiKey(
            name=data.name.strip(),
            prefix=prefix,
            secret_hash=hash_key(key),
            role=data.role,
            municipality_code=data.municipality_code,
            county_code=data.county_code,
            carrier=data.carrier,
            created_by=self.ctx.principal.id,
            expires_at=data.expires_at,
        )
        return await self.repo.add(record), key

    async def page(self, *, limit: int, cursor: str | None) -> schemas.ApiKeyPage:
        rows, next_cursor = await self.repo.page(limit=limit, cursor=cursor)
        return schemas.ApiKeyPage(items=[to_schema(k) for k in rows], limit=limit, next_cursor=next_cursor)

    async def get(self, ident: UUID) -> ApiKey:
        key = await self.repo.get_one_or_none(id=ident)
        if key is None:
            raise not_found("api key", ident)
        return key

    async def find(self, ident_or_prefix: str) -> ApiKey:
        try:
            return await self.get(UUID(ident_or_prefix))
        except ValueError:
            key = await self.repo.by_prefix(ident_or_prefix)
            if key is None:
                raise not_found("api key", ident_or_prefix) from None
            return key

    async def revoke(self, key: ApiKey, if_match: str | None = None) -> ApiKey:
        check_if_match(if_match, etag(key))
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            await self.ctx.session.flush()
        return key

    async def authenticate(self, token: str) -> Principal:
        match = KEY_PATTERN.match(token)
        if not match:
            raise AuthError("malformed key")
        key = await self.repo.by_prefix(match.group(1))
        # Compare digests in constant time; an unknown prefix takes the same path.
        expected = key.secret_hash if key is not None else hash_key("tmn_00000000_" + "x" * 43)
        if not hmac.compare_digest(expected, hash_key(token)) or key is None:
            raise AuthError("unknown key")
        state = status_of(key)
        if state != "active":
            raise AuthError(f"{state} key")
        now = utcnow()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            key.last_used_at = now
            await self.ctx.session.flush()
        return principal_of(key)
