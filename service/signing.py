"""Signed tokens for links that act without an account (one-click unsubscribe, and later RSVP).

itsdangerous signs with HMAC; each purpose has its own salt, so a token made for one cannot
be replayed against another.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from service.settings import Settings, SettingsError


class InvalidToken(Exception):
    """The token is forged, for another purpose, or expired."""


def secret_key(settings: Settings) -> str:
    if settings.secret_key:
        return settings.secret_key
    if not settings.is_embedded:
        raise SettingsError("TMN_SECRET_KEY is required with PostgreSQL (it signs the links TMN sends)")
    # The embedded default: one generated key, kept beside the database.
    path = Path(settings.data_dir) / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _serializer(settings: Settings, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key(settings), salt=f"tmn.{purpose}")


def sign(settings: Settings, purpose: str, payload: Any) -> str:
    return str(_serializer(settings, purpose).dumps(payload))


def unsign(settings: Settings, purpose: str, token: str, *, max_age_seconds: int | None = None) -> Any:
    try:
        return _serializer(settings, purpose).loads(token, max_age=max_age_seconds)
    except SignatureExpired as exc:
        raise InvalidToken("expired") from exc
    except BadSignature as exc:
        raise InvalidToken("invalid") from exc
