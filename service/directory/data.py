"""TMN's own directory data, offered to plugins: people who consented to be listed."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.networks.models import MemberRole, Network, NetworkKind, NetworkMember
from service.organizations.models import Organization
from service.participants.models import Participant, ParticipantRole, ParticipantRoleKind
from service.pluginspec import Contact


class TmnDirectoryData:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def listed_people(self, municipality_code: str) -> list[Contact]:
        coordinator = (
            select(ParticipantRole.participant_id)
            .join(Participant, Participant.id == ParticipantRole.participant_id)
            .join(Organization, Organization.id == Participant.organization_id)
            .where(
                ParticipantRole.role == ParticipantRoleKind.MUNICIPAL_COORDINATOR,
                Organization.municipality_code == municipality_code,
            )
        )
        convenor = (
            select(NetworkMember.participant_id)
            .join(Network, Network.id == NetworkMember.network_id)
            .where(
                Network.kind == NetworkKind.LOCAL_WORKING_GROUP,
                Network.municipality_code == municipality_code,
                NetworkMember.role == MemberRole.CONVENOR,
                NetworkMember.left_at.is_(None),
            )
        )
        stmt = (
            select(Participant, Organization.name)
            .outerjoin(Organization, Organization.id == Participant.organization_id)
            .where(
                Participant.listed_in_directory.is_(True),
                Participant.erased_at.is_(None),
                or_(Participant.id.in_(coordinator), Participant.id.in_(convenor)),
            )
            .order_by(Participant.name, Participant.id)
        )
        async with self.sessionmaker() as session:
            rows = (await session.execute(stmt)).tuples().all()
            convenors = set(await session.scalars(convenor))
        return [
            Contact(
                organization=org_name or "",
                role="Sammankallande, lokal arbetsgrupp" if person.id in convenors else "Kommunal samordnare",
                kind="person",
                phone=person.phone,
                email=person.email,
                source="municipality",
            )
            for person, org_name in rows
        ]
