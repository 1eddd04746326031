"""Idempotency-Key rules (draft-ietf-httpapi-idempotency-key-header).

The first answer to a creating request is stored in the same transaction as what it
created; a retry with the same key and the same body gets that answer again, a retry with
the same key and another body is refused (422), and keys are per principal.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import msgspec

from service.context import Context
from service.db import utcnow
from service.idempotency.models import IdempotencyRecord
from service.idempotency.repository import IdempotencyRepository
from service.problems import FieldError, Problem


class StoredResponse(msgspec.Struct, frozen=True):
    status_code: int
    body: bytes
    location: str | None
    etag: str | None


def fingerprint(method: str, path: str, body: object) -> str:
    digest = hashlib.sha256()
    digest.update(method.encode())
    digest.update(b"\0")
    digest.update(path.encode())
    digest.update(b"\0")
    digest.update(msgspec.json.encode(body))
    return digest.hexdigest()


class IdempotencyService:
    def __init__(self, ctx: Context, ttl: timedelta) -> None:
        self.ctx = ctx
        self.ttl = ttl
        self.repo = IdempotencyRepository(session=ctx.session)

    async def replay(self, key: str, method: str, path: str, print_: str) -> StoredResponse | None:
        record = await self.repo.find(self.ctx.principal.id, key)
        if record is None:
            return None
        if record.expires_at < utcnow():
            await self.repo.delete(record.id)
            await self.ctx.session.flush()
            return None
        if (record.method, record.path, record.fingerprint) != (method, path, print_):
            raise Problem(
                "idempotency-key-reused",
                "this Idempotency-Key was used for a different request",
                errors=[FieldError("Idempotency-Key", "already used with another body or path", "header")],
            )
        return StoredResponse(record.status_code, record.body, record.location, record.etag)

    async def remember(self, key: str, method: str, path: str, print_: str, response: StoredResponse) -> None:
        await self.repo.add(
            IdempotencyRecord(
                principal_id=self.ctx.principal.id,
                key=key,
                method=method,
                path=path,
                fingerprint=print_,
                status_code=response.status_code,
                body=response.body,
                location=response.location,
                etag=response.etag,
                expires_at=utcnow() + self.ttl,
            )
        )
