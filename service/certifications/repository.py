from __future__ import annotations

from datetime import date
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import ColumnElement, Select, and_, func, select

from service.auth.principal import Principal
from service.certifications.models import (
    Certification,
    CertificationEvent,
    CertificationPeriod,
    CertificationState,
    CertificationStatus,
)
from service.meetings.models import PICKUP_POINT_MEETINGS, Attendance, Meeting, MeetingStatus, Registration
from service.networks.models import Network, NetworkMember
from service.organizations.models import Organization
from service.pagination import Ordering, fetch_page
from service.participants.models import Participant


def status_clause(status: CertificationStatus, today: date) -> ColumnElement[bool]:
    """The computed status as SQL over the newest period's dates (the same rule as rules.status)."""
    active = Certification.state == CertificationState.ACTIVE
    return {
        CertificationStatus.REVOKED: Certification.state == CertificationState.REVOKED,
        CertificationStatus.SUSPENDED: Certification.state == CertificationState.SUSPENDED,
        CertificationStatus.ACTIVE: and_(active, Certification.window_opens > today),
        CertificationStatus.FOLLOW_UP_DUE: and_(
            active, Certification.window_opens <= today, Certification.valid_until > today
        ),
        CertificationStatus.IN_GRACE: and_(
            active, Certification.valid_until <= today, Certification.grace_until > today
        ),
        CertificationStatus.LAPSED: and_(active, Certification.grace_until <= today),
    }[status]


class CertificationRepository(SQLAlchemyAsyncRepository[Certification]):
    model_type = Certification
    by_serial = Ordering("certification.serial", (Certification.serial,), ("serial",))

    def scoped(self, principal: Principal) -> Select[tuple[Certification, str]]:
        stmt = select(Certification, Organization.name).join(
            Organization, Organization.id == Certification.organization_id
        )
        clause = principal.scope.geo_filter(Organization.municipality_code, Organization.county_code)
        return stmt if clause is None else stmt.where(clause)

    async def get_visible(self, principal: Principal, ident: UUID) -> tuple[Certification, str] | None:
        row = (await self.session.execute(self.scoped(principal).where(Certification.id == ident))).first()
        return (row[0], row[1]) if row else None

    async def page(
        self,
        principal: Principal,
        *,
        today: date,
        organization_id: UUID | None,
        municipality: str | None,
        county: str | None,
        status: CertificationStatus | None,
        due_before: date | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[tuple[Certification, str]], str | None]:
        stmt = self.scoped(principal)
        if organization_id is not None:
            stmt = stmt.where(Certification.organization_id == organization_id)
        if municipality is not None:
            stmt = stmt.where(Certification.municipality_code == municipality)
        if county is not None:
            stmt = stmt.where(func.substr(Certification.municipality_code, 1, 2) == county)
        if status is not None:
            stmt = stmt.where(status_clause(status, today))
        if due_before is not None:
            stmt = stmt.where(
                Certification.valid_until < due_before, Certification.state == CertificationState.ACTIVE
            )
        rows, next_cursor = await fetch_page(
            self.session, stmt, self.by_serial, limit=limit, cursor=cursor, scalars=False
        )
        return [(c, name) for c, name in rows], next_cursor

    async def next_serial(self) -> int:
        return int((await self.session.scalar(select(func.max(Certification.serial)))) or 0) + 1

    async def periods(self, certification_id: UUID) -> list[CertificationPeriod]:
        stmt = select(CertificationPeriod).where(CertificationPeriod.certification_id == certification_id)
        return list(
            await self.session.scalars(stmt.order_by(CertificationPeriod.valid_from, CertificationPeriod.id))
        )

    async def events(self, certification_id: UUID) -> list[CertificationEvent]:
        stmt = select(CertificationEvent).where(CertificationEvent.certification_id == certification_id)
        return list(await self.session.scalars(stmt.order_by(CertificationEvent.id)))

    async def with_state(self, states: tuple[CertificationState, ...]) -> list[int]:
        stmt = select(Certification.serial).where(Certification.state.in_(states))
        return list(await self.session.scalars(stmt))

    async def needing_notice(self, today: date) -> list[Certification]:
        """Active certifications whose window has opened: candidates for due, grace and lapse."""
        stmt = select(Certification).where(
            Certification.state == CertificationState.ACTIVE, Certification.window_opens <= today
        )
        return list(await self.session.scalars(stmt.order_by(Certification.serial)))

    async def trained_staff(self, organization_ids: list[UUID]) -> dict[UUID, list[tuple[UUID, str]]]:
        """Per organization: its current staff who attended a meeting with pickup points."""
        out: dict[UUID, list[tuple[UUID, str]]] = {i: [] for i in organization_ids}
        if not organization_ids:
            return out
        attended = (
            select(Registration.participant_id)
            .join(Meeting, Meeting.id == Registration.meeting_id)
            .where(
                Registration.attendance == Attendance.ATTENDED,
                Meeting.kind.in_(sorted(PICKUP_POINT_MEETINGS)),
            )
        )
        stmt = (
            select(Participant.organization_id, Participant.id, Participant.name)
            .where(
                Participant.organization_id.in_(organization_ids),
                Participant.erased_at.is_(None),
                Participant.id.in_(attended),
            )
            .order_by(Participant.name, Participant.id)
        )
        for org_id, pid, name in (await self.session.execute(stmt)).tuples():
            if org_id is not None:
                out[org_id].append((pid, name))
        return out

    async def attended(self, meeting_id: UUID, organization_id: UUID) -> list[Participant]:
        stmt = (
            select(Participant)
            .join(Registration, Registration.participant_id == Participant.id)
            .where(
                Registration.meeting_id == meeting_id,
                Registration.organization_id == organization_id,
                Registration.attendance == Attendance.ATTENDED,
            )
        )
        return list(await self.session.scalars(stmt))

    async def attending_organizations(self, meeting_id: UUID) -> list[UUID]:
        stmt = select(Registration.organization_id).where(
            Registration.meeting_id == meeting_id, Registration.attendance == Attendance.ATTENDED
        )
        return sorted({i for i in await self.session.scalars(stmt) if i is not None})

    async def has_network_contact(self, organization: Organization) -> bool:
        """At least one of its people consented to mail and belongs to a local network of its
        municipality: the local network is reachable by e-mail (a certification requirement)."""
        stmt = (
            select(Participant.id)
            .join(NetworkMember, NetworkMember.participant_id == Participant.id)
            .join(Network, Network.id == NetworkMember.network_id)
            .where(
                Participant.organization_id == organization.id,
                Participant.mailing_list_consent.is_(True),
                Participant.erased_at.is_(None),
                NetworkMember.left_at.is_(None),
                Network.municipality_code == organization.municipality_code,
            )
        )
        return (await self.session.scalars(stmt.limit(1))).first() is not None

    async def held_meeting(self, meeting_id: UUID) -> Meeting | None:
        meeting = await self.session.get(Meeting, meeting_id)
        if meeting is None or meeting.status not in (MeetingStatus.HELD, MeetingStatus.CLOSED):
            return None
        return meeting
