"""Scope is enforced in the services' queries: a principal of Älvsbyn neither sees nor changes Luleå.

Authentication arrives later; these tests hand services a scoped principal directly, which is
exactly what the auth layer will do.
"""

from __future__ import annotations

import pytest

from service.networks.models import MemberRole, NetworkKind
from service.networks.schemas import MemberCreate, NetworkCreate, NetworkUpdate
from service.networks.service import NetworkService
from service.organizations.models import OrganizationKind
from service.organizations.schemas import OrganizationCreate, OrganizationUpdate
from service.organizations.service import OrganizationService
from service.participants.schemas import ParticipantCreate
from service.participants.service import ParticipantService
from service.problems import Problem
from tests.helpers import context, county_coordinator, municipal_coordinator


def place(name: str, municipality: str) -> OrganizationCreate:
    return OrganizationCreate(
        kind=OrganizationKind.PICKUP_POINT,
        name=name,
        street_address="Storgatan 1",
        postal_code="94231",
        city="Ort",
        latitude=65.6,
        longitude=21.0,
        municipality_code=municipality,
    )


@pytest.fixture
async def world(session) -> dict[str, object]:
    admin = context(session)
    orgs, people, networks = OrganizationService(admin), ParticipantService(admin), NetworkService(admin)
    alvsby = await orgs.create(place("Älvsby Livs", "2560"))
    lulea = await orgs.create(place("Luleå Kiosk", "2580"))
    stockholm = await orgs.create(place("Sergels Paket", "0180"))
    anna = await people.create(
        ParticipantCreate(name="Anna", email="anna@alvsby.example", organization_id=alvsby.id)
    )
    lars = await people.create(
        ParticipantCreate(name="Lars", email="lars@lulea.example", organization_id=lulea.id)
    )
    national = await networks.create(NetworkCreate(name="Nationellt", kind=NetworkKind.NATIONAL_CONTACTS))
    nord = await networks.create(
        NetworkCreate(
            name="Nord",
            kind=NetworkKind.REGIONAL_MANAGEMENT_GROUP,
            parent_id=national.id,
            county_codes=["22", "23", "24", "25"],
        )
    )
    sthlm = await networks.create(
        NetworkCreate(
            name="Stockholm", kind=NetworkKind.COUNTY_GROUP, parent_id=national.id, county_codes=["01"]
        )
    )
    local_alvsby = await networks.create(
        NetworkCreate(
            name="LAG Älvsbyn",
            kind=NetworkKind.LOCAL_WORKING_GROUP,
            parent_id=nord.id,
            municipality_code="2560",
        )
    )
    local_lulea = await networks.create(
        NetworkCreate(
            name="LAG Luleå",
            kind=NetworkKind.LOCAL_WORKING_GROUP,
            parent_id=nord.id,
            municipality_code="2580",
        )
    )
    await session.flush()
    return {
        "alvsby": alvsby,
        "lulea": lulea,
        "stockholm": stockholm,
        "anna": anna,
        "lars": lars,
        "national": national,
        "nord": nord,
        "sthlm": sthlm,
        "local_alvsby": local_alvsby,
        "local_lulea": local_lulea,
    }


async def _org_names(service: OrganizationService) -> list[str]:
    page = await service.page(
        kind=None, municipality=None, county=None, q=None, status=None, limit=200, cursor=None
    )
    return [o.name for o in page.items]


async def test_municipal_scope_filters_organizations(session, world) -> None:
    orgs = OrganizationService(context(session, municipal_coordinator("2560")))
    assert await _org_names(orgs) == ["Älvsby Livs"]
    assert (await orgs.get(world["alvsby"].id)).name == "Älvsby Livs"
    for foreign in ("lulea", "stockholm"):
        with pytest.raises(Problem) as caught:
            await orgs.get(world[foreign].id)
        assert caught.value.status_code == 404  # existence does not leak


