"""Time-driven meeting work: due reminders and lapsed seat offers. Run by the worker on a
schedule and by `tmn meetings tick`; the clock is a parameter, so tests control time.

A reminder is claimed with a conditional UPDATE before anything is queued, in the same
transaction: two workers racing for it cannot both send it, and a rolled-back run sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import msgspec
import structlog
from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.auth.principal import Principal
from service.context import Context
from service.db import utcnow
from service.meetings import tokens
from service.meetings.mail import MeetingMailer, Outside, public_url
from service.meetings.models import (
    InvitationStatus,
    Meeting,
    MeetingStatus,
    RegistrationStatus,
    Reminder,
    ReminderAudience,
    ReminderStatus,
)
from service.meetings.registrations import RegistrationService
from service.meetings.repository import InvitationRepository, RegistrationRepository, ReminderRepository
from service.participants.models import Participant

logger = structlog.get_logger("tmn.meetings")


class TickReport(msgspec.Struct, kw_only=True):
    reminders_sent: int = 0
    reminders_skipped: int = 0
    messages_queued: int = 0
    offers_lapsed: int = 0


async def tick(ctx: Context, outside: Outside) -> TickReport:
    now = ctx.clock()
    report = TickReport()
    reminders = ReminderRepository(session=ctx.session)
    mailer = MeetingMailer(ctx, outside)
    for reminder, meeting in await reminders.pending_with_meetings():
        due = meeting.starts_at - timedelta(minutes=reminder.minutes_before)
        if meeting.status is MeetingStatus.CANCELLED or now >= meeting.starts_at:
            # Never after the meeting has begun, never for a cancelled one.
            if await reminders.claim(reminder.id, now, ReminderStatus.SKIPPED):
                report.reminders_skipped += 1
            continue
        if meeting.status is not MeetingStatus.INVITATIONS_SENT or now < due:
            continue
        if not await reminders.claim(reminder.id, now, ReminderStatus.SENT):
            continue
        sent = await _send(ctx, mailer, outside, reminder, meeting)
        reminder.recipients = sent
        report.reminders_sent += 1
        report.messages_queued += sent
    report.offers_lapsed = await RegistrationService(ctx, outside).expire_offers()
    await ctx.session.flush()
    return report


async def _send(
    ctx: Context, mailer: MeetingMailer, outside: Outside, reminder: Reminder, meeting: Meeting
) -> int:
    settings = outside.settings
    count = 0
    if reminder.audience is ReminderAudience.REGISTERED:
        registrations = RegistrationRepository(session=ctx.session)
        for reg, person in await registrations.with_people(meeting.id, (RegistrationStatus.CONFIRMED,)):
            if person.erased_at is None:
                token = tokens.registration_token(settings, reg.id, meeting.ends_at)
                url = public_url(settings, f"/seat/{token}")
                await mailer.reminder(meeting, to=person.email, language=person.language.value, url=url)
                count += 1
    elif reminder.audience is ReminderAudience.NOT_ANSWERED:
        # Declined invitations, and those someone already registered through, are left alone.
        invitations = InvitationRepository(session=ctx.session)
        for invitation in await invitations.with_status(meeting.id, (InvitationStatus.SENT,)):
            if invitation.email:
                token = tokens.invitation_token(settings, invitation.id, meeting.ends_at)
                await mailer.reminder(
                    meeting, to=invitation.email, language="sv", url=tokens.registration_page(settings, token)
                )
                count += 1
    else:
        for instructor in meeting.instructors:
            teacher = await ctx.session.get(Participant, instructor.participant_id)
            if teacher is not None and teacher.erased_at is None:
                await mailer.reminder(meeting, to=teacher.email, language=teacher.language.value, url=None)
                count += 1
    return count


async def run_tick(
    sessionmaker: async_sessionmaker[AsyncSession],
    outside: Outside,
    clock: Callable[[], datetime] = utcnow,
) -> TickReport:
    async with sessionmaker() as session:
        session.info["principal_id"] = "system:meetings"
        report = await tick(Context(session=session, principal=Principal.system(), clock=clock), outside)
        await session.commit()
    if report.reminders_sent or report.offers_lapsed or report.reminders_skipped:
        logger.info("meetings tick", **msgspec.structs.asdict(report))
    return report


class MeetingTicker:
    """The worker's schedule, until stopped: `tick` every TMN_MEETINGS_TICK_SECONDS, the
    certifications' notify every TMN_CERTIFICATION_NOTIFY_SECONDS, and the carriers' registries
    every TMN_REGISTRY_SYNC_SECONDS. With tracing on, each certification notice run and each
    registry pull is a trace of its own (a job span); the frequent tick is not traced."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        outside: Outside,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.outside = outside
        self.tracer = tracer or trace.NoOpTracer()
        self._stop = asyncio.Event()
        self._pulled: dict[str, float] = {}

    async def run(self) -> None:
        from service.certifications.notify import run_notify

        last_notify = 0.0
        while not self._stop.is_set():
            try:
                await run_tick(self.sessionmaker, self.outside)
                # Certifications change with the calendar: look for due and lapsed ones now and then.
                if time.monotonic() - last_notify >= self.outside.settings.certification_notify_seconds:
                    with self._job("certification notify"):
                        await run_notify(self.sessionmaker, self.outside)
                    last_notify = time.monotonic()
            except Exception as exc:  # the database may be away for a moment; try again next time
                logger.error("meetings tick error", error=type(exc).__name__)
            await self._pull_registries()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.outside.settings.meetings_tick_seconds)

    async def _pull_registries(self) -> None:
        """The carriers named in TMN_REGISTRY_SYNC_CARRIERS, each once per TMN_REGISTRY_SYNC_SECONDS;
        a failing registry is logged and tried again next time, the others go on."""
        from service.registries.pull import run_sync

        settings = self.outside.settings
        for code in settings.registry_sync_carriers:
            if time.monotonic() - self._pulled.get(code, float("-inf")) < settings.registry_sync_seconds:
                continue
            self._pulled[code] = time.monotonic()
            try:
                with self._job("registry pull", carrier=code):
                    await run_sync(self.sessionmaker, self.outside, code)
            except Exception as exc:
                logger.error("registry sync error", carrier=code, error=type(exc).__name__)

    def _job(self, name: str, **attributes: str) -> contextlib.AbstractContextManager[trace.Span]:
        """A root span for one scheduled job (see tracing's sampler: `tmn.job` starts a trace)."""
        tags = {"tmn.job": name, **{f"tmn.{key}": value for key, value in attributes.items()}}
        return self.tracer.start_as_current_span(name, attributes=tags)

    def stop(self) -> None:
        self._stop.set()
