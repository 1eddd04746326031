"""Rules for webhooks: who may subscribe to what, signing secrets and their rotation, and
publishing events into the outbox in the caller's transaction."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import msgspec
from sqlalchemy import Select, and_, or_, select

from service.auth.principal import ensure_in_scope
from service.context import Context
from service.db import utcnow
from service.geography.service import GeographyService
from service.observability.tracing import current_traceparent
from service.outbox.models import Category, OutboxMessage, OutboxStatus
from service.outbox.service import message_domain
from service.pagination import Ordering, fetch_page
from service.pluginspec import DomainEvent
from service.problems import Problem, invalid, not_found
from service.settings import Settings
from service.versioning import check_if_match, etag_of
from service.webhooks import schemas
from service.webhooks.models import WebhookEndpoint

WEBHOOK = "webhook"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# A rotated-out secret still signs for this long, so receivers can switch without losing calls.
ROTATION_OVERLAP = timedelta(hours=24)
_BY_ID = Ordering("webhook.id", (WebhookEndpoint.id,), ("id",))


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def live_secrets(endpoint: WebhookEndpoint, now: datetime | None = None) -> list[str]:
    return endpoint.live_secrets(now or utcnow())


def to_schema(endpoint: WebhookEndpoint) -> schemas.Webhook:
    return schemas.Webhook(
        id=endpoint.id,
        name=endpoint.name,
        url=endpoint.url,
        event_types=list(endpoint.event_types),
        municipality_code=endpoint.municipality_code,
        county_code=endpoint.county_code,
        status="disabled" if endpoint.disabled_at else "active",
        disabled_reason=endpoint.disabled_reason,
        secret_count=len(live_secrets(endpoint)),
        created_by=endpoint.created_by,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def etag(endpoint: WebhookEndpoint) -> str:
    return etag_of("webhook", endpoint.id, endpoint.version)


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises for a port that is not a number)
    except ValueError as exc:  # "https://[" and the like
        raise invalid("url", "not a valid URL") from exc
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in LOOPBACK:
        return  # for development and tests on one machine
    raise invalid("url", "must be an https:// URL (http:// is accepted on loopback only)")


class WebhookService:
    def __init__(self, ctx: Context, settings: Settings) -> None:
        self.ctx = ctx
        self.settings = settings

    def _scoped(self) -> Select[tuple[WebhookEndpoint]]:
        stmt = select(WebhookEndpoint)
        clause = self.ctx.principal.scope.geo_filter(
            WebhookEndpoint.municipality_code, WebhookEndpoint.county_code
        )
        return stmt if clause is None else stmt.where(clause)

    async def create(self, data: schemas.WebhookCreate) -> tuple[WebhookEndpoint, str]:
        _check_url(data.url)
        county = data.county_code
        if data.municipality_code is not None:
            municipality = await GeographyService(self.ctx).require_municipality(
                data.municipality_code, field="municipality_code"
            )
            if county is not None and county != municipality.county_code:
                raise invalid(
                    "county_code",
                    f"municipality {municipality.code} lies in county {municipality.county_code}",
                )
            county = municipality.county_code
        elif county is not None:
            await GeographyService(self.ctx).require_county(county, field="county_code")
        ensure_in_scope(
            self.ctx.principal,
            municipality_code=data.municipality_code,
            county_code=county,
            field="municipality_code" if data.municipality_code else "county_code",
        )
        secret = new_secret()
        endpoint = WebhookEndpoint(
            name=data.name.strip(),
            url=data.url,
            event_types=sorted(set(data.event_types)),
            municipality_code=data.municipality_code,
            county_code=county,
            secrets=[{"secret": secret, "created_at": utcnow().isoformat(), "expires_at": None}],
            created_by=self.ctx.principal.id,
        )
        self.ctx.session.add(endpoint)
        await self.ctx.session.flush()
        return endpoint, secret

    async def page(self, *, limit: int, cursor: str | None) -> schemas.WebhookPage:
        rows, next_cursor = await fetch_page(
            self.ctx.session, self._scoped(), _BY_ID, limit=limit, cursor=cursor
        )
        return schemas.WebhookPage(items=[to_schema(e) for e in rows], limit=limit, next_cursor=next_cursor)

    async def get(self, ident: UUID) -> WebhookEndpoint:
        found = (
            await self.ctx.session.scalars(self._scoped().where(WebhookEndpoint.id == ident))
        ).one_or_none()
        if found is None:
            raise not_found("webhook", ident)
        return found

    async def update(
        self, ident: UUID, patch: schemas.WebhookUpdate, if_match: str | None
    ) -> WebhookEndpoint:
        endpoint = await self.get(ident)
        check_if_match(if_match, etag(endpoint))
        if patch.url is not msgspec.UNSET:
            _check_url(patch.url)
            endpoint.url = patch.url
        if patch.name is not msgspec.UNSET:
            endpoint.name = patch.name.strip()
        if patch.event_types is not msgspec.UNSET:
            endpoint.event_types = sorted(set(patch.event_types))
        await self.ctx.session.flush()
        return endpoint

    async def rotate(self, ident: UUID) -> tuple[WebhookEndpoint, str]:
        """A new signing secret; the current ones keep signing for a day, then lapse."""
        endpoint = await self.get(ident)
        now = utcnow()
        lapse = (now + ROTATION_OVERLAP).isoformat()
        kept = [
            s | {"expires_at": s.get("expires_at") or lapse}
            for s in endpoint.secrets
            if s["secret"] in live_secrets(endpoint, now)
        ]
        secret = new_secret()
        endpoint.secrets = [*kept[-2:], {"secret": secret, "created_at": now.isoformat(), "expires_at": None}]
        await self.ctx.session.flush()
        return endpoint, secret

    async def enable(self, ident: UUID) -> WebhookEndpoint:
        endpoint = await self.get(ident)
        endpoint.disabled_at, endpoint.disabled_reason = None, None
        await self.ctx.session.flush()
        return endpoint

    async def deliveries(self, ident: UUID) -> list[schemas.Delivery]:
        endpoint = await self.get(ident)
        stmt = (
            select(OutboxMessage)
            .where(OutboxMessage.kind == WEBHOOK, OutboxMessage.recipient == str(endpoint.id))
            .order_by(OutboxMessage.id.desc())
            .limit(200)
        )
        return [
            schemas.Delivery(
                id=m.id,
                webhook_id=m.headers.get("webhook-id", ""),
                event_type=m.subject,
                status=m.status.value,
                attempts=m.attempts,
                last_error=m.last_error,
                next_attempt_at=m.next_attempt_at,
                sent_at=m.sent_at,
                created_at=m.created_at,
            )
            for m in await self.ctx.session.scalars(stmt)
        ]

    async def replay(self, ident: UUID, delivery_id: UUID) -> OutboxMessage:
        """Send a delivery again, with the same webhook-id, so receivers can de-duplicate."""
        endpoint = await self.get(ident)
        original = await self.ctx.session.get(OutboxMessage, delivery_id)
        if original is None or original.kind != WEBHOOK or original.recipient != str(endpoint.id):
            raise not_found("delivery", delivery_id)
        if endpoint.disabled_at is not None:
            raise Problem("conflict", "the endpoint is disabled; enable it first")
        return self._enqueue(endpoint, original.subject, original.text, original.headers["webhook-id"])

    async def publish(self, event: DomainEvent) -> int:
        """Queue the event for every active endpoint that wants it, in the caller's transaction."""
        place = or_(
            and_(WebhookEndpoint.municipality_code.is_(None), WebhookEndpoint.county_code.is_(None)),
            WebhookEndpoint.municipality_code == event.municipality_code,
            and_(
                WebhookEndpoint.municipality_code.is_(None), WebhookEndpoint.county_code == event.county_code
            ),
        )
        stmt = select(WebhookEndpoint).where(WebhookEndpoint.disabled_at.is_(None), place)
        body = json.dumps(
            {"type": event.type, "timestamp": event.occurred_at, "data": event.data},
            separators=(",", ":"),
            ensure_ascii=False,
        )
        count = 0
        for endpoint in await self.ctx.session.scalars(stmt):
            if endpoint.event_types and event.type not in endpoint.event_types:
                continue
            self._enqueue(endpoint, event.type, body, f"msg_{event.id}")
            count += 1
        await self.ctx.session.flush()
        return count

    def _enqueue(
        self, endpoint: WebhookEndpoint, event_type: str, body: str, webhook_id: str
    ) -> OutboxMessage:
        ident = uuid4()
        message = OutboxMessage(
            id=ident,
            kind=WEBHOOK,
            category=Category.TRANSACTIONAL,
            recipient=str(endpoint.id),
            language="sv",
            subject=event_type,
            text=body,
            html=None,
            headers={"webhook-id": webhook_id},
            attachments=[],
            message_id=f"<{ident}@{message_domain(self.settings)}>",
            status=OutboxStatus.PENDING,
            max_attempts=self.settings.outbox_max_attempts,
            trace_context=current_traceparent(),
        )
        self.ctx.session.add(message)
        return message
