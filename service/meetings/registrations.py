"""Registrations: through an invitation's link without an account, or by a coordinator; seats,
the waitlist and its time-limited offers; attendance by hand or by the check-in QR code."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import select

from service.context import Context
from service.meetings import schemas, tokens
from service.meetings.mail import MeetingMailer, Outside
from service.meetings.models import (
    PICKUP_POINT_MEETINGS,
    Attendance,
    Invitation,
    InvitationStatus,
    Meeting,
    MeetingKind,
    MeetingStatus,
    Registration,
    RegistrationStatus,
)
from service.meetings.repository import RegistrationRepository
from service.meetings.service import MeetingService, wrong_state
from service.meetings.times import STOCKHOLM, local
from service.networks.models import MemberRole, Network, NetworkKind, NetworkMember
from service.organizations.models import Organization, OrganizationKind
from service.organizations.service import OrganizationService
from service.participants.models import Participant, ParticipantRoleKind
from service.participants.schemas import ParticipantCreate
from service.participants.service import ParticipantService, email_key
from service.problems import Problem, invalid, not_found

HOLDS_SEAT = (RegistrationStatus.CONFIRMED, RegistrationStatus.OFFERED)
ACTIVE = (RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED, RegistrationStatus.OFFERED)
ATTENDANCE_STATES = (MeetingStatus.INVITATIONS_SENT, MeetingStatus.HELD)
CHECK_IN_OPENS = timedelta(hours=2)
HIDDEN_NAME = "(anmäld / registered)"
STAFF_ROLE = {
    OrganizationKind.PICKUP_POINT: ParticipantRoleKind.PICKUP_POINT_STAFF,
    OrganizationKind.TERMINAL: ParticipantRoleKind.TERMINAL_STAFF,
    OrganizationKind.MAIL_CARRIER_OFFICE: ParticipantRoleKind.MAIL_CARRIER_STAFF,
}


def new_checkin_code() -> str:
    return secrets.token_urlsafe(18)


def to_schema(reg: Registration, name: str, organization_name: str | None) -> schemas.Registration:
    return schemas.Registration(
        id=reg.id,
        meeting_id=reg.meeting_id,
        participant_id=reg.participant_id,
        participant_name=name,
        organization_id=reg.organization_id,
        organization_name=organization_name,
        invitation_id=reg.invitation_id,
        status=reg.status,
        offer_expires_at=reg.offer_expires_at,
        attendance=reg.attendance,
        attendance_recorded_at=reg.attendance_recorded_at,
        created_at=reg.created_at,
    )


class RegistrationService:
    def __init__(self, ctx: Context, outside: Outside) -> None:
        self.ctx = ctx
        self.outside = outside
        self.settings = outside.settings
        self.repo = RegistrationRepository(session=ctx.session)
        self.mailer = MeetingMailer(ctx, outside)

    @property
    def now(self) -> datetime:
        return self.ctx.clock()

    # --- through the invitation's link ----------------------------------------------------

    async def _invitation(self, token: str, *, lock: bool = False) -> tuple[Invitation, Meeting]:
        ident = tokens.read_invitation(self.settings, token, self.now)
        invitation = await self.ctx.session.get(Invitation, ident)
        if invitation is None:
            raise not_found("link", "(invalid)")
        # The meeting row is the lock that keeps two registrations from taking the last seat.
        meeting = await self.ctx.session.get(Meeting, invitation.meeting_id, with_for_update=lock)
        if meeting is None:
            raise not_found("link", "(invalid)")
        return invitation, meeting

    async def view(self, token: str) -> schemas.PublicInvitation:
        invitation, meeting = await self._invitation(token)
        org = (
            await self.ctx.session.get(Organization, invitation.organization_id)
            if invitation.organization_id
            else None
        )
        return schemas.PublicInvitation(
            meeting_title=meeting.title,
            meeting_kind=meeting.kind,
            meeting_status=meeting.status,
            starts_at=local(meeting.starts_at),
            ends_at=local(meeting.ends_at),
            venue=meeting.venue,
            online_url=meeting.online_url,
            agenda=list(meeting.agenda),
            registration_deadline=meeting.registration_deadline,
            organization_name=org.name if org else None,
            status=invitation.status,
            seats_left=None
            if meeting.capacity is None
            else max(0, meeting.capacity - await self.repo.seats_taken(meeting.id)),
            registrations=await self._public_registrations(invitation, meeting),
            expires_at=local(meeting.ends_at),
        )

    async def register(self, token: str, data: schemas.RegistrationRequest) -> schemas.RegistrationOutcome:
        invitation, meeting = await self._invitation(token, lock=True)
        self._check_open(meeting)
        keys: set[str] = set()
        people: list[tuple[schemas.PersonIn, str]] = []
        for i, given in enumerate(data.people):
            try:
                key = email_key(given.email)
            except Problem as exc:
                raise invalid(f"people[{i}].email", "not a valid e-mail address") from exc
            if key in keys:
                raise invalid(f"people[{i}].email", "listed twice")
            keys.add(key)
            people.append((given, key))
        org = (
            await self.ctx.session.get(Organization, invitation.organization_id)
            if invitation.organization_id
            else None
        )
        for person_in, key in people:
            person = await self._find_or_create(person_in, key, org)
            if await self.repo.active_for(meeting.id, person.id) is None:
                await self._add(
                    meeting,
                    person,
                    organization_id=org.id if org else person.organization_id,
                    invitation_id=invitation.id,
                )
        invitation.status = InvitationStatus.REGISTERED
        invitation.responded_at = self.now
        invitation.decline_reason = None
        await self.ctx.session.flush()
        return schemas.RegistrationOutcome(
            registrations=await self._public_registrations(invitation, meeting)
        )

    async def decline(self, token: str, data: schemas.Decline) -> schemas.PublicInvitation:
        invitation, meeting = await self._invitation(token, lock=True)
        self._check_open(meeting)
        invitation.status = InvitationStatus.DECLINED
        invitation.responded_at = self.now
        invitation.decline_reason = data.reason
        freed = False
        for reg, _name in await self.repo.of_invitation(invitation.id):
            if reg.status in ACTIVE:
                freed = freed or reg.status in HOLDS_SEAT
                self._cancel(reg)
        await self.ctx.session.flush()
        if freed:
            await self.fill_free_seats(meeting)
        return await self.view(token)

    async def cancel_through_invitation(self, token: str, registration_id: UUID) -> schemas.PublicInvitation:
        invitation, meeting = await self._invitation(token, lock=True)
        reg = await self.ctx.session.get(Registration, registration_id)
        if reg is None or reg.invitation_id != invitation.id:
            raise not_found("registration", registration_id)
        await self._cancel_and_refill(reg, meeting)
        return await self.view(token)

    # --- through a registration's own link (cancel, accept an offered seat) ----------------

    async def _registration(self, token: str) -> tuple[Registration, Meeting]:
        ident = tokens.read_registration(self.settings, token, self.now)
        reg = await self.ctx.session.get(Registration, ident)
        if reg is None:
            raise not_found("link", "(invalid)")
        meeting = await self.ctx.session.get(Meeting, reg.meeting_id, with_for_update=True)
        if meeting is None:
            raise not_found("link", "(invalid)")
        return reg, meeting

    async def own(self, token: str) -> schemas.PublicRegistration:
        reg, meeting = await self._registration(token)
        return await self._public(reg, meeting)

    async def cancel_own(self, token: str) -> schemas.PublicRegistration:
        reg, meeting = await self._registration(token)
        await self._cancel_and_refill(reg, meeting)
        return await self._public(reg, meeting)

    async def accept(self, token: str) -> schemas.PublicRegistration:
        reg, meeting = await self._registration(token)
        self._check_open(meeting, deadline=False)
        if reg.status is RegistrationStatus.CONFIRMED:
            return await self._public(reg, meeting)
        if reg.status is not RegistrationStatus.OFFERED:
            raise Problem(
                "conflict",
                "no seat is offered to this registration"
                + (" (it was cancelled)" if reg.status is RegistrationStatus.CANCELLED else " yet"),
                extra={"current_state": reg.status.value, "allowed": [RegistrationStatus.OFFERED.value]},
            )
        if reg.offer_expires_at is not None and reg.offer_expires_at <= self.now:
            raise Problem(
                "link-expired", "the offered seat was not taken in time and went to the next in line"
            )
        reg.status = RegistrationStatus.CONFIRMED
        reg.offer_expires_at = None
        await self._confirm_mail(meeting, reg)
        await self.ctx.session.flush()
        return await self._public(reg, meeting)

    # --- by a coordinator -----------------------------------------------------------------

    async def page(
        self, meeting_id: UUID, status: RegistrationStatus | None, *, limit: int, cursor: str | None
    ) -> schemas.RegistrationPage:
        await MeetingService(self.ctx, self.outside).get(meeting_id)
        rows, next_cursor = await self.repo.page(meeting_id, status, limit=limit, cursor=cursor)
        return schemas.RegistrationPage(
            items=[to_schema(r, name, org) for r, name, org in rows], limit=limit, next_cursor=next_cursor
        )

    async def cancel_by_coordinator(self, meeting_id: UUID, registration_id: UUID) -> None:
        meeting = await MeetingService(self.ctx, self.outside).writable(meeting_id)
        reg = await self.repo.get_one_or_none(id=registration_id, meeting_id=meeting.id)
        if reg is None:
            raise not_found("registration", registration_id)
        await self._cancel_and_refill(reg, meeting)

    async def record_attendance(
        self, meeting_id: UUID, data: schemas.AttendanceRecord
    ) -> schemas.Registration:
        meeting = await self._attendance_meeting(meeting_id)
        person = await ParticipantService(self.ctx).require(data.participant_id, field="participant_id")
        organization_id = data.organization_id
        if organization_id is not None:
            await OrganizationService(self.ctx).require_active(organization_id, field="organization_id")
        reg = await self.repo.active_for(meeting.id, person.id)
        if reg is None:
            # A walk-in: present, so they have a seat whatever the capacity said.
            reg = await self._add(
                meeting,
                person,
                organization_id=organization_id or person.organization_id,
                invitation_id=None,
                force_seat=True,
                mail=False,
            )
        elif organization_id is not None:
            reg.organization_id = organization_id
        await self._mark(meeting, reg, person, data.attendance)
        return await self._one(reg)

    async def check_in(self, meeting_id: UUID, data: schemas.CheckIn) -> schemas.Registration:
        meeting = await self._attendance_meeting(meeting_id)
        reg = await self.repo.by_code(data.code.strip())
        if reg is None or reg.meeting_id != meeting.id or reg.status is RegistrationStatus.CANCELLED:
            raise not_found("registration", "with this check-in code at this meeting")
        person = await self.ctx.session.get(Participant, reg.participant_id)
        assert person is not None
        await self._mark(meeting, reg, person, Attendance.ATTENDED)
        return await self._one(reg)

    # --- seats ----------------------------------------------------------------------------

    async def fill_free_seats(self, meeting: Meeting) -> None:
        """Offer each free seat to the next in line, for a limited time (or confirm everyone
        waiting when the meeting has no capacity any more)."""
        if meeting.status is not MeetingStatus.INVITATIONS_SENT or meeting.starts_at <= self.now:
            return
        waiting = await self.repo.waiting(meeting.id)
        free = (
            None if meeting.capacity is None else meeting.capacity - await self.repo.seats_taken(meeting.id)
        )
        for reg in waiting:
            if free is not None and free <= 0:
                break
            if free is None:
                reg.status = RegistrationStatus.CONFIRMED
                await self._confirm_mail(meeting, reg)
                continue
            free -= 1
            reg.status = RegistrationStatus.OFFERED
            reg.offer_expires_at = min(
                self.now + timedelta(hours=self.settings.waitlist_offer_hours), meeting.starts_at
            )
            person = await self.ctx.session.get(Participant, reg.participant_id)
            if person is not None and person.erased_at is None:
                await self.mailer.seat_offer(
                    meeting, person, registration_id=reg.id, expires_at=reg.offer_expires_at
                )
        await self.ctx.session.flush()

    async def expire_offers(self) -> int:
        """Offers not taken in time lapse; their seats go to the next in line."""
        lapsed = await self.repo.expired_offers(self.now)
        meetings: dict[UUID, Meeting] = {}
        for reg in lapsed:
            self._cancel(reg)
            meeting = await self.ctx.session.get(Meeting, reg.meeting_id)
            if meeting is not None:
                meetings[meeting.id] = meeting
        await self.ctx.session.flush()
        for meeting in meetings.values():
            await self.fill_free_seats(meeting)
        return len(lapsed)

    # --- helpers --------------------------------------------------------------------------

    def _check_open(self, meeting: Meeting, *, deadline: bool = True) -> None:
        if meeting.status is not MeetingStatus.INVITATIONS_SENT:
            raise wrong_state(meeting, "register for", (MeetingStatus.INVITATIONS_SENT,))
        if self.now >= meeting.starts_at:
            raise Problem(
                "conflict",
                "registration closed when the meeting started",
                extra={"current_state": meeting.status.value, "allowed": []},
            )
        if (
            deadline
            and meeting.registration_deadline is not None
            and self.now.astimezone(STOCKHOLM).date() > meeting.registration_deadline
        ):
            raise Problem(
                "conflict",
                f"registration closed on {meeting.registration_deadline.isoformat()}",
                extra={"current_state": meeting.status.value, "allowed": []},
            )

    async def _find_or_create(
        self, person_in: schemas.PersonIn, key: str, org: Organization | None
    ) -> Participant:
        """The person with this e-mail address (any case), or a new one at the invited organization."""
        existing = (
            await self.ctx.session.scalars(select(Participant).where(Participant.email_normalized == key))
        ).one_or_none()
        if existing is not None:
            # Consent is given by the shop for its own staff only: a link is no authority over
            # someone working elsewhere.
            own_staff = org is not None and existing.organization_id == org.id
            if own_staff and person_in.mailing_list_consent and not existing.mailing_list_consent:
                existing.mailing_list_consent = True
                existing.consent_changed_at = self.now
            return existing
        role = STAFF_ROLE.get(org.kind) if org else None
        return await ParticipantService(self.ctx).create(
            ParticipantCreate(
                name=person_in.name,
                email=person_in.email,
                organization_id=org.id if org else None,
                roles=[role] if role else [],
                mailing_list_consent=person_in.mailing_list_consent,
            )
        )

    async def _add(
        self,
        meeting: Meeting,
        person: Participant,
        *,
        organization_id: UUID | None,
        invitation_id: UUID | None,
        force_seat: bool = False,
        mail: bool = True,
    ) -> Registration:
        full = meeting.capacity is not None and await self.repo.seats_taken(meeting.id) >= meeting.capacity
        status = RegistrationStatus.WAITLISTED if full and not force_seat else RegistrationStatus.CONFIRMED
        reg = Registration(
            meeting_id=meeting.id,
            participant_id=person.id,
            organization_id=organization_id,
            invitation_id=invitation_id,
            status=status,
            checkin_code=new_checkin_code(),
        )
        self.ctx.session.add(reg)
        await self.ctx.session.flush()
        if mail and person.erased_at is None:
            if status is RegistrationStatus.CONFIRMED:
                await self._confirm_mail(meeting, reg, person)
            else:
                await self.mailer.confirmation(
                    meeting,
                    person,
                    registration_id=reg.id,
                    checkin_code=None,
                    organization_name=await self._org_name(reg.organization_id),
                    waitlist_position=await self._position(reg),
                )
        return reg

    async def _confirm_mail(
        self, meeting: Meeting, reg: Registration, person: Participant | None = None
    ) -> None:
        person = person or await self.ctx.session.get(Participant, reg.participant_id)
        if person is None or person.erased_at is not None:
            return
        await self.mailer.confirmation(
            meeting,
            person,
            registration_id=reg.id,
            checkin_code=reg.checkin_code,
            organization_name=await self._org_name(reg.organization_id),
            waitlist_position=None,
        )

    def _cancel(self, reg: Registration) -> None:
        reg.status = RegistrationStatus.CANCELLED
        reg.cancelled_at = self.now
        reg.offer_expires_at = None

    async def _cancel_and_refill(self, reg: Registration, meeting: Meeting) -> None:
        if reg.status is RegistrationStatus.CANCELLED:
            return
        if (
            meeting.status not in (MeetingStatus.SCHEDULED, MeetingStatus.INVITATIONS_SENT)
            or self.now >= meeting.starts_at
        ):
            raise wrong_state(meeting, "cancel a registration of", (MeetingStatus.INVITATIONS_SENT,))
        held_seat = reg.status in HOLDS_SEAT
        self._cancel(reg)
        await self.ctx.session.flush()
        if held_seat:
            await self.fill_free_seats(meeting)

    async def _attendance_meeting(self, meeting_id: UUID) -> Meeting:
        meetings = MeetingService(self.ctx, self.outside)
        meeting = await meetings.get(meeting_id)
        await meetings.writable(meeting_id)
        if meeting.status not in ATTENDANCE_STATES:
            raise wrong_state(meeting, "record attendance at", ATTENDANCE_STATES)
        if meeting.status is MeetingStatus.INVITATIONS_SENT and self.now < meeting.starts_at - CHECK_IN_OPENS:
            raise Problem(
                "conflict",
                "check-in opens two hours before the meeting starts",
                extra={
                    "current_state": meeting.status.value,
                    "allowed": [s.value for s in ATTENDANCE_STATES],
                },
            )
        return meeting

    async def _mark(
        self, meeting: Meeting, reg: Registration, person: Participant, attendance: Attendance
    ) -> None:
        if attendance is Attendance.ATTENDED and reg.status is not RegistrationStatus.CONFIRMED:
            reg.status = RegistrationStatus.CONFIRMED  # they came: the seat is theirs
            reg.offer_expires_at = None
        reg.attendance = attendance
        reg.attendance_recorded_at = self.now
        await self.ctx.session.flush()
        if attendance is Attendance.ATTENDED:
            if meeting.kind is MeetingKind.COLLABORATION_MEETING:
                await self._join_local_network(meeting, person, reg.organization_id)
            if meeting.status is MeetingStatus.HELD and meeting.kind in PICKUP_POINT_MEETINGS:
                await MeetingService(self.ctx, self.outside).add_to_follow_up(meeting)

    async def _join_local_network(
        self, meeting: Meeting, person: Participant, organization_id: UUID | None
    ) -> None:
        """Everyone who attended a collaboration meeting belongs to the municipality's local network."""
        if meeting.municipality_code is None:
            return
        network = (
            await self.ctx.session.scalars(
                select(Network)
                .where(
                    Network.kind == NetworkKind.LOCAL_NETWORK,
                    Network.municipality_code == meeting.municipality_code,
                )
                .order_by(Network.created_at)
                .limit(1)
            )
        ).first()
        if network is None:
            return
        member = (
            await self.ctx.session.scalars(
                select(NetworkMember).where(
                    NetworkMember.network_id == network.id,
                    NetworkMember.participant_id == person.id,
                    NetworkMember.left_at.is_(None),
                )
            )
        ).first()
        if member is None:
            self.ctx.session.add(
                NetworkMember(
                    network_id=network.id,
                    participant_id=person.id,
                    role=MemberRole.MEMBER if organization_id is None else MemberRole.REPRESENTATIVE,
                    organization_id=organization_id,
                )
            )
            await self.ctx.session.flush()

    async def _public_registrations(
        self, invitation: Invitation, meeting: Meeting
    ) -> list[schemas.PublicRegistration]:
        out = []
        for reg, name in await self.repo.of_invitation(invitation.id):
            person = await self.ctx.session.get(Participant, reg.participant_id)
            # The link shows the names of the invited place's own staff; someone TMN knows from
            # elsewhere stays unnamed, so a link cannot be used to look people up by e-mail.
            known_here = person is not None and (
                person.id == invitation.participant_id
                or (
                    invitation.organization_id is not None
                    and person.organization_id == invitation.organization_id
                )
            )
            out.append(await self._public(reg, meeting, name if known_here else HIDDEN_NAME))
        return out

    async def _public(
        self, reg: Registration, meeting: Meeting, name: str | None = None
    ) -> schemas.PublicRegistration:
        if name is None:
            person = await self.ctx.session.get(Participant, reg.participant_id)
            name = person.name if person else ""
        return schemas.PublicRegistration(
            id=reg.id,
            name=name,
            status=reg.status,
            offer_expires_at=reg.offer_expires_at,
            waitlist_position=await self._position(reg)
            if reg.status is RegistrationStatus.WAITLISTED
            else None,
        )

    async def _position(self, reg: Registration) -> int | None:
        waiting = [r.id for r in await self.repo.waiting(reg.meeting_id)]
        return waiting.index(reg.id) + 1 if reg.id in waiting else None

    async def _org_name(self, organization_id: UUID | None) -> str:
        if organization_id is None:
            return ""
        org = await self.ctx.session.get(Organization, organization_id)
        return org.name if org else ""

    async def _one(self, reg: Registration) -> schemas.Registration:
        person = await self.ctx.session.get(Participant, reg.participant_id)
        return to_schema(
            reg, person.name if person else "", await self._org_name(reg.organization_id) or None
        )