async def test_municipal_scope_cannot_change_or_create_elsewhere(session, world) -> None:
    orgs = OrganizationService(context(session, municipal_coordinator("2560")))
    with pytest.raises(Problem) as caught:
        await orgs.update(world["lulea"].id, OrganizationUpdate(name="Kapad"), None)
    assert caught.value.status_code == 404
    with pytest.raises(Problem) as caught:
        await orgs.create(place("Nytt i Luleå", "2580"))
    assert caught.value.status_code == 403
    with pytest.raises(Problem) as caught:
        await orgs.update(world["alvsby"].id, OrganizationUpdate(municipality_code="2580"), None)
    assert caught.value.status_code == 403
    assert (await orgs.create(place("Nytt i Älvsbyn", "2560"))).municipality_code == "2560"


async def test_county_scope_sees_the_county(session, world) -> None:
    orgs = OrganizationService(context(session, county_coordinator("25")))
    assert await _org_names(orgs) == ["Luleå Kiosk", "Älvsby Livs"]


async def test_people_are_seen_through_their_employer(session, world) -> None:
    people = ParticipantService(context(session, municipal_coordinator("2560")))
    page = await people.page(
        organization_id=None,
        role=None,
        municipality=None,
        county=None,
        email=None,
        q=None,
        limit=200,
        cursor=None,
    )
    assert [p.name for p in page.items] == ["Anna"]
    with pytest.raises(Problem) as caught:
        await people.get(world["lars"].id)
    assert caught.value.status_code == 404


async def test_networks_in_scope(session, world) -> None:
    networks = NetworkService(context(session, municipal_coordinator("2560")))
    page = await networks.page(
        level=None, kind=None, municipality=None, county=None, parent_id=None, q=None, limit=200, cursor=None
    )
    # The national network and the region above them are context; Luleå's and Stockholm's are not.
    assert [n.name for n in page.items] == ["LAG Älvsbyn", "Nationellt", "Nord"]
    tree = await networks.tree(world["national"].id)
    assert [n.name for n in tree.nodes] == ["Nationellt", "Nord", "LAG Älvsbyn"]
    with pytest.raises(Problem) as caught:
        await networks.get(world["local_lulea"].id)
    assert caught.value.status_code == 404
    with pytest.raises(Problem) as caught:
        await networks.update(world["local_lulea"].id, NetworkUpdate(name="x"), None)
    assert caught.value.status_code == 404
    with pytest.raises(Problem) as caught:
        await networks.add_member(world["local_lulea"].id, MemberCreate(participant_id=world["anna"].id))
    assert caught.value.status_code == 404
    member = await networks.add_member(
        world["local_alvsby"].id, MemberCreate(participant_id=world["anna"].id, role=MemberRole.CONVENOR)
    )
    assert member.organization_id == world["alvsby"].id
    with pytest.raises(Problem) as caught:  # a person outside the scope cannot be added
        await networks.add_member(world["local_alvsby"].id, MemberCreate(participant_id=world["lars"].id))
    assert caught.value.status_code == 422


async def test_creating_networks_needs_the_scope(session, world) -> None:
    networks = NetworkService(context(session, municipal_coordinator("2560")))
    with pytest.raises(Problem) as caught:
        await networks.create(
            NetworkCreate(
                name="LN Luleå",
                kind=NetworkKind.LOCAL_NETWORK,
                parent_id=world["nord"].id,
                municipality_code="2580",
            )
        )
    assert caught.value.status_code == 403
    with pytest.raises(Problem) as caught:
        await networks.create(
            NetworkCreate(
                name="Region",
                kind=NetworkKind.COUNTY_GROUP,
                parent_id=world["national"].id,
                county_codes=["25"],
            )
        )
    assert caught.value.status_code == 403
    with pytest.raises(Problem) as caught:
        await networks.create(NetworkCreate(name="Nation 2", kind=NetworkKind.NATIONAL_CONTACTS))
    assert caught.value.status_code == 403
    created = await networks.create(
        NetworkCreate(
            name="LN Älvsbyn",
            kind=NetworkKind.LOCAL_NETWORK,
            parent_id=world["nord"].id,
            municipality_code="2560",
        )
    )
    assert created.municipality_code == "2560"
