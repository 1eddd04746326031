"""The e-mails of a meeting, queued in the caller's transaction through the outbox.

Invitations, confirmations, seat offers, changes and cancellations carry an iCalendar file with
the meeting's stable UID and current SEQUENCE; confirmations carry the check-in QR code.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast
from uuid import UUID

import segno
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.context import Context
from service.directory.data import TmnDirectoryData
from service.directory.service import DirectoryCache, contacts_for
from service.geography.models import Municipality
from service.meetings import calendar, tokens
from service.meetings.models import Meeting
from service.meetings.repository import MeetingRepository, convenor_of
from service.messages import render_email
from service.outbox.models import Category
from service.outbox.service import OutboxService, message_domain
from service.participants.models import Participant
from service.pluginhost import PluginHost
from service.pluginspec import Attachment
from service.settings import Settings


@dataclass(frozen=True)
class Outside:
    """What meeting e-mails need beyond the database: settings, and for the "whom to call"
    section of invitations, the directory plugins and their cache (absent in some CLI runs)."""

    settings: Settings
    plugins: PluginHost | None = None
    directory_cache: DirectoryCache | None = None


def public_url(settings: Settings, path: str) -> str:
    base = (settings.public_base_url or "http://127.0.0.1:8000").rstrip("/")
    return f"{base}{path}"


def qr_png(payload: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(payload, error="m").save(buffer, kind="png", scale=8, border=4)
    return buffer.getvalue()


async def whom_to_call(ctx: Context, outside: Outside, municipality_code: str | None) -> list[dict[str, str]]:
    """The municipality's contacts with a phone, for invitations and certificates (people who
    consented to be listed are left to the directory itself: a document outlives consent)."""
    host, cache = outside.plugins, outside.directory_cache
    if municipality_code is None or host is None or cache is None:
        return []
    session = ctx.session

    @asynccontextmanager
    async def same_session() -> AsyncIterator[AsyncSession]:
        # The municipality source reads consent inside the caller's transaction.
        yield session

    data = TmnDirectoryData(cast(async_sessionmaker[AsyncSession], same_session))
    answer = await contacts_for(host, data, cache, municipality_code)
    return [
        {"organization": c.organization, "role": c.role, "phone": c.phone}
        for c in answer.contacts
        if c.phone and c.kind != "person"
    ][:8]


class MeetingMailer:
    def __init__(self, ctx: Context, outside: Outside) -> None:
        self.ctx = ctx
        self.outside = outside
        self.settings = outside.settings
        self.outbox = OutboxService(ctx, outside.settings)
        self._shared: dict[UUID, dict[str, Any]] = {}

    # --- building blocks --------------------------------------------------------------------

    def uid(self, meeting: Meeting) -> str:
        return f"meeting-{meeting.id}@{message_domain(self.settings)}"

    def ics(
        self,
        meeting: Meeting,
        method: Literal["REQUEST", "CANCEL"],
        *,
        attendee_email: str | None = None,
        attendee_name: str | None = None,
        organizer: tuple[str, str] | None = None,
    ) -> Attachment:
        event = calendar.CalendarEvent(
            uid=self.uid(meeting),
            sequence=meeting.sequence,
            title=meeting.title,
            starts_at=meeting.starts_at,
            ends_at=meeting.ends_at,
            location=meeting.venue,
            online_url=meeting.online_url,
            description="\n".join(meeting.agenda),
            organizer_name=organizer[0] if organizer else None,
            organizer_email=organizer[1] if organizer else None,
            attendee_email=attendee_email,
            attendee_name=attendee_name,
            cancelled=method == "CANCEL",
            stamp=self.ctx.clock(),
        )
        name = "cancel.ics" if method == "CANCEL" else "invite.ics"
        return Attachment(
            filename=name,
            content_type=f"text/calendar; charset=utf-8; method={method}",
            content=calendar.invitation_ics(event, method=method),
        )

    async def shared(self, meeting: Meeting) -> dict[str, Any]:
        """What every message of a meeting says: the coordinator, the place, whom to call."""
        if meeting.id in self._shared:
            return self._shared[meeting.id]
        coordinator: Participant | None = None
        if meeting.coordinator_id is not None:
            coordinator = await self.ctx.session.get(Participant, meeting.coordinator_id)
        if coordinator is None or coordinator.erased_at is not None:
            coordinator = await convenor_of(MeetingRepository(session=self.ctx.session), meeting.network_id)
        municipality = (
            await self.ctx.session.get(Municipality, meeting.municipality_code)
            if meeting.municipality_code
            else None
        )
        fallback = self.settings.email_from
        values: dict[str, Any] = {
            "meeting_title": meeting.title,
            "meeting_kind": meeting.kind.value,
            "starts_at": meeting.starts_at,
            "ends_at": meeting.ends_at,
            "venue": meeting.venue,
            "online_url": meeting.online_url,
            "agenda": list(meeting.agenda),
            "coordinator_name": coordinator.name if coordinator else "Tillsammans mot nätdroger",
            "coordinator_email": coordinator.email if coordinator else fallback,
            "coordinator_phone": coordinator.phone if coordinator else None,
            "municipality_name": municipality.name if municipality else "",
            "contacts": await self._contacts(meeting.municipality_code),
        }
        self._shared[meeting.id] = values
        return values

    def organizer(self, shared: dict[str, Any]) -> tuple[str, str]:
        return (str(shared["coordinator_name"]), str(shared["coordinator_email"]))

    async def _contacts(self, municipality_code: str | None) -> list[dict[str, str]]:
        return await whom_to_call(self.ctx, self.outside, municipality_code)

    # --- messages ---------------------------------------------------------------------------

    async def invitation(
        self,
        meeting: Meeting,
        *,
        invitation_id: UUID,
        to: str,
        organization_name: str,
        recipient_name: str | None,
        language: str = "sv",
    ) -> None:
        shared = await self.shared(meeting)
        token = tokens.invitation_token(self.settings, invitation_id, meeting.ends_at)
        deadline = meeting.registration_deadline or meeting.starts_at.date()
        rendered = render_email(
            "meeting_invitation",
            language,
            {
                **shared,
                "organization_name": organization_name,
                "recipient_name": recipient_name,
                "registration_url": tokens.registration_page(self.settings, token),
                "registration_deadline": deadline,
            },
        )
        ics = self.ics(meeting, "REQUEST", attendee_email=to, organizer=self.organizer(shared))
        await self.outbox.enqueue_email(
            to=to,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            language=language,
            attachments=[ics],
        )

    async def confirmation(
        self,
        meeting: Meeting,
        person: Participant,
        *,
        registration_id: UUID,
        checkin_code: str | None,
        organization_name: str,
        waitlist_position: int | None,
    ) -> None:
        shared = await self.shared(meeting)
        token = tokens.registration_token(self.settings, registration_id, meeting.ends_at)
        rendered = render_email(
            "registration_confirmed",
            person.language.value,
            {
                **shared,
                "recipient_name": person.name,
                "organization_name": organization_name,
                "waitlisted": checkin_code is None,
                "waitlist_position": waitlist_position,
                "checkin_code": checkin_code,
                "cancel_url": public_url(self.settings, f"/seat/{token}"),
            },
        )
        attachments = []
        if checkin_code is not None:
            attachments.append(
                Attachment(filename="incheckning.png", content_type="image/png", content=qr_png(checkin_code))
            )
            attachments.append(
                self.ics(
                    meeting,
                    "REQUEST",
                    attendee_email=person.email,
                    attendee_name=person.name,
                    organizer=self.organizer(shared),
                )
            )
        await self.outbox.enqueue_email(
            to=person.email,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            language=person.language.value,
            attachments=attachments,
        )

    async def seat_offer(
        self, meeting: Meeting, person: Participant, *, registration_id: UUID, expires_at: datetime
    ) -> None:
        shared = await self.shared(meeting)
        token = tokens.registration_token(self.settings, registration_id, meeting.ends_at)
        rendered = render_email(
            "waitlist_offer",
            person.language.value,
            {
                **shared,
                "recipient_name": person.name,
                "accept_url": public_url(self.settings, f"/seat/{token}"),
                "offer_expires_at": expires_at,
            },
        )
        await self.outbox.enqueue_email(
            to=person.email,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            language=person.language.value,
        )

    async def change(
        self,
        meeting: Meeting,
        *,
        to: str,
        recipient_name: str | None,
        language: str,
        cancelled: bool,
        invitation_id: UUID | None = None,
    ) -> None:
        """An update (new time or place) or a cancellation, with the calendar entry to match."""
        shared = await self.shared(meeting)
        if cancelled:
            rendered = render_email(
                "meeting_cancelled",
                language,
                {**shared, "recipient_name": recipient_name, "reason": meeting.cancel_reason},
            )
        else:
            url = None
            if invitation_id is not None:
                token = tokens.invitation_token(self.settings, invitation_id, meeting.ends_at)
                url = tokens.registration_page(self.settings, token)
            rendered = render_email(
                "meeting_updated",
                language,
                {**shared, "recipient_name": recipient_name, "registration_url": url},
            )
        ics = self.ics(
            meeting,
            "CANCEL" if cancelled else "REQUEST",
            attendee_email=to,
            attendee_name=recipient_name,
            organizer=self.organizer(shared),
        )
        await self.outbox.enqueue_email(
            to=to,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            language=language,
            attachments=[ics],
        )

    async def reminder(self, meeting: Meeting, *, to: str, language: str, url: str | None) -> None:
        shared = await self.shared(meeting)
        rendered = render_email(
            "meeting_reminder",
            language,
            {**shared, "registration_url": url or public_url(self.settings, "/")},
        )
        await self.outbox.enqueue_email(
            to=to, subject=rendered.subject, text=rendered.text, html=rendered.html, language=language
        )

    async def minutes(self, meeting: Meeting, person: Participant, *, mailing: bool) -> bool:
        """Attendees get the minutes as part of their meeting; the rest of the list as a mailing
        (consent required, one-click unsubscribe)."""
        shared = await self.shared(meeting)
        held_on = (meeting.held_at or meeting.starts_at).date()
        rendered = render_email(
            "minutes",
            person.language.value,
            {
                **shared,
                "held_on": held_on,
                "minutes_text": meeting.minutes or "",
                "recipient_name": person.name,
            },
        )
        if mailing:
            return (
                await self.outbox.enqueue_mailing(
                    person, subject=rendered.subject, text=rendered.text, html=rendered.html
                )
                is not None
            )
        await self.outbox.enqueue_email(
            to=person.email,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            language=person.language.value,
            category=Category.TRANSACTIONAL,
        )
        return True

    async def survey(self, meeting: Meeting, person: Participant, *, respondent: str) -> None:
        shared = await self.shared(meeting)
        token = tokens.survey_token(self.settings, meeting.id, respondent, self.ctx.clock())
        rendered = render_email(
            "survey_invitation",
            person.language.value,
            {
                **shared,
                "recipient_name": person.name,
                "held_on": (meeting.held_at or meeting.starts_at).date(),
                "survey_url": public_url(self.settings, f"/survey/{token}"),
                "respondent": respondent,
            },
        )
        await self.outbox.enqueue_email(
            to=person.email,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            language=person.language.value,
        )
