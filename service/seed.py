"""Reference data (counties, municipalities) and the northern demo setup.

The demo goes through the same services as the API, so it obeys every rule. All names,
addresses and e-mail addresses are invented (e-mail under the reserved .example domain,
phone numbers from the range PTS reserves for fiction).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.api_keys.schemas import ApiKeyCreate
from service.api_keys.service import ApiKeyService
from service.auth.principal import Principal, Role
from service.context import Context
from service.geography.service import GeographyService
from service.meetings.invitations import InvitationService
from service.meetings.mail import Outside
from service.meetings.models import MeetingKind
from service.meetings.schemas import InvitationCreate, MeetingCreate
from service.meetings.service import MeetingService
from service.meetings.times import STOCKHOLM
from service.networks.models import MemberRole, Network, NetworkKind
from service.networks.schemas import MemberCreate, NetworkCreate
from service.networks.service import NetworkService
from service.organizations.models import OrganizationKind
from service.organizations.schemas import OrganizationCreate
from service.organizations.service import OrganizationService
from service.participants.models import ParticipantRoleKind as R
from service.participants.schemas import ParticipantCreate
from service.participants.service import ParticipantService
from service.reports.models import DecidingParty
from service.reports.schemas import DecidingBody, DecisionWrite
from service.reports.service import ReportService
from service.settings import Settings

INSTRUCTOR_TRAINING_DAY = date(2026, 4, 15)
DEMO_NATIONAL_NETWORK = "Tillsammans mot nätdroger – nationella kontakter"
DEMO_SECRET = "demo-only-never-in-production"  # noqa: S105 - published on purpose, demo data only

# (prefix, role, scope, name): one demo key per role, with fixed, published secrets, so the
# README's examples work as written. They exist only where `--demo` was asked for.
DEMO_KEYS: list[tuple[str, Role, dict[str, str], str]] = [
    ("demoadmn", Role.NATIONAL_ADMIN, {}, "Demo: national administrator"),
    ("democnty", Role.COUNTY_COORDINATOR, {"county_code": "25"}, "Demo: county coordinator, Norrbotten"),
    (
        "demoalvs",
        Role.MUNICIPAL_COORDINATOR,
        {"municipality_code": "2560"},
        "Demo: municipal coordinator, Älvsbyn",
    ),
    (
        "demolule",
        Role.MUNICIPAL_COORDINATOR,
        {"municipality_code": "2580"},
        "Demo: municipal coordinator, Luleå",
    ),
    ("demoinst", Role.INSTRUCTOR, {"county_code": "25"}, "Demo: instructor, Norrbotten"),
    ("democarr", Role.CARRIER_INTEGRATION, {"carrier": "postnord"}, "Demo: PostNord integration"),
    ("demoview", Role.VIEWER, {"county_code": "25"}, "Demo: viewer, Norrbotten"),
    ("demoaudt", Role.AUDITOR, {}, "Demo: auditor"),
]


def demo_key(prefix: str) -> str:
    return f"tmn_{prefix}_{DEMO_SECRET}"


@dataclass(frozen=True)
class SeedReport:
    counties_changed: int
    municipalities_changed: int
    demo: str  # "created", "present" or "skipped"
    demo_keys: list[tuple[str, str, str]] = field(default_factory=list)  # (role, scope, key)


async def seed(session: AsyncSession, *, demo: bool) -> SeedReport:
    """Insert or correct reference data, then (optionally) the demo; the caller commits."""
    ctx = Context(session=session, principal=Principal.system())
    counties, municipalities = await GeographyService(ctx).seed()
    await seed_carriers(session)
    outcome = "skipped"
    keys: list[tuple[str, str, str]] = []
    if demo:
        outcome = "present" if await _demo_present(session) else "created"
        if outcome == "created":
            await _create_demo(ctx)
        keys = await _demo_keys(ctx)
    return SeedReport(counties, municipalities, outcome, keys)


CARRIERS = (
    ("postnord", "PostNord"),
    ("dhl", "DHL"),
    ("schenker", "DB Schenker"),
    ("bring", "Bring"),
    ("budbee", "Budbee"),
    ("instabox", "Instabox"),
    ("airmee", "Airmee"),
    ("earlybird", "Early Bird"),
)


async def seed_carriers(session: AsyncSession) -> None:
    """The carriers whose registries TMN knows, by short code (inserted once, names kept)."""
    from service.registries.models import Carrier

    known = set(await session.scalars(select(Carrier.code)))
    for code, name in CARRIERS:
        if code not in known:
            session.add(Carrier(code=code, name=name))
    await session.flush()


async def _demo_keys(ctx: Context) -> list[tuple[str, str, str]]:
    service = ApiKeyService(ctx)
    out = []
    for prefix, role, scope, name in DEMO_KEYS:
        if await service.repo.by_prefix(prefix) is None:
            data = msgspec.convert({"name": name, "role": role, **scope}, ApiKeyCreate)
            await service.create(data, prefix=prefix, secret=DEMO_SECRET)
        out.append((role.value, next(iter(scope.values()), "nation"), demo_key(prefix)))
    return out


async def _demo_present(session: AsyncSession) -> bool:
    found = await session.scalars(select(Network.id).where(Network.name == DEMO_NATIONAL_NETWORK))
    return found.first() is not None


def _org(kind: OrganizationKind, name: str, **kw: Any) -> OrganizationCreate:
    return OrganizationCreate(kind=kind, name=name, **kw)


# (name, street, postal code, city, latitude, longitude, municipality, kind)
_PLACES: list[tuple[str, str, str, str, float, float, str, OrganizationKind]] = [
    (
        "Storgatans Livs",
        "Storgatan 12",
        "94231",
        "Älvsbyn",
        65.6759,
        21.0043,
        "2560",
        OrganizationKind.PICKUP_POINT,
    ),
    (
        "Älvsby Servicebutik",
        "Västra Nygatan 4",
        "94231",
        "Älvsbyn",
        65.6771,
        20.9968,
        "2560",
        OrganizationKind.PICKUP_POINT,
    ),
    (
        "Vidsels Lanthandel",
        "Byvägen 21",
        "94292",
        "Vidsel",
        65.8316,
        20.5143,
        "2560",
        OrganizationKind.PICKUP_POINT,
    ),
    (
        "Paketskåpet Älvsby Centrum",
        "Storgatan 27",
        "94231",
        "Älvsbyn",
        65.6748,
        21.0082,
        "2560",
        OrganizationKind.PICKUP_POINT,
    ),
    (
        "Centrumkiosken Luleå",
        "Storgatan 40",
        "97231",
        "Luleå",
        65.5838,
        22.1547,
        "2580",
        OrganizationKind.PICKUP_POINT,
    ),
    (
        "Bergnäsets Handel & Paket",
        "Bergnäsvägen 3",
        "97593",
        "Luleå",
        65.5709,
        22.1194,
        "2580",
        OrganizationKind.PICKUP_POINT,
    ),
    (
        "Hertsö Närbutik",
        "Hertsövägen 55",
        "97452",
        "Luleå",
        65.5885,
        22.2364,
        "2580",
        OrganizationKind.PICKUP_POINT,
    ),
    (
        "Porsö Servicebutik",
        "Porsövägen 12",
        "97753",
        "Luleå",
        65.6180,
        22.1383,
        "2580",
        OrganizationKind.PICKUP_POINT,
    ),
    (
        "Gammelstads Bensin & Ombud",
        "Gammelstadsvägen 260",
        "95434",
        "Gammelstad",
        65.6456,
        22.0230,
        "2580",
        OrganizationKind.PICKUP_POINT,
    ),
    (
        "Storheden Paketbox",
        "Midgårdsvägen 9",
        "97334",
        "Luleå",
        65.6107,
        22.0569,
        "2580",
        OrganizationKind.PICKUP_POINT,
    ),
    (
        "Paketterminalen Luleå",
        "Industrigatan 8",
        "97345",
        "Luleå",
        65.5978,
        22.0951,
        "2580",
        OrganizationKind.TERMINAL,
    ),
    (
        "Brevbärarkontoret Luleå",
        "Banvägen 6",
        "97346",
        "Luleå",
        65.5930,
        22.1088,
        "2580",
        OrganizationKind.MAIL_CARRIER_OFFICE,
    ),
]

# Numbers PTS reserves for fiction (070-174 06 05 … 070-174 06 99).
FICTION_PHONES = tuple(f"+4670174{n:04d}" for n in range(605, 700))


async def _create_demo(ctx: Context) -> None:
    phones = iter(FICTION_PHONES)  # per demo: a process may seed several databases
    orgs = OrganizationService(ctx)
    people = ParticipantService(ctx)
    networks = NetworkService(ctx)

    async def org(data: OrganizationCreate) -> UUID:
        return (await orgs.create(data)).id

    async def person(name: str, email: str, organization: UUID, roles: list[R], consent: bool = True) -> UUID:
        data = ParticipantCreate(
            name=name,
            email=email,
            organization_id=organization,
            roles=roles,
            phone=next(phones),
            mailing_list_consent=consent,
            # Instructors of the demo took the county's instructor training in the spring.
            instructor_qualified_on=INSTRUCTOR_TRAINING_DAY if R.INSTRUCTOR in roles else None,
        )
        return (await people.create(data)).id

    async def network(name: str, kind: NetworkKind, parent: UUID | None = None, **kw: Any) -> UUID:
        return (await networks.create(NetworkCreate(name=name, kind=kind, parent_id=parent, **kw))).id

    async def member(network_id: UUID, participant: UUID, role: MemberRole) -> None:
        await networks.add_member(network_id, MemberCreate(participant_id=participant, role=role))

    # Authorities and carriers.
    fhm = await org(_org(OrganizationKind.PUBLIC_HEALTH_AGENCY, "Folkhälsomyndigheten"))
    noa = await org(_org(OrganizationKind.POLICE, "Polisen, Nationella operativa avdelningen (NOA)"))
    await org(_org(OrganizationKind.PROSECUTION, "Åklagarmyndigheten"))
    await org(_org(OrganizationKind.POLICE, "Polisregion Nord", police_region="Nord", county_code="24"))
    lpo_pitea = await org(
        _org(
            OrganizationKind.POLICE,
            "Polisen, lokalpolisområde Piteå älvdal",
            police_region="Nord",
            municipality_code="2581",
        )
    )
    lpo_lulea = await org(
        _org(
            OrganizationKind.POLICE,
            "Polisen, lokalpolisområde Luleå",
            police_region="Nord",
            municipality_code="2580",
        )
    )
    customs = await org(_org(OrganizationKind.CUSTOMS, "Tullverket, Luleå", municipality_code="2580"))
    county_board = await org(
        _org(OrganizationKind.COUNTY_BOARD, "Länsstyrelsen i Norrbottens län", county_code="25")
    )
    alvsbyn = await org(_org(OrganizationKind.MUNICIPALITY, "Älvsbyns kommun", municipality_code="2560"))
    lulea = await org(_org(OrganizationKind.MUNICIPALITY, "Luleå kommun", municipality_code="2580"))
    postal = await org(_org(OrganizationKind.POSTAL_OPERATOR, "PostNord Sverige AB"))
    await org(_org(OrganizationKind.LOGISTICS_COMPANY, "DHL Freight (Sweden) AB"))
    await org(_org(OrganizationKind.LOGISTICS_COMPANY, "Budbee AB"))
    places: dict[str, UUID] = {}
    for name, street, postal_code, city, lat, lon, municipality, kind in _PLACES:
        places[name] = await org(
            _org(
                kind,
                name,
                street_address=street,
                postal_code=postal_code,
                city=city,
                latitude=lat,
                longitude=lon,
                municipality_code=municipality,
                # Where invitations go; fictional, like everything in the demo.
                email=f"{_slug(name)}@ombud.example",
            )
        )

    # People.
    fhm_contact = await person("Karin Åberg", "karin.aberg@fhm.example", fhm, [])
    noa_contact = await person("Jonas Ekström", "jonas.ekstrom@polisen.example", noa, [R.POLICE_OFFICER])
    county_coord = await person(
        "Maria Nilsson", "maria.nilsson@lansstyrelsen.example", county_board, [R.COUNTY_ANDT_COORDINATOR]
    )
    alvsbyn_coord = await person(
        "Anna Lindqvist", "anna.lindqvist@alvsbyn.example", alvsbyn, [R.MUNICIPAL_COORDINATOR]
    )
    lulea_coord = await person(
        "Erik Johansson", "erik.johansson@lulea.example", lulea, [R.MUNICIPAL_COORDINATOR]
    )
    police_1 = await person(
        "Sara Lundström", "sara.lundstrom@polisen.example", lpo_pitea, [R.POLICE_OFFICER, R.INSTRUCTOR]
    )
    police_2 = await person(
        "Mikael Öberg", "mikael.oberg@polisen.example", lpo_lulea, [R.POLICE_OFFICER, R.INSTRUCTOR]
    )
    customs_1 = await person(
        "Lena Marklund", "lena.marklund@tullverket.example", customs, [R.CUSTOMS_OFFICER, R.INSTRUCTOR]
    )
    agent_manager = await person(
        "Peter Holmgren", "peter.holmgren@postnord.example", postal, [R.REGIONAL_AGENT_MANAGER]
    )
    staff: dict[str, UUID] = {}
    for (name, *_rest, kind), first in zip(
        _PLACES,
        [
            "Aisha",
            "Björn",
            "Cecilia",
            "David",
            "Elin",
            "Fredrik",
            "Goran",
            "Hanna",
            "Ida",
            "Johan",
            "Kalle",
            "Linnea",
        ],
        strict=True,
    ):
        role = {
            OrganizationKind.TERMINAL: R.TERMINAL_STAFF,
            OrganizationKind.MAIL_CARRIER_OFFICE: R.MAIL_CARRIER_STAFF,
        }.get(kind, R.PICKUP_POINT_STAFF)
        staff[name] = await person(
            f"{first} Persson", f"{first.lower()}@{_slug(name)[:20]}.example", places[name], [role]
        )

    # Networks: national > region Nord > Norrbotten > Älvsbyn and Luleå.
    national = await network(
        DEMO_NATIONAL_NETWORK,
        NetworkKind.NATIONAL_CONTACTS,
        description="Kunskap och förankring: myndigheter, post- och logistikföretag.",
    )
    nord = await network(
        "Regional ledningsgrupp polisregion Nord",
        NetworkKind.REGIONAL_MANAGEMENT_GROUP,
        national,
        county_codes=["22", "23", "24", "25"],
        description="Polisregion, Tullverket, Åklagarmyndigheten och länsstyrelserna; möts årligen.",
    )
    norrbotten = await network(
        "Länsvis arbetsgrupp Norrbotten",
        NetworkKind.COUNTY_GROUP,
        nord,
        county_codes=["25"],
        description="Sammankallas av länsstyrelsens ANDT-samordnare.",
    )
    project = await network(
        "Projektgrupp instruktörer Norrbotten", NetworkKind.PROJECT_GROUP, nord, county_codes=["25"]
    )
    local: dict[str, tuple[UUID, UUID]] = {}
    for code, town in (("2560", "Älvsbyn"), ("2580", "Luleå")):
        working = await network(
            f"Lokal arbetsgrupp {town}", NetworkKind.LOCAL_WORKING_GROUP, norrbotten, municipality_code=code
        )
        mailing = await network(
            f"Lokalt nätverk {town}",
            NetworkKind.LOCAL_NETWORK,
            norrbotten,
            municipality_code=code,
            description="Alla som deltagit i ett samverkansmöte; nås via e-post.",
        )
        local[code] = (working, mailing)

    for who in (fhm_contact, noa_contact, agent_manager):
        await member(national, who, MemberRole.MEMBER)
    await member(nord, police_1, MemberRole.REPRESENTATIVE)
    await member(nord, customs_1, MemberRole.REPRESENTATIVE)
    await member(nord, county_coord, MemberRole.REPRESENTATIVE)
    await member(norrbotten, county_coord, MemberRole.CONVENOR)
    for who in (alvsbyn_coord, lulea_coord, police_1, customs_1):
        await member(norrbotten, who, MemberRole.MEMBER)
    for who in (police_1, police_2, customs_1):
        await member(project, who, MemberRole.INSTRUCTOR)

    for code, coordinator, police in (("2560", alvsbyn_coord, police_1), ("2580", lulea_coord, police_2)):
        working, mailing = local[code]
        await member(working, coordinator, MemberRole.CONVENOR)
        await member(working, police, MemberRole.INSTRUCTOR)
        await member(working, customs_1, MemberRole.INSTRUCTOR)
        await member(working, agent_manager, MemberRole.REPRESENTATIVE)
        town_staff = [staff[p[0]] for p in _PLACES if p[6] == code]
        await member(working, town_staff[0], MemberRole.REPRESENTATIVE)
        for who in town_staff:
            await member(mailing, who, MemberRole.MEMBER)

    await _demo_meetings(ctx, local, alvsbyn_coord, lulea_coord, police_1, police_2, customs_1)
    await _demo_decisions(ctx)


async def _demo_decisions(ctx: Context) -> None:
    """Step 1 for the demo's two towns: recorded decisions, so the dashboard's map has colour."""
    reports = ReportService(ctx)
    for code, town, reference in (
        ("2560", "Älvsbyn", "KS 2026/41 § 7"),
        ("2580", "Luleå", "KS 2026/112 § 3"),
    ):
        bodies = [
            DecidingBody(party=DecidingParty.MUNICIPALITY, name=f"Kommunstyrelsen i {town}"),
            DecidingBody(party=DecidingParty.POLICE, name="Polisregion Nord"),
            DecidingBody(party=DecidingParty.CUSTOMS, name="Tullverket, region Norr"),
        ]
        data = DecisionWrite(decided_on=INSTRUCTOR_TRAINING_DAY, bodies=bodies, document_reference=reference)
        await reports.record_decision(code, data, None)


def _slug(name: str) -> str:
    return (
        name.lower().replace(" ", "").replace("&", "").replace("å", "a").replace("ä", "a").replace("ö", "o")
    )


async def _demo_meetings(
    ctx: Context,
    local: dict[str, tuple[UUID, UUID]],
    alvsbyn_coord: UUID,
    lulea_coord: UUID,
    police_1: UUID,
    police_2: UUID,
    customs_1: UUID,
) -> None:
    """Älvsbyn's next collaboration meeting, scheduled with its municipality invited (not sent:
    that is the demo's first click), and a draft working-group meeting in Luleå; on a Tuesday a
    month or so from the day the demo is seeded, at 18.00 Stockholm time."""
    outside = Outside(settings=Settings())
    meetings = MeetingService(ctx, outside)
    day = (ctx.clock().astimezone(STOCKHOLM) + timedelta(days=30)).date()
    while day.weekday() != 1:  # a Tuesday evening
        day += timedelta(days=1)
    starts = datetime.combine(day, time(18, 0))
    collaboration = await meetings.create(
        MeetingCreate(
            network_id=local["2560"][0],
            kind=MeetingKind.COLLABORATION_MEETING,
            title="Samverkansmöte för ombud i Älvsbyn",
            starts_at=starts,
            ends_at=starts + timedelta(hours=2),
            venue="Kommunhuset, Storgatan 27, Älvsbyn",
            capacity=30,
            agenda=[
                "Polisen: lägesbild och lagrum",
                "Tullverket: försändelser",
                "Kommunen: drogläget lokalt",
            ],
            registration_deadline=day - timedelta(days=7),
            coordinator_id=alvsbyn_coord,
            instructor_ids=[police_1, customs_1],
        )
    )
    await meetings.schedule(collaboration.id, None)
    await InvitationService(ctx, outside).add(collaboration.id, InvitationCreate(audience="municipality"))
    await meetings.create(
        MeetingCreate(
            network_id=local["2580"][0],
            kind=MeetingKind.LOCAL_WORKING_GROUP,
            title="Lokal arbetsgrupp Luleå",
            starts_at=starts + timedelta(days=7, hours=-8),
            ends_at=starts + timedelta(days=7, hours=-6),
            online_url="https://meet.lulea.example/arbetsgrupp",
            coordinator_id=lulea_coord,
            instructor_ids=[police_2, customs_1],
        )
    )
