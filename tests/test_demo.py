"""The northern demo data, on a fresh migrated database of each backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.pool import NullPool

from service.auth.principal import Principal
from service.context import Context
from service.db import create_engine, create_sessionmaker
from service.geography.models import County
from service.migrate import upgrade
from service.networks.models import MemberRole, Network, NetworkKind, NetworkLevel, NetworkMember
from service.networks.service import NetworkService
from service.organizations.models import PHYSICAL_KINDS, Organization, OrganizationKind
from service.participants.models import Participant, ParticipantRole, ParticipantRoleKind
from service.seed import DEMO_NATIONAL_NETWORK, seed
from service.settings import Settings
from tests.conftest import PgDatabases, new_database_url

LOCAL = {"2560": "Älvsbyn", "2580": "Luleå"}


@pytest.fixture(scope="module")
async def demo_engine(backend: str, pg_databases: PgDatabases, tmp_root: Path) -> AsyncIterator[AsyncEngine]:
    url = await new_database_url(backend, pg_databases, tmp_root)
    engine = create_engine(Settings(database_url=url), poolclass=NullPool)
    await upgrade(engine)
    async with create_sessionmaker(engine)() as session:
        report = await seed(session, demo=True)
        await session.commit()
    assert report.demo == "created"
    assert (report.counties_changed, report.municipalities_changed) == (21, 290)
    yield engine
    await engine.dispose()


@pytest.fixture
async def db(demo_engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with create_sessionmaker(demo_engine)() as session:
        try:
            yield session
        finally:
            await session.rollback()


async def _one_network(db: AsyncSession, kind: NetworkKind, **where: object) -> Network:
    query = select(Network).where(Network.kind == kind)
    for column, value in where.items():
        query = query.where(getattr(Network, column) == value)
    rows = list((await db.scalars(query)).all())
    assert len(rows) == 1, f"{kind} {where}: {[n.name for n in rows]}"
    return rows[0]


async def _roles(db: AsyncSession, participant_id: UUID) -> set[ParticipantRoleKind]:
    rows = await db.scalars(
        select(ParticipantRole.role).where(ParticipantRole.participant_id == participant_id)
    )
    return set(rows.all())


async def test_national_network(db: AsyncSession) -> None:
    national = await _one_network(db, NetworkKind.NATIONAL_CONTACTS)
    assert national.name == DEMO_NATIONAL_NETWORK
    assert national.level is NetworkLevel.NATIONAL
    assert national.parent_id is None
    assert national.municipality_code is None
    assert national.county_codes == []


async def test_regional_network_covers_police_region_nord(db: AsyncSession) -> None:
    national = await _one_network(db, NetworkKind.NATIONAL_CONTACTS)
    nord = await _one_network(db, NetworkKind.REGIONAL_MANAGEMENT_GROUP)
    assert nord.level is NetworkLevel.REGIONAL
    assert nord.parent_id == national.id
    assert nord.county_codes == ["22", "23", "24", "25"]
    region_nord = await db.scalars(select(County.code).where(County.police_region == "Nord"))
    assert sorted(region_nord.all()) == nord.county_codes


async def test_norrbotten_county_group_under_region_nord(db: AsyncSession) -> None:
    nord = await _one_network(db, NetworkKind.REGIONAL_MANAGEMENT_GROUP)
    norrbotten = await _one_network(db, NetworkKind.COUNTY_GROUP)
    assert norrbotten.name == "Länsvis arbetsgrupp Norrbotten"
    assert norrbotten.level is NetworkLevel.REGIONAL
    assert norrbotten.parent_id == nord.id
    assert norrbotten.county_codes == ["25"]


@pytest.mark.parametrize("code", sorted(LOCAL))
async def test_local_groups_and_networks_under_the_county_group(db: AsyncSession, code: str) -> None:
    norrbotten = await _one_network(db, NetworkKind.COUNTY_GROUP)
    town = LOCAL[code]
    working = await _one_network(db, NetworkKind.LOCAL_WORKING_GROUP, municipality_code=code)
    mailing = await _one_network(db, NetworkKind.LOCAL_NETWORK, municipality_code=code)
    assert working.name == f"Lokal arbetsgrupp {town}"
    assert mailing.name == f"Lokalt nätverk {town}"
    for network in (working, mailing):
        assert network.level is NetworkLevel.LOCAL
        assert network.parent_id == norrbotten.id
        assert network.county_codes == []


async def test_the_tree_from_the_national_network(db: AsyncSession) -> None:
    national = await _one_network(db, NetworkKind.NATIONAL_CONTACTS)
    ctx = Context(session=db, principal=Principal.system())
    tree = await NetworkService(ctx).tree(national.id)
    depth = {node.name: node.depth for node in tree.nodes}
    assert depth[DEMO_NATIONAL_NETWORK] == 0
    assert depth["Regional ledningsgrupp polisregion Nord"] == 1
    assert depth["Länsvis arbetsgrupp Norrbotten"] == 2
    for town in LOCAL.values():
        assert depth[f"Lokal arbetsgrupp {town}"] == 3
        assert depth[f"Lokalt nätverk {town}"] == 3


async def test_norrbotten_networks_through_the_county_filter(db: AsyncSession) -> None:
    ctx = Context(session=db, principal=Principal.system())
    page = await NetworkService(ctx).page(
        level=None, kind=None, municipality=None, county="25", parent_id=None, q=None, limit=200, cursor=None
    )
    names = {n.name for n in page.items}
    assert {
        "Länsvis arbetsgrupp Norrbotten",
        "Lokal arbetsgrupp Älvsbyn",
        "Lokal arbetsgrupp Luleå",
        "Lokalt nätverk Älvsbyn",
        "Lokalt nätverk Luleå",
    } <= names


async def test_twelve_physical_places_in_alvsbyn_and_lulea(db: AsyncSession) -> None:
    places = list((await db.scalars(select(Organization).where(Organization.kind.in_(PHYSICAL_KINDS)))).all())
    assert len(places) == 12
    kinds = sorted(p.kind.value for p in places)
    assert kinds.count(OrganizationKind.PICKUP_POINT.value) == 10
    assert kinds.count(OrganizationKind.TERMINAL.value) == 1
    assert kinds.count(OrganizationKind.MAIL_CARRIER_OFFICE.value) == 1
    for place in places:
        assert place.municipality_code in LOCAL, place.name
        assert place.county_code == "25", place.name
        assert place.latitude is not None and place.longitude is not None, place.name
        # Somewhere in Norrbotten.
        assert 65.0 < place.latitude < 67.0, place.name
        assert 20.0 < place.longitude < 23.0, place.name
        assert place.street_address and place.postal_code and place.city, place.name
    per_town = {code: sum(p.municipality_code == code for p in places) for code in LOCAL}
    assert per_town == {"2560": 4, "2580": 8}


@pytest.mark.parametrize(
    "role",
    [
        ParticipantRoleKind.POLICE_OFFICER,
        ParticipantRoleKind.CUSTOMS_OFFICER,
        ParticipantRoleKind.MUNICIPAL_COORDINATOR,
        ParticipantRoleKind.COUNTY_ANDT_COORDINATOR,
    ],
)
async def test_people_in_each_role(db: AsyncSession, role: ParticipantRoleKind) -> None:
    count = await db.scalar(
        select(func.count()).select_from(ParticipantRole).where(ParticipantRole.role == role)
    )
    assert count is not None and count >= 1


async def test_a_municipal_coordinator_for_each_municipality(db: AsyncSession) -> None:
    rows = await db.execute(
        select(Organization.kind, Organization.municipality_code)
        .join(Participant, Participant.organization_id == Organization.id)
        .join(ParticipantRole, ParticipantRole.participant_id == Participant.id)
        .where(ParticipantRole.role == ParticipantRoleKind.MUNICIPAL_COORDINATOR)
    )
    employers = sorted((kind.value, code) for kind, code in rows.all())
    assert employers == [("municipality", "2560"), ("municipality", "2580")]


@pytest.mark.parametrize("code", sorted(LOCAL))
async def test_each_local_working_group_is_convened_by_a_municipal_coordinator(
    db: AsyncSession, code: str
) -> None:
    working = await _one_network(db, NetworkKind.LOCAL_WORKING_GROUP, municipality_code=code)
    convenors = list(
        (
            await db.scalars(
                select(NetworkMember).where(
                    NetworkMember.network_id == working.id,
                    NetworkMember.role == MemberRole.CONVENOR,
                    NetworkMember.left_at.is_(None),
                )
            )
        ).all()
    )
    assert len(convenors) == 1
    convenor = convenors[0]
    assert ParticipantRoleKind.MUNICIPAL_COORDINATOR in await _roles(db, convenor.participant_id)
    # The coordinator of this municipality, not of the other one.
    person = await db.get(Participant, convenor.participant_id)
    assert person is not None and person.organization_id is not None
    employer = await db.get(Organization, person.organization_id)
    assert employer is not None
    assert employer.municipality_code == code


async def test_seeding_the_demo_again_changes_nothing(db: AsyncSession) -> None:
    async def counts() -> tuple[int | None, ...]:
        return tuple(
            [
                await db.scalar(select(func.count()).select_from(model))
                for model in (Network, Organization, Participant, NetworkMember)
            ]
        )

    before = await counts()
    report = await seed(db, demo=True)
    await db.flush()
    assert report.demo == "present"
    assert (report.counties_changed, report.municipalities_changed) == (0, 0)
    assert await counts() == before


async def test_alvsbyns_next_collaboration_meeting_is_ready_to_send(db: AsyncSession) -> None:
    from service.meetings.models import Invitation, InvitationStatus, Meeting, MeetingKind, MeetingStatus

    [meeting] = (
        await db.scalars(select(Meeting).where(Meeting.kind == MeetingKind.COLLABORATION_MEETING))
    ).all()
    assert (meeting.status, meeting.municipality_code) == (MeetingStatus.SCHEDULED, "2560")
    invitations = (await db.scalars(select(Invitation).where(Invitation.meeting_id == meeting.id))).all()
    # Every place of Älvsbyn with an e-mail address, and the regional agent manager, waiting to be sent.
    places = await db.scalar(
        select(func.count())
        .select_from(Organization)
        .where(Organization.municipality_code == "2560", Organization.kind.in_(PHYSICAL_KINDS))
    )
    assert len(invitations) == (places or 0) + 1
    assert {i.status for i in invitations} == {InvitationStatus.PENDING}
    assert any(i.participant_id is not None for i in invitations)
