from __future__ import annotations

from datetime import datetime
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import Select, exists, select
from sqlalchemy.orm import aliased

from service.auth.principal import Principal
from service.db import contains_folded
from service.meetings.models import Meeting, Registration
from service.networks.models import Network, NetworkMember
from service.organizations.models import Organization
from service.pagination import Ordering, fetch_page
from service.participants.models import Employment, Participant, ParticipantRole, ParticipantRoleKind


class ParticipantRepository(SQLAlchemyAsyncRepository[Participant]):
    model_type = Participant
    by_name = Ordering("participant.name", (Participant.name, Participant.id), ("name", "id"))

    def scoped(self, principal: Principal) -> Select[tuple[Participant]]:
        """People are seen through their current employer's place."""
        stmt = select(Participant)
        clause = principal.scope.geo_filter(Organization.municipality_code, Organization.county_code)
        if clause is None:
            return stmt
        return stmt.join(Organization, Organization.id == Participant.organization_id).where(clause)

    async def get_visible(self, principal: Principal, ident: UUID) -> Participant | None:
        return (
            await self.session.scalars(self.scoped(principal).where(Participant.id == ident))
        ).one_or_none()

    async def by_email(self, email_normalized: str) -> Participant | None:
        stmt = select(Participant).where(Participant.email_normalized == email_normalized)
        return (await self.session.scalars(stmt)).one_or_none()

    async def page(
        self,
        principal: Principal,
        *,
        organization_id: UUID | None,
        role: ParticipantRoleKind | None,
        municipality: str | None,
        county: str | None,
        email: str | None,
        q: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Participant], str | None]:
        stmt = self.scoped(principal)
        if organization_id is not None:
            stmt = stmt.where(Participant.organization_id == organization_id)
        if role is not None:
            stmt = stmt.where(
                exists().where(ParticipantRole.participant_id == Participant.id, ParticipantRole.role == role)
            )
        if municipality is not None or county is not None:
            # An alias: the scoped statement may already join Organization for the scope filter.
            employer = aliased(Organization)
            org = select(employer.id).where(employer.id == Participant.organization_id)
            if municipality is not None:
                org = org.where(employer.municipality_code == municipality)
            if county is not None:
                org = org.where(employer.county_code == county)
            stmt = stmt.where(org.exists())
        if email is not None:
            stmt = stmt.where(Participant.email_normalized == email)
        if q:
            stmt = stmt.where(contains_folded(Participant.name, q))
        return await fetch_page(self.session, stmt, self.by_name, limit=limit, cursor=cursor)

    async def memberships(self, participant_id: UUID) -> list[tuple[NetworkMember, str]]:
        stmt = (
            select(NetworkMember, Network.name)
            .join(Network, Network.id == NetworkMember.network_id)
            .where(NetworkMember.participant_id == participant_id)
            .order_by(NetworkMember.joined_at, NetworkMember.id)
        )
        return list((await self.session.execute(stmt)).tuples())

    async def registrations(self, participant_id: UUID) -> list[tuple[Registration, str, datetime]]:
        stmt = (
            select(Registration, Meeting.title, Meeting.starts_at)
            .join(Meeting, Meeting.id == Registration.meeting_id)
            .where(Registration.participant_id == participant_id)
            .order_by(Meeting.starts_at, Registration.id)
        )
        return list((await self.session.execute(stmt)).tuples())


class EmploymentRepository(SQLAlchemyAsyncRepository[Employment]):
    model_type = Employment

    async def open_for(self, participant_id: UUID) -> Employment | None:
        stmt = select(Employment).where(
            Employment.participant_id == participant_id, Employment.ended_at.is_(None)
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def history(self, participant_id: UUID) -> list[tuple[Employment, str]]:
        stmt = (
            select(Employment, Organization.name)
            .join(Organization, Organization.id == Employment.organization_id)
            .where(Employment.participant_id == participant_id)
            .order_by(Employment.started_at.desc(), Employment.id.desc())
        )
        return list((await self.session.execute(stmt)).tuples())
