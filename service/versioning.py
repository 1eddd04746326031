"""ETags from row versions, and the If-Match rule every update and archive follows."""

from __future__ import annotations

import hashlib

from service.problems import Problem


def etag_of(kind: str, ident: object, version: int) -> str:
    digest = hashlib.sha256(f"{kind}:{ident}:{version}".encode()).hexdigest()[:20]
    return f'"{digest}"'


def etag_matches(header: str, etag: str) -> bool:
    candidates = {c.strip().removeprefix("W/") for c in header.split(",")}
    return "*" in candidates or etag in candidates


def check_if_match(if_match: str | None, etag: str) -> None:
    """Refuse a write whose If-Match names an older version (412)."""
    if if_match is not None and not etag_matches(if_match, etag):
        raise Problem(
            "precondition-failed",
            "If-Match does not match the current ETag; read the resource again",
            headers={"ETag": etag},
        )
