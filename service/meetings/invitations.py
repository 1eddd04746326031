"""Invitations: whole audiences in one call, sent through the outbox with a signed link each."""

from __future__ import annotations

from uuid import UUID

from service.context import Context
from service.meetings import schemas
from service.meetings.mail import MeetingMailer, Outside
from service.meetings.models import Invitation, InvitationStatus, Meeting, MeetingStatus
from service.meetings.repository import InvitationRepository, municipality_audience, network_audience
from service.meetings.service import MeetingService, etag, require_transition, wrong_state
from service.organizations.models import Organization, OrganizationStatus
from service.organizations.service import OrganizationService
from service.participants.models import Participant
from service.participants.service import ParticipantService
from service.problems import invalid
from service.versioning import check_if_match

OPEN_FOR_INVITATIONS = (MeetingStatus.DRAFT, MeetingStatus.SCHEDULED, MeetingStatus.INVITATIONS_SENT)


def to_schema(invitation: Invitation, organization_name: str | None) -> schemas.Invitation:
    return schemas.Invitation(
        id=invitation.id,
        meeting_id=invitation.meeting_id,
        organization_id=invitation.organization_id,
        organization_name=organization_name,
        participant_id=invitation.participant_id,
        email=invitation.email,
        status=invitation.status,
        sent_at=invitation.sent_at,
        responded_at=invitation.responded_at,
    )


class InvitationService:
    def __init__(self, ctx: Context, outside: Outside) -> None:
        self.ctx = ctx
        self.outside = outside
        self.meetings = MeetingService(ctx, outside)
        self.repo = InvitationRepository(session=ctx.session)
        self.mailer = MeetingMailer(ctx, outside)

    async def add(self, meeting_id: UUID, data: schemas.InvitationCreate) -> schemas.InvitationReport:
        """Create the invitations; when the meeting's invitations are already out, send them now."""
        meeting = await self.meetings.writable(meeting_id)
        if meeting.status not in OPEN_FOR_INVITATIONS:
            raise wrong_state(meeting, "invite to", OPEN_FOR_INVITATIONS)
        if not data.audience and not data.organization_ids and not data.participant_ids:
            raise invalid("audience", "say whom to invite: an audience, organization_ids or participant_ids")
        organizations: list[Organization] = []
        people: list[Participant] = []
        if data.audience == "municipality":
            if meeting.municipality_code is None:
                raise invalid("audience", "only a local meeting has a municipality to invite")
            places, managers = await municipality_audience(self.repo, meeting.municipality_code)
            organizations += places
            people += managers
        elif data.audience == "network":
            people += await network_audience(self.repo, meeting.network_id)
        orgs = OrganizationService(self.ctx)
        for i, ident in enumerate(data.organization_ids):
            organizations.append(await orgs.require_active(ident, field=f"organization_ids[{i}]"))
        persons = ParticipantService(self.ctx)
        for i, ident in enumerate(data.participant_ids):
            person = await persons.require(ident, field=f"participant_ids[{i}]")
            if person.erased_at is not None:
                raise invalid(f"participant_ids[{i}]", "this person was erased")
            people.append(person)

        invited_orgs = await self.repo.invited_organizations(meeting.id)
        invited_people = await self.repo.invited_people(meeting.id)
        created: list[tuple[Invitation, str | None]] = []
        skipped: list[schemas.Skipped] = []
        for org in organizations:
            if org.id in invited_orgs:
                continue
            invited_orgs.add(org.id)
            if org.status is not OrganizationStatus.ACTIVE:
                continue
            invitation = Invitation(
                meeting_id=meeting.id,
                organization_id=org.id,
                email=org.email,
                status=InvitationStatus.PENDING if org.email else InvitationStatus.UNREACHABLE,
            )
            if not org.email:
                skipped.append(
                    schemas.Skipped(organization_id=org.id, reason="the organization has no e-mail address")
                )
            created.append((invitation, org.name))
        for person in people:
            if person.id in invited_people:
                continue
            invited_people.add(person.id)
            created.append(
                (
                    Invitation(
                        meeting_id=meeting.id,
                        organization_id=person.organization_id,
                        participant_id=person.id,
                        email=person.email,
                        status=InvitationStatus.PENDING,
                    ),
                    None,
                )
            )
        self.ctx.session.add_all([i for i, _ in created])
        await self.ctx.session.flush()
        if meeting.status is MeetingStatus.INVITATIONS_SENT:
            await self._send([i for i, _ in created], meeting)
        await self.ctx.session.flush()
        names = await self._org_names([i for i, _ in created])
        return schemas.InvitationReport(
            created=[
                to_schema(i, names.get(i.organization_id) if i.organization_id else None) for i, _ in created
            ],
            skipped=skipped,
        )

    async def send_all(self, meeting_id: UUID, if_match: str | None) -> Meeting:
        """The lifecycle step "invitations sent": every pending invitation goes out now."""
        meeting = await self.meetings.writable(meeting_id)
        check_if_match(if_match, etag(meeting))
        if meeting.status is not MeetingStatus.INVITATIONS_SENT:
            require_transition(meeting, MeetingStatus.INVITATIONS_SENT)
        pending = await self.repo.with_status(meeting.id, (InvitationStatus.PENDING,))
        if meeting.status is MeetingStatus.SCHEDULED and not pending:
            raise invalid("invitations", "there is nobody to invite yet: add invitations first")
        await self._send(pending, meeting)
        if meeting.status is MeetingStatus.SCHEDULED:
            meeting.status = MeetingStatus.INVITATIONS_SENT
            meeting.invitations_sent_at = self.ctx.clock()
        await self.ctx.session.flush()
        return meeting

    async def page(
        self, meeting_id: UUID, status: InvitationStatus | None, *, limit: int, cursor: str | None
    ) -> schemas.InvitationPage:
        await self.meetings.get(meeting_id)
        rows, next_cursor = await self.repo.page(meeting_id, status, limit=limit, cursor=cursor)
        return schemas.InvitationPage(
            items=[to_schema(i, name) for i, name in rows], limit=limit, next_cursor=next_cursor
        )

    async def _send(self, invitations: list[Invitation], meeting: Meeting) -> None:
        now = self.ctx.clock()
        names = await self._org_names(invitations)
        for invitation in invitations:
            if invitation.status is not InvitationStatus.PENDING or not invitation.email:
                continue
            recipient_name: str | None = None
            language = "sv"
            if invitation.participant_id is not None:
                person = await self.ctx.session.get(Participant, invitation.participant_id)
                if person is None or person.erased_at is not None:
                    invitation.status = InvitationStatus.UNREACHABLE
                    continue
                recipient_name, language = person.name, person.language.value
            await self.mailer.invitation(
                meeting,
                invitation_id=invitation.id,
                to=invitation.email,
                organization_name=names.get(invitation.organization_id, "")
                if invitation.organization_id
                else "",
                recipient_name=recipient_name,
                language=language,
            )
            invitation.status = InvitationStatus.SENT
            invitation.sent_at = now

    async def _org_names(self, invitations: list[Invitation]) -> dict[UUID | None, str]:
        ids = {i.organization_id for i in invitations if i.organization_id is not None}
        names: dict[UUID | None, str] = {}
        for ident in ids:
            org = await self.ctx.session.get(Organization, ident)
            if org is not None:
                names[ident] = org.name
        return names
