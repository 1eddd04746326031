"""Signed, expiring links: an invitation's (a shop registers its staff), a registration's (cancel,
accept an offered seat) and a survey's. Each purpose has its own salt; the expiry is inside the
signed payload, so it cannot be stretched, and it is checked against the caller's clock."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from uuid import UUID

from service.problems import Problem, not_found
from service.settings import Settings
from service.signing import InvalidToken, sign, unsign

INVITATION, REGISTRATION, SURVEY = "meeting-invitation", "meeting-registration", "meeting-survey"
SURVEY_OPEN_DAYS = 60


def _make(settings: Settings, purpose: str, values: list[str], expires_at: datetime) -> str:
    return sign(settings, purpose, [*values, int(expires_at.timestamp())])


def _read(settings: Settings, purpose: str, token: str, now: datetime, size: int) -> list[str]:
    try:
        payload = unsign(settings, purpose, token)
    except InvalidToken as exc:
        # A forged or mistyped link says no more than "not found".
        raise not_found("link", "(invalid)") from exc
    if not isinstance(payload, list) or len(payload) != size + 1 or not isinstance(payload[-1], int):
        raise not_found("link", "(invalid)")
    if now.timestamp() >= payload[-1]:
        raise Problem("link-expired", "this link has expired")
    return [str(v) for v in payload[:-1]]


def invitation_token(settings: Settings, invitation_id: UUID, expires_at: datetime) -> str:
    return _make(settings, INVITATION, [str(invitation_id)], expires_at)


def read_invitation(settings: Settings, token: str, now: datetime) -> UUID:
    return _uuid(_read(settings, INVITATION, token, now, 1)[0])


def registration_token(settings: Settings, registration_id: UUID, expires_at: datetime) -> str:
    return _make(settings, REGISTRATION, [str(registration_id)], expires_at)


def read_registration(settings: Settings, token: str, now: datetime) -> UUID:
    return _uuid(_read(settings, REGISTRATION, token, now, 1)[0])


def survey_token(settings: Settings, meeting_id: UUID, respondent: str, now: datetime) -> str:
    # The nonce makes each link single-use without naming its recipient anywhere in the database.
    nonce = secrets.token_urlsafe(16)
    return _make(
        settings, SURVEY, [str(meeting_id), respondent, nonce], now + timedelta(days=SURVEY_OPEN_DAYS)
    )


def read_survey(settings: Settings, token: str, now: datetime) -> tuple[UUID, str, str]:
    meeting_id, respondent, nonce = _read(settings, SURVEY, token, now, 3)
    return _uuid(meeting_id), respondent, hashlib.sha256(nonce.encode()).hexdigest()


def registration_page(settings: Settings, token: str) -> str:
    """Where the invitation's link points: a front end's page when configured, else TMN's own
    small registration page (the JSON is at /v1/invitations/{token})."""
    if settings.registration_url_template:
        return settings.registration_url_template.replace("{token}", token)
    base = (settings.public_base_url or "http://127.0.0.1:8000").rstrip("/")
    return f"{base}/rsvp/{token}"


def _uuid(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError as exc:
        raise not_found("link", "(invalid)") from exc
