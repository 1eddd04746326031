from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import Select, and_, func, or_, select, update

from service.auth.principal import Principal
from service.meetings.models import (
    Attendance,
    ChecklistItem,
    Invitation,
    InvitationStatus,
    Meeting,
    MeetingKind,
    MeetingStatus,
    Registration,
    RegistrationStatus,
    Reminder,
    ReminderStatus,
)
from service.networks.models import MemberRole, Network, NetworkCounty, NetworkMember
from service.networks.repository import NetworkRepository
from service.organizations.models import Organization, OrganizationKind, OrganizationStatus
from service.pagination import Ordering, fetch_page
from service.participants.models import Participant, ParticipantRole, ParticipantRoleKind

# Seats are held by confirmed people and by offers still open.
_HOLDS_SEAT = or_(
    Registration.status == RegistrationStatus.CONFIRMED,
    Registration.status == RegistrationStatus.OFFERED,
)


class MeetingRepository(SQLAlchemyAsyncRepository[Meeting]):
    model_type = Meeting
    soonest_first = Ordering("meeting.starts_at", (Meeting.starts_at, Meeting.id), ("starts_at", "id"))

    def scoped(self, principal: Principal) -> Select[tuple[Meeting]]:
        """Meetings are seen through their network: whoever sees the network sees its meetings."""
        stmt = select(Meeting)
        clause = NetworkRepository.scope_clause(principal)
        if clause is None:
            return stmt
        return stmt.join(Network, Network.id == Meeting.network_id).where(clause)

    async def get_visible(self, principal: Principal, ident: UUID) -> Meeting | None:
        return (await self.session.scalars(self.scoped(principal).where(Meeting.id == ident))).one_or_none()

    async def page(
        self,
        principal: Principal,
        *,
        network_id: UUID | None,
        kind: MeetingKind | None,
        status: MeetingStatus | None,
        municipality: str | None,
        county: str | None,
        starts_after: datetime | None,
        starts_before: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Meeting], str | None]:
        stmt = self.scoped(principal)
        if network_id is not None:
            stmt = stmt.where(Meeting.network_id == network_id)
        if kind is not None:
            stmt = stmt.where(Meeting.kind == kind)
        if status is not None:
            stmt = stmt.where(Meeting.status == status)
        if municipality is not None:
            stmt = stmt.where(Meeting.municipality_code == municipality)
        if county is not None:
            # Local meetings by their municipality's county; regional ones by the network's counties.
            regional = (
                select(NetworkCounty.network_id)
                .where(NetworkCounty.network_id == Meeting.network_id, NetworkCounty.county_code == county)
                .exists()
            )
            stmt = stmt.where(or_(func.substr(Meeting.municipality_code, 1, 2) == county, regional))
        if starts_after is not None:
            stmt = stmt.where(Meeting.starts_at >= starts_after)
        if starts_before is not None:
            stmt = stmt.where(Meeting.starts_at < starts_before)
        return await fetch_page(self.session, stmt, self.soonest_first, limit=limit, cursor=cursor)

    async def for_feed(
        self, principal: Principal, *, network_id: UUID | None, municipality: str | None
    ) -> list[Meeting]:
        stmt = self.scoped(principal).where(Meeting.status != MeetingStatus.DRAFT)
        if network_id is not None:
            stmt = stmt.where(Meeting.network_id == network_id)
        if municipality is not None:
            stmt = stmt.where(Meeting.municipality_code == municipality)
        return list(await self.session.scalars(stmt.order_by(Meeting.starts_at, Meeting.id).limit(1000)))

    async def counts(self, meeting_ids: list[UUID]) -> dict[UUID, dict[str, int]]:
        """Invited, declined, registered, waitlisted, attended and no-shows per meeting, in two queries."""
        out: dict[UUID, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        if not meeting_ids:
            return out
        invitations = (
            select(Invitation.meeting_id, Invitation.status, func.count())
            .where(Invitation.meeting_id.in_(meeting_ids))
            .group_by(Invitation.meeting_id, Invitation.status)
        )
        for meeting_id, status, n in (await self.session.execute(invitations)).tuples():
            if status is not InvitationStatus.PENDING and status is not InvitationStatus.UNREACHABLE:
                out[meeting_id]["invited"] += n
            if status is InvitationStatus.DECLINED:
                out[meeting_id]["declined"] += n
        registrations = (
            select(Registration.meeting_id, Registration.status, Registration.attendance, func.count())
            .where(Registration.meeting_id.in_(meeting_ids))
            .group_by(Registration.meeting_id, Registration.status, Registration.attendance)
        )
        for meeting_id, reg_status, attendance, n in (await self.session.execute(registrations)).tuples():
            if reg_status is RegistrationStatus.CONFIRMED:
                out[meeting_id]["registered"] += n
            elif reg_status in (RegistrationStatus.WAITLISTED, RegistrationStatus.OFFERED):
                out[meeting_id]["waitlisted"] += n
            if attendance is Attendance.ATTENDED:
                out[meeting_id]["attended"] += n
            elif attendance is Attendance.NO_SHOW:
                out[meeting_id]["no_show"] += n
        return out

    async def checklist(self, meeting_id: UUID) -> list[ChecklistItem]:
        stmt = select(ChecklistItem).where(ChecklistItem.meeting_id == meeting_id)
        return list(await self.session.scalars(stmt.order_by(ChecklistItem.position)))

    async def checklist_progress(self, meeting_ids: list[UUID]) -> dict[UUID, list[ChecklistItem]]:
        out: dict[UUID, list[ChecklistItem]] = defaultdict(list)
        if meeting_ids:
            stmt = select(ChecklistItem).where(ChecklistItem.meeting_id.in_(meeting_ids))
            for item in await self.session.scalars(stmt.order_by(ChecklistItem.position)):
                out[item.meeting_id].append(item)
        return out

    async def draft_follow_up(self, meeting_id: UUID) -> Meeting | None:
        stmt = select(Meeting).where(
            Meeting.follow_up_of_id == meeting_id, Meeting.status == MeetingStatus.DRAFT
        )
        return (await self.session.scalars(stmt.limit(1))).one_or_none()


class InvitationRepository(SQLAlchemyAsyncRepository[Invitation]):
    model_type = Invitation
    by_id = Ordering("invitation.id", (Invitation.id,), ("id",))

    async def page(
        self, meeting_id: UUID, status: InvitationStatus | None, *, limit: int, cursor: str | None
    ) -> tuple[list[tuple[Invitation, str | None]], str | None]:
        stmt = (
            select(Invitation, Organization.name)
            .outerjoin(Organization, Organization.id == Invitation.organization_id)
            .where(Invitation.meeting_id == meeting_id)
        )
        if status is not None:
            stmt = stmt.where(Invitation.status == status)
        return await fetch_page(self.session, stmt, self.by_id, limit=limit, cursor=cursor, scalars=False)

    async def invited_organizations(self, meeting_id: UUID) -> set[UUID]:
        stmt = select(Invitation.organization_id).where(
            Invitation.meeting_id == meeting_id, Invitation.participant_id.is_(None)
        )
        return {i for i in await self.session.scalars(stmt) if i is not None}

    async def invited_people(self, meeting_id: UUID) -> set[UUID]:
        stmt = select(Invitation.participant_id).where(
            Invitation.meeting_id == meeting_id, Invitation.participant_id.is_not(None)
        )
        return {i for i in await self.session.scalars(stmt) if i is not None}

    async def with_status(self, meeting_id: UUID, statuses: tuple[InvitationStatus, ...]) -> list[Invitation]:
        stmt = select(Invitation).where(Invitation.meeting_id == meeting_id, Invitation.status.in_(statuses))
        return list(await self.session.scalars(stmt.order_by(Invitation.id)))

    async def agent_manager_invited(self, meeting_id: UUID) -> bool:
        stmt = (
            select(Invitation.id)
            .join(ParticipantRole, ParticipantRole.participant_id == Invitation.participant_id)
            .where(
                Invitation.meeting_id == meeting_id,
                Invitation.sent_at.is_not(None),
                ParticipantRole.role == ParticipantRoleKind.REGIONAL_AGENT_MANAGER,
            )
        )
        return (await self.session.scalars(stmt.limit(1))).first() is not None


class RegistrationRepository(SQLAlchemyAsyncRepository[Registration]):
    model_type = Registration
    in_line = Ordering("registration.id", (Registration.id,), ("id",))

    async def page(
        self, meeting_id: UUID, status: RegistrationStatus | None, *, limit: int, cursor: str | None
    ) -> tuple[list[tuple[Registration, str, str | None]], str | None]:
        stmt = (
            select(Registration, Participant.name, Organization.name)
            .join(Participant, Participant.id == Registration.participant_id)
            .outerjoin(Organization, Organization.id == Registration.organization_id)
            .where(Registration.meeting_id == meeting_id)
        )
        if status is not None:
            stmt = stmt.where(Registration.status == status)
        return await fetch_page(self.session, stmt, self.in_line, limit=limit, cursor=cursor, scalars=False)

    async def active_for(self, meeting_id: UUID, participant_id: UUID) -> Registration | None:
        stmt = select(Registration).where(
            Registration.meeting_id == meeting_id,
            Registration.participant_id == participant_id,
            Registration.status != RegistrationStatus.CANCELLED,
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def seats_taken(self, meeting_id: UUID) -> int:
        stmt = select(func.count()).where(Registration.meeting_id == meeting_id, _HOLDS_SEAT)
        return int((await self.session.scalar(stmt)) or 0)

    async def waiting(self, meeting_id: UUID) -> list[Registration]:
        """The waitlist in order: first come (UUIDv7 keys sort by creation), first served."""
        stmt = select(Registration).where(
            Registration.meeting_id == meeting_id, Registration.status == RegistrationStatus.WAITLISTED
        )
        return list(await self.session.scalars(stmt.order_by(Registration.id)))

    async def expired_offers(self, now: datetime) -> list[Registration]:
        stmt = select(Registration).where(
            Registration.status == RegistrationStatus.OFFERED, Registration.offer_expires_at <= now
        )
        return list(await self.session.scalars(stmt.order_by(Registration.id).limit(500)))

    async def of_invitation(self, invitation_id: UUID) -> list[tuple[Registration, str]]:
        stmt = (
            select(Registration, Participant.name)
            .join(Participant, Participant.id == Registration.participant_id)
            .where(Registration.invitation_id == invitation_id)
            .order_by(Registration.id)
        )
        return list((await self.session.execute(stmt)).tuples())

    async def by_code(self, code: str) -> Registration | None:
        return (
            await self.session.scalars(select(Registration).where(Registration.checkin_code == code))
        ).one_or_none()

    async def with_people(
        self, meeting_id: UUID, statuses: tuple[RegistrationStatus, ...], attended_only: bool = False
    ) -> list[tuple[Registration, Participant]]:
        stmt = (
            select(Registration, Participant)
            .join(Participant, Participant.id == Registration.participant_id)
            .where(Registration.meeting_id == meeting_id, Registration.status.in_(statuses))
        )
        if attended_only:
            stmt = stmt.where(Registration.attendance == Attendance.ATTENDED)
        return list((await self.session.execute(stmt.order_by(Registration.id))).tuples())

    async def attended_organizations(self, meeting_id: UUID) -> set[UUID]:
        stmt = select(Registration.organization_id).where(
            Registration.meeting_id == meeting_id, Registration.attendance == Attendance.ATTENDED
        )
        return {i for i in await self.session.scalars(stmt) if i is not None}

    async def no_show_unrecorded(self, meeting_id: UUID, now: datetime) -> int:
        """Confirmed people nobody marked: they did not come (kept, not deleted)."""
        result = await self.session.execute(
            update(Registration)
            .where(
                Registration.meeting_id == meeting_id,
                Registration.status == RegistrationStatus.CONFIRMED,
                Registration.attendance.is_(None),
            )
            .values(attendance=Attendance.NO_SHOW, attendance_recorded_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)


class ReminderRepository(SQLAlchemyAsyncRepository[Reminder]):
    model_type = Reminder

    async def of_meeting(self, meeting_id: UUID) -> list[Reminder]:
        stmt = select(Reminder).where(Reminder.meeting_id == meeting_id)
        return list(await self.session.scalars(stmt.order_by(Reminder.minutes_before.desc(), Reminder.id)))

    async def pending_with_meetings(self) -> list[tuple[Reminder, Meeting]]:
        stmt = (
            select(Reminder, Meeting)
            .join(Meeting, Meeting.id == Reminder.meeting_id)
            .where(Reminder.status == ReminderStatus.PENDING)
            .order_by(Meeting.starts_at, Reminder.id)
        )
        return list((await self.session.execute(stmt)).tuples())

    async def claim(self, reminder_id: UUID, now: datetime, status: ReminderStatus) -> bool:
        """Mark a pending reminder done; False when another runner got there first (never twice)."""
        result = await self.session.execute(
            update(Reminder)
            .where(Reminder.id == reminder_id, Reminder.status == ReminderStatus.PENDING)
            .values(status=status, sent_at=now if status is ReminderStatus.SENT else None)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0) == 1


async def municipality_audience(
    repo: InvitationRepository, municipality_code: str
) -> tuple[list[Organization], list[Participant]]:
    """The physical places of a municipality, and the carriers' regional agent managers of its area."""
    session = repo.session
    places = select(Organization).where(
        Organization.municipality_code == municipality_code,
        Organization.kind.in_(
            [OrganizationKind.PICKUP_POINT, OrganizationKind.TERMINAL, OrganizationKind.MAIL_CARRIER_OFFICE]
        ),
        Organization.status == OrganizationStatus.ACTIVE,
    )
    county = municipality_code[:2]
    # A carrier's regional agent manager works for a national company: they belong to the place
    # through an employer in the county, or through a network that covers the municipality.
    employed_here = (
        select(Organization.id)
        .where(
            Organization.id == Participant.organization_id,
            or_(Organization.county_code == county, Organization.municipality_code == municipality_code),
        )
        .exists()
    )
    member_here = (
        select(NetworkMember.id)
        .join(Network, Network.id == NetworkMember.network_id)
        .where(
            NetworkMember.participant_id == Participant.id,
            NetworkMember.left_at.is_(None),
            or_(
                Network.municipality_code == municipality_code,
                select(NetworkCounty.network_id)
                .where(NetworkCounty.network_id == Network.id, NetworkCounty.county_code == county)
                .exists(),
            ),
        )
        .exists()
    )
    managers = (
        select(Participant)
        .join(ParticipantRole, ParticipantRole.participant_id == Participant.id)
        .where(
            ParticipantRole.role == ParticipantRoleKind.REGIONAL_AGENT_MANAGER,
            Participant.erased_at.is_(None),
            or_(employed_here, member_here),
        )
    )
    return (
        list(await session.scalars(places.order_by(Organization.name, Organization.id))),
        list(await session.scalars(managers.order_by(Participant.name, Participant.id))),
    )


async def network_audience(repo: InvitationRepository, network_id: UUID) -> list[Participant]:
    stmt = (
        select(Participant)
        .join(NetworkMember, NetworkMember.participant_id == Participant.id)
        .where(
            NetworkMember.network_id == network_id,
            NetworkMember.left_at.is_(None),
            Participant.erased_at.is_(None),
        )
        .order_by(Participant.name, Participant.id)
    )
    return list(await repo.session.scalars(stmt))


async def mailing_list(repo: MeetingRepository, meeting: Meeting) -> list[Participant]:
    """The network's mailing list: current members who consented, and for a local meeting the
    members of its municipality's local networks too."""
    networks = [Network.id == meeting.network_id]
    if meeting.municipality_code is not None:
        networks.append(Network.municipality_code == meeting.municipality_code)
    stmt = (
        select(Participant)
        .join(NetworkMember, NetworkMember.participant_id == Participant.id)
        .join(Network, Network.id == NetworkMember.network_id)
        .where(
            or_(*networks),
            NetworkMember.left_at.is_(None),
            Participant.mailing_list_consent.is_(True),
            Participant.erased_at.is_(None),
        )
        .distinct()
    )
    return list(await repo.session.scalars(stmt))


async def convenor_of(repo: MeetingRepository, network_id: UUID) -> Participant | None:
    stmt = (
        select(Participant)
        .join(NetworkMember, NetworkMember.participant_id == Participant.id)
        .where(
            and_(
                NetworkMember.network_id == network_id,
                NetworkMember.role == MemberRole.CONVENOR,
                NetworkMember.left_at.is_(None),
                Participant.erased_at.is_(None),
            )
        )
        .order_by(NetworkMember.joined_at)
    )
    return (await repo.session.scalars(stmt.limit(1))).first()
