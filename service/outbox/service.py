"""Queueing e-mail with the change that caused it, and delivering it with retries.

Requests never talk to SMTP: `OutboxService.enqueue_email` adds a row in the caller's
transaction, so a message exists exactly when the change that caused it was committed. The
worker (`tmn worker`, or inside `tmn serve` on the embedded default) leases due rows, hands them
to the configured transport plugin, and records each outcome: sent; retried later with
exponential backoff; dead when attempts run out; held when the address rejected mail for good.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
from datetime import timedelta
from email.utils import parseaddr
from typing import Any
from uuid import UUID, uuid4

import structlog
from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.context import Context
from service.db import utcnow
from service.observability.tracing import current_traceparent, link_for
from service.outbox import schemas
from service.outbox.models import Category, EmailHold, OutboxMessage, OutboxStatus
from service.outbox.repository import OutboxRepository
from service.participants.models import Participant
from service.pluginhost import PluginFailure, PluginHost
from service.pluginspec import Attachment, OutgoingEmail, SendResult
from service.problems import Problem, not_found
from service.settings import Settings
from service.signing import sign
from service.webhooks import delivery as webhooks

logger = structlog.get_logger("tmn.outbox")


UNSUBSCRIBE = "unsubscribe"


def unsubscribe_url(settings: Settings, participant_id: UUID) -> str:
    base = (settings.public_base_url or "http://127.0.0.1:8000").rstrip("/")
    return f"{base}/v1/unsubscribe/{sign(settings, UNSUBSCRIBE, str(participant_id))}"


def message_domain(settings: Settings) -> str:
    return parseaddr(settings.email_from)[1].rpartition("@")[2] or "tmn.invalid"


def to_schema(message: OutboxMessage, *, full: bool = False) -> schemas.OutboxMessage:
    return schemas.OutboxMessage(
        id=message.id,
        category=message.category,
        recipient=message.recipient,
        language=message.language,
        subject=message.subject,
        message_id=message.message_id,
        status=message.status,
        attempts=message.attempts,
        max_attempts=message.max_attempts,
        next_attempt_at=message.next_attempt_at,
        last_error=message.last_error,
        sent_at=message.sent_at,
        created_at=message.created_at,
        text=message.text if full else None,
        html=message.html if full else None,
        attachments=[a["filename"] for a in message.attachments],
    )


class OutboxService:
    def __init__(self, ctx: Context, settings: Settings) -> None:
        self.ctx = ctx
        self.settings = settings
        self.repo = OutboxRepository(session=ctx.session)

    async def enqueue_email(
        self,
        *,
        to: str,
        subject: str,
        text: str,
        html: str | None = None,
        category: Category = Category.TRANSACTIONAL,
        language: str = "sv",
        headers: dict[str, str] | None = None,
        attachments: list[Attachment] | None = None,
    ) -> OutboxMessage:
        """Queue one message in the caller's transaction; it is sent only if that commits."""
        ident = uuid4()
        message = OutboxMessage(
            id=ident,
            category=category,
            recipient=to,
            language=language,
            subject=subject,
            text=text,
            html=html,
            headers=dict(headers or {}),
            attachments=[
                {
                    "filename": a.filename,
                    "content_type": a.content_type,
                    "content_b64": base64.b64encode(a.content).decode(),
                }
                for a in attachments or []
            ],
            message_id=f"<{ident}@{message_domain(self.settings)}>",
            max_attempts=self.settings.outbox_max_attempts,
            trace_context=current_traceparent(),
        )
        return await self.repo.add(message)

    async def enqueue_mailing(
        self,
        person: Participant,
        *,
        subject: str,
        text: str,
        html: str | None = None,
        attachments: list[Attachment] | None = None,
    ) -> OutboxMessage | None:
        """Queue a network mailing to a person who consented; None (nothing queued) otherwise.

        The message carries RFC 8058 one-click unsubscribe: a signed link that withdraws the
        person's consent, which mail clients may call with a single POST.
        """
        if not person.mailing_list_consent or person.erased_at is not None:
            return None
        url = unsubscribe_url(self.settings, person.id)
        headers = {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
        return await self.enqueue_email(
            to=person.email,
            subject=subject,
            text=text,
            html=html,
            category=Category.MAILING,
            language=person.language.value,
            headers=headers,
            attachments=attachments,
        )

    async def page(
        self, *, status: OutboxStatus | None, category: Category | None, limit: int, cursor: str | None
    ) -> schemas.OutboxPage:
        rows, next_cursor = await self.repo.page(status=status, category=category, limit=limit, cursor=cursor)
        return schemas.OutboxPage(items=[to_schema(m) for m in rows], limit=limit, next_cursor=next_cursor)

    async def get(self, ident: UUID) -> OutboxMessage:
        message = await self.repo.get_one_or_none(id=ident)
        if message is None:
            raise not_found("outbox message", ident)
        return message

    async def retry(self, ident: UUID) -> OutboxMessage:
        """Send a dead or held message again, with fresh attempts (and lift its address's hold)."""
        message = await self.get(ident)
        if message.status in (OutboxStatus.SENT, OutboxStatus.PENDING):
            raise Problem(
                "conflict", f"the message is {message.status.value}; only dead or held ones are retried"
            )
        hold = await self.ctx.session.get(EmailHold, message.recipient.lower())
        if hold is not None:
            await self.ctx.session.delete(hold)
        message.status = OutboxStatus.PENDING
        message.attempts = 0
        message.next_attempt_at = utcnow()
        message.locked_until = None
        await self.ctx.session.flush()
        return message


def _outgoing(message: OutboxMessage, settings: Settings) -> OutgoingEmail:
    return OutgoingEmail(
        message_id=message.message_id,
        sender=settings.email_from,
        to=message.recipient,
        subject=message.subject,
        text=message.text,
        html=message.html,
        headers=dict(message.headers),
        attachments=[
            Attachment(
                filename=a["filename"],
                content_type=a["content_type"],
                content=base64.b64decode(a["content_b64"]),
            )
            for a in message.attachments
        ],
    )


class OutboxWorker:
    """Delivers due messages through the configured transport plugin."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        host: PluginHost,
        settings: Settings,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.host = host
        self.settings = settings
        # Tracing's (when on): each batch a consumer span linked to the requests that queued it.
        self.tracer = tracer or trace.NoOpTracer()
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:6]}"
        self._stop = asyncio.Event()

    def backoff(self, attempts: int) -> timedelta:
        seconds = self.settings.outbox_backoff_seconds * 2 ** max(0, attempts - 1)
        return timedelta(seconds=min(seconds, self.settings.outbox_backoff_max_seconds))

    async def run_once(self) -> int:
        """Deliver one batch; returns how many messages were attempted."""
        now = utcnow()
        async with self.sessionmaker() as session:
            repo = OutboxRepository(session=session)
            ids = await repo.claim(
                now=now,
                lease_until=now + timedelta(seconds=self.settings.outbox_lease_seconds),
                worker=self.name,
                limit=self.settings.outbox_batch_size,
            )
            await session.commit()
        if not ids:
            return 0
        with self.tracer.start_as_current_span(
            "outbox deliver",
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "tmn.outbox",
                "messaging.operation": "process",
                "messaging.operation.type": "process",
                "messaging.batch.message_count": len(ids),
            },
        ) as span:
            await self._deliver(ids, span)
        return len(ids)

    async def _deliver(self, ids: list[UUID], span: trace.Span) -> None:
        """Send or call what was claimed, and record each outcome."""
        async with self.sessionmaker() as session:
            repo = OutboxRepository(session=session)
            messages = await repo.by_ids(ids)
            if span.is_recording():
                for message in messages:
                    link = link_for(message.trace_context)
                    if link is not None:
                        span.add_link(link)
            emails = [m for m in messages if m.kind == "email"]
            held = await repo.held([m.recipient.lower() for m in emails])
            for m in emails:
                if m.recipient.lower() in held:
                    m.status, m.locked_until, m.last_error = OutboxStatus.HELD, None, "address on hold"
            sendable = [m for m in emails if m.status is OutboxStatus.PENDING]
            calls = [m for m in messages if m.kind == "webhook"]
            endpoints = await webhooks.endpoints_for(session, calls)
            # No transaction stays open while SMTP servers and webhook receivers take their time;
            # the lease keeps other workers off these rows meanwhile.
            await session.commit()
            results = await self._send(sendable)
            results.update(await webhooks.deliver(self.host, calls, endpoints))
            self._record(session, sendable + calls, results)
            await session.commit()
            sent = sum(1 for m in messages if m.status is OutboxStatus.SENT)
            span.set_attribute("tmn.outbox.sent", sent)
            span.set_attribute("tmn.outbox.not_sent", len(messages) - sent)

    async def _send(self, messages: list[OutboxMessage]) -> dict[str, SendResult]:
        if not messages:
            return {}
        outgoing = [_outgoing(m, self.settings) for m in messages]
        try:
            answer: Any = await self.host.call(
                "tmn_send_email", self.settings.email_transport, messages=outgoing
            )
        except PluginFailure as exc:
            error = f"transport {exc.plugin} {exc.reason}"
            return {
                m.message_id: SendResult(message_id=m.message_id, ok=False, error=error) for m in outgoing
            }
        results = {r.message_id: r for r in answer or [] if isinstance(r, SendResult)}
        missing = SendResult(message_id="", ok=False, error="the transport gave no result for this message")
        return {m.message_id: results.get(m.message_id, missing) for m in outgoing}

    def _record(
        self, session: AsyncSession, messages: list[OutboxMessage], results: dict[str, SendResult]
    ) -> None:
        now = utcnow()
        newly_held: set[str] = set()
        for message in messages:
            result = results[message.message_id]
            message.attempts += 1
            message.locked_until = None
            message.locked_by = None
            if result.ok:
                message.status, message.sent_at, message.last_error = OutboxStatus.SENT, now, None
                continue
            message.last_error = (result.error or "failed")[:500]
            if result.permanent:
                message.status = OutboxStatus.DEAD
                address = message.recipient.lower()
                if message.kind == "email" and address not in newly_held:
                    newly_held.add(address)
                    session.add(EmailHold(address=address, reason=message.last_error))
            elif message.attempts >= message.max_attempts:
                message.status = OutboxStatus.DEAD
            else:
                message.next_attempt_at = now + self.backoff(message.attempts)
        sent = sum(1 for m in messages if m.status is OutboxStatus.SENT)
        logger.info("outbox batch", worker=self.name, attempted=len(messages), sent=sent)

    async def run(self) -> None:
        """Deliver until stopped; sleeps between empty polls."""
        while not self._stop.is_set():
            try:
                delivered = await self.run_once()
            except Exception as exc:  # the database may be away for a moment; keep the worker alive
                logger.error("outbox worker error", error=type(exc).__name__)
                delivered = 0
            if not delivered:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.settings.outbox_poll_seconds)

    def stop(self) -> None:
        self._stop.set()
