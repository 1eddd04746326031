"""Rules for API keys: shown once, kept as a hash, scoped like the role requires."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast
from uuid import UUID

from sqlalchemy import Table, event, or_, update
from sqlalchemy.orm import Session

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
            # This process stops accepting the key now, and again once the revocation has
            # committed (a request that read the key before the commit must not cache it).
            forget_key(key.prefix)
            self.ctx.session.info.setdefault(_FORGET_ON_COMMIT, set()).add(key.prefix)
        return key

    async def authenticate(self, token: str) -> Principal:
        return (await self.verify(token)).principal

    async def verify(self, token: str) -> VerifiedKey:
        """Check a key against the database (and record its use, at most once a minute)."""
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
        last_used = key.last_used_at
        if last_used is None or now - last_used >= LAST_USED_RESOLUTION:
            # A conditional UPDATE, not an ORM flush: several processes (or concurrent requests)
            # may record the same minute at once, and the key's version (its ETag) is not an
            # edit. Whoever comes second changes nothing, and fails nothing.
            table = cast(Table, ApiKey.__table__)
            await self.ctx.session.execute(
                update(table)
                .where(
                    table.c.id == key.id,
                    or_(table.c.last_used_at.is_(None), table.c.last_used_at < now - LAST_USED_RESOLUTION),
                )
                .values(last_used_at=now)
            )
            last_used = now
        return VerifiedKey(
            principal=principal_of(key), prefix=key.prefix, expires_at=key.expires_at, last_used_at=last_used
        )


# --- the verified keys of this process ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifiedKey:
    principal: Principal
    prefix: str
    expires_at: datetime | None
    last_used_at: datetime


@dataclass(slots=True)
class _Entry:
    key: VerifiedKey
    checked: float  # time.monotonic() of the database check


class ApiKeyCache:
    """Keys this process verified against the database, by the SHA-256 of the whole key, for
    `ttl` seconds (TMN_API_KEY_CACHE_SECONDS; 0 turns it off). An entry is dropped at once when
    the key is revoked through this process, when it expires, and when its use is due to be
    recorded again (LAST_USED_RESOLUTION), so last_used_at stays accurate to the minute; another
    process's revocation is seen within `ttl`."""

    MAX_ENTRIES = 10_000

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, _Entry] = {}
        # Bumped by every forget: a check that began before it must not fill the cache.
        self.epoch = 0
        _CACHES.add(self)

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def get(self, digest: str) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        key = entry.key
        now = utcnow()
        if (
            time.monotonic() - entry.checked >= self.ttl
            or (key.expires_at is not None and key.expires_at <= now)
            or now - key.last_used_at >= LAST_USED_RESOLUTION
        ):
            self._entries.pop(digest, None)
            return None
        return key.principal

    def put(self, digest: str, key: VerifiedKey, epoch: int) -> None:
        if not self.enabled or epoch != self.epoch:
            return
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()  # a process sees a handful of keys; this bounds a flood of them
        self._entries[digest] = _Entry(key, time.monotonic())

    def forget(self, prefix: str) -> None:
        self.epoch += 1
        for digest in [d for d, e in self._entries.items() if e.key.prefix == prefix]:
            del self._entries[digest]

    def __len__(self) -> int:
        return len(self._entries)


_CACHES: weakref.WeakSet[ApiKeyCache] = weakref.WeakSet()
_FORGET_ON_COMMIT = "tmn_forget_api_keys"


def forget_key(prefix: str) -> None:
    """Drop a key from every cache in this process (it was revoked)."""
    for cache in list(_CACHES):
        cache.forget(prefix)


@event.listens_for(Session, "after_commit")
def _forget_committed(session: Session) -> None:
    for prefix in session.info.pop(_FORGET_ON_COMMIT, ()):
        forget_key(prefix)


@event.listens_for(Session, "after_rollback")
def _nothing_to_forget(session: Session) -> None:
    session.info.pop(_FORGET_ON_COMMIT, None)
