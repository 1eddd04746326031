"""The reports' SQL: one grouped aggregate per fact, over every municipality in scope at once.

Nothing here loops over municipalities: a national report is a handful of GROUP BY queries whose
cost grows with the rows, not with the number of places (bench/reports.py holds it to that).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    union,
)
from sqlalchemy.ext.asyncio import AsyncSession

from service.certifications.models import Certification, CertificationStatus
from service.certifications.repository import status_clause
from service.geography.models import County, Municipality
from service.meetings.models import (
    PICKUP_POINT_MEETINGS,
    Attendance,
    Invitation,
    Meeting,
    MeetingInstructor,
    MeetingKind,
    MeetingStatus,
    Registration,
    SurveyResponse,
)
from service.networks.models import (
    MemberRole,
    Network,
    NetworkCounty,
    NetworkKind,
    NetworkLevel,
    NetworkMember,
)
from service.organizations.models import PHYSICAL_KINDS, Organization, OrganizationKind, OrganizationStatus
from service.participants.models import Participant
from service.registries.models import Carrier, CarrierPoint, PointStatus
from service.reports.models import MunicipalityDecision

HELD = (MeetingStatus.HELD, MeetingStatus.CLOSED)
# The meetings that count for step 4: in sparse municipalities a workplace meeting stands in.
COLLABORATION_KINDS = (MeetingKind.COLLABORATION_MEETING, MeetingKind.WORKPLACE_MEETING)
# Certification statuses in the order a CASE must test them (decisions first, then the dates).
STATUS_ORDER = (
    CertificationStatus.REVOKED,
    CertificationStatus.SUSPENDED,
    CertificationStatus.LAPSED,
    CertificationStatus.IN_GRACE,
    CertificationStatus.FOLLOW_UP_DUE,
    CertificationStatus.ACTIVE,
)
CERTIFIED = (CertificationStatus.ACTIVE, CertificationStatus.FOLLOW_UP_DUE, CertificationStatus.IN_GRACE)
DUE = (CertificationStatus.FOLLOW_UP_DUE, CertificationStatus.IN_GRACE)


@dataclass(frozen=True, slots=True)
class Place:
    code: str
    name: str
    county_code: str
    county_name: str
    police_region: str


@dataclass(slots=True)
class Fact:
    """A grouped count with its first and latest day."""

    count: int = 0
    first: date | None = None
    latest: date | None = None


@dataclass(slots=True)
class CoverageCounts:
    pickup_points: int = 0
    terminals: int = 0
    offices: int = 0
    invited: int = 0
    attended: int = 0
    certified: int = 0
    follow_up_due: int = 0
    lapsed: int = 0
    never_reached: int = 0


def _day(value: date | datetime | str | None) -> date | None:
    # SQLite hands back aggregates of dates as text; PostgreSQL as dates or datetimes.
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def certification_status(today: date) -> ColumnElement[str]:
    """The computed status of a certification row as one CASE (the rule of status_clause)."""
    return case(*((status_clause(s, today), literal(s.value)) for s in STATUS_ORDER), else_=literal(None))


def _in(column: Any, codes: Collection[str] | None) -> ColumnElement[bool]:
    return literal(True) if codes is None else column.in_(sorted(codes))


class ReportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def places(self) -> list[Place]:
        stmt = (
            select(Municipality.code, Municipality.name, County.code, County.name, County.police_region)
            .join(County, County.code == Municipality.county_code)
            .order_by(Municipality.code)
        )
        return [Place(*row) for row in (await self.session.execute(stmt)).tuples()]

    async def decisions(self, codes: Collection[str] | None) -> dict[str, MunicipalityDecision]:
        stmt = select(MunicipalityDecision).where(_in(MunicipalityDecision.municipality_code, codes))
        return {d.municipality_code: d for d in await self.session.scalars(stmt)}

    async def instructors(self, codes: Collection[str] | None) -> dict[str, Fact]:
        """Qualified instructors per municipality: employed there, instructors in one of its local
        networks, or booked for one of its meetings (police and customs are employed by region)."""
        qualified = and_(Participant.instructor_qualified_on.is_not(None), Participant.erased_at.is_(None))
        employed = (
            select(Organization.municipality_code.label("m"), Participant.id.label("p"))
            .join(Organization, Organization.id == Participant.organization_id)
            .where(qualified, Organization.municipality_code.is_not(None))
        )
        in_network = (
            select(Network.municipality_code.label("m"), Participant.id.label("p"))
            .join(NetworkMember, NetworkMember.network_id == Network.id)
            .join(Participant, Participant.id == NetworkMember.participant_id)
            .where(
                qualified,
                Network.level == NetworkLevel.LOCAL,
                NetworkMember.role == MemberRole.INSTRUCTOR,
                NetworkMember.left_at.is_(None),
            )
        )
        booked = (
            select(Meeting.municipality_code.label("m"), Participant.id.label("p"))
            .join(MeetingInstructor, MeetingInstructor.meeting_id == Meeting.id)
            .join(Participant, Participant.id == MeetingInstructor.participant_id)
            .where(
                qualified, Meeting.municipality_code.is_not(None), Meeting.status != MeetingStatus.CANCELLED
            )
        )
        people = union(employed, in_network, booked).subquery()
        stmt = (
            select(
                people.c.m,
                func.count(),
                func.min(Participant.instructor_qualified_on),
                func.max(Participant.instructor_qualified_on),
            )
            .select_from(people)
            .join(Participant, Participant.id == people.c.p)
            .where(_in(people.c.m, codes))
            .group_by(people.c.m)
        )
        return await self._facts(stmt)

    async def working_groups(self, codes: Collection[str] | None) -> dict[str, Fact]:
        """Current members of each municipality's local working group(s), and since when."""
        stmt = (
            select(
                Network.municipality_code,
                func.count(func.distinct(NetworkMember.participant_id)),
                func.min(NetworkMember.joined_at),
                func.max(NetworkMember.joined_at),
            )
            .join(NetworkMember, NetworkMember.network_id == Network.id)
            .where(
                Network.kind == NetworkKind.LOCAL_WORKING_GROUP,
                NetworkMember.left_at.is_(None),
                _in(Network.municipality_code, codes),
            )
            .group_by(Network.municipality_code)
        )
        return await self._facts(stmt)

    async def held_meetings(
        self, codes: Collection[str] | None, kinds: Sequence[MeetingKind]
    ) -> dict[str, Fact]:
        stmt = (
            select(
                Meeting.municipality_code,
                func.count(),
                func.min(func.coalesce(Meeting.held_at, Meeting.starts_at)),
                func.max(func.coalesce(Meeting.held_at, Meeting.starts_at)),
            )
            .where(
                Meeting.kind.in_(kinds),
                Meeting.status.in_(HELD),
                Meeting.municipality_code.is_not(None),
                _in(Meeting.municipality_code, codes),
            )
            .group_by(Meeting.municipality_code)
        )
        return await self._facts(stmt)

    async def working_group_follow_ups(self, codes: Collection[str] | None) -> dict[str, Fact]:
        """Local working group meetings held after the municipality's first collaboration meeting:
        the group following up (step 5 without a follow-up meeting with the shops)."""
        collaboration = Meeting.__table__.alias("collaboration")
        first_collaboration = (
            select(func.min(func.coalesce(collaboration.c.held_at, collaboration.c.starts_at)))
            .where(
                collaboration.c.municipality_code == Meeting.municipality_code,
                collaboration.c.kind.in_([k.value for k in COLLABORATION_KINDS]),
                collaboration.c.status.in_([s.value for s in HELD]),
            )
            .scalar_subquery()
        )
        held = func.coalesce(Meeting.held_at, Meeting.starts_at)
        stmt = (
            select(Meeting.municipality_code, func.count(), func.min(held), func.max(held))
            .where(
                Meeting.kind == MeetingKind.LOCAL_WORKING_GROUP,
                Meeting.status.in_(HELD),
                _in(Meeting.municipality_code, codes),
                held > first_collaboration,
            )
            .group_by(Meeting.municipality_code)
        )
        return await self._facts(stmt)

    async def _facts(self, stmt: Select[Any]) -> dict[str, Fact]:
        facts: dict[str, Fact] = {}
        for code, count, first, latest in (await self.session.execute(stmt)).tuples():
            facts[code] = Fact(int(count), _day(first), _day(latest))
        return facts

    # --- coverage --------------------------------------------------------------------------------

    def _reach(self, today: date) -> tuple[ColumnElement[bool], ColumnElement[bool], ColumnElement[str]]:
        invited = exists().where(
            Invitation.organization_id == Organization.id, Invitation.sent_at.is_not(None)
        )
        attended = exists().where(
            Registration.organization_id == Organization.id,
            Registration.attendance == Attendance.ATTENDED,
            Registration.meeting_id == Meeting.id,
            Meeting.kind.in_(PICKUP_POINT_MEETINGS),
        )
        status = (
            select(certification_status(today))
            .where(Certification.organization_id == Organization.id)
            .scalar_subquery()
        )
        return invited, attended, status

    def _active_places(self, codes: Collection[str] | None) -> ColumnElement[bool]:
        return and_(
            Organization.kind.in_(PHYSICAL_KINDS),
            Organization.status == OrganizationStatus.ACTIVE,
            Organization.municipality_code.is_not(None),
            _in(Organization.municipality_code, codes),
        )

    async def coverage(self, codes: Collection[str] | None, today: date) -> dict[str, CoverageCounts]:
        # Joins to the distinct sets of invited and attended places (not EXISTS per place in the
        # select list, which PostgreSQL expands once per aggregate and prices into JIT compiling):
        # bench/reports.py measured 13x a hand-written aggregate before, under 2x after.
        invited_orgs = (
            select(Invitation.organization_id.label("org"))
            .where(Invitation.sent_at.is_not(None), Invitation.organization_id.is_not(None))
            .distinct()
        )
        attended_orgs = (
            select(Registration.organization_id.label("org"))
            .join(Meeting, Meeting.id == Registration.meeting_id)
            .where(
                Registration.attendance == Attendance.ATTENDED,
                Registration.organization_id.is_not(None),
                Meeting.kind.in_(PICKUP_POINT_MEETINGS),
            )
            .distinct()
        )
        if codes is not None:
            invited_orgs = invited_orgs.join(
                Organization, Organization.id == Invitation.organization_id
            ).where(_in(Organization.municipality_code, codes))
            attended_orgs = attended_orgs.join(
                Organization, Organization.id == Registration.organization_id
            ).where(_in(Organization.municipality_code, codes))
        invited = invited_orgs.subquery("invited")
        attended = attended_orgs.subquery("attended")
        per_place = (
            select(
                Organization.municipality_code.label("m"),
                Organization.kind.label("kind"),
                case((invited.c.org.is_not(None), 1), else_=0).label("invited"),
                case((attended.c.org.is_not(None), 1), else_=0).label("attended"),
                certification_status(today).label("status"),
            )
            .outerjoin(invited, invited.c.org == Organization.id)
            .outerjoin(attended, attended.c.org == Organization.id)
            .outerjoin(Certification, Certification.organization_id == Organization.id)
            .where(self._active_places(codes))
            .subquery()
        )

        def counted(condition: ColumnElement[bool]) -> ColumnElement[int]:
            return func.sum(case((condition, 1), else_=0))

        c = per_place.c
        stmt = select(
            c.m,
            counted(c.kind == OrganizationKind.PICKUP_POINT.value),
            counted(c.kind == OrganizationKind.TERMINAL.value),
            counted(c.kind == OrganizationKind.MAIL_CARRIER_OFFICE.value),
            func.sum(c.invited),
            func.sum(c.attended),
            counted(c.status.in_([s.value for s in CERTIFIED])),
            counted(c.status.in_([s.value for s in DUE])),
            counted(c.status == CertificationStatus.LAPSED.value),
            counted(and_(c.invited == 0, c.attended == 0, c.status.is_(None))),
        ).group_by(c.m)
        result: dict[str, CoverageCounts] = {}
        for row in (await self.session.execute(stmt)).tuples():
            result[row[0]] = CoverageCounts(*(int(v or 0) for v in row[1:]))
        return result

    def unreached(self, codes: Collection[str] | None, today: date) -> Select[tuple[Organization]]:
        """Active places never invited, never attended, never certified (order and limit by caller)."""
        invited, attended, _ = self._reach(today)
        certified = exists().where(Certification.organization_id == Organization.id)
        return select(Organization).where(self._active_places(codes), ~invited, ~attended, ~certified)

    async def carriers_of(self, organization_ids: Collection[UUID]) -> dict[UUID, list[str]]:
        """The carriers that list each place now (open points), by code."""
        carriers: dict[UUID, list[str]] = {ident: [] for ident in organization_ids}
        ids = list(carriers)
        # In chunks: a national export may ask for tens of thousands (bind parameters are limited).
        for start in range(0, len(ids), 5000):
            rows = await self.session.execute(
                select(CarrierPoint.organization_id, Carrier.code)
                .join(Carrier, Carrier.id == CarrierPoint.carrier_id)
                .where(
                    CarrierPoint.organization_id.in_(ids[start : start + 5000]),
                    CarrierPoint.status == PointStatus.OPEN,
                )
                .order_by(Carrier.code)
            )
            for org_id, code in rows.tuples():
                carriers[org_id].append(code)
        return carriers

    async def point_statuses(self, code: str, today: date) -> list[tuple[Organization, str]]:
        """Every active place in one municipality with the category its map dot gets."""
        invited, attended, status = self._reach(today)
        category = case(
            (status.is_not(None), status),
            (attended, literal("attended")),
            (invited, literal("invited")),
            else_=literal("never_reached"),
        )
        stmt = (
            select(Organization, category)
            .where(self._active_places([code]))
            .order_by(Organization.name, Organization.id)
        )
        return [(o, str(c)) for o, c in (await self.session.execute(stmt)).tuples()]

    # --- evaluations -----------------------------------------------------------------------------

    async def survey_responses(
        self,
        codes: Collection[str] | None,
        county_codes: Collection[str] | None,
        since: date | None,
        until: date | None,
    ) -> list[tuple[SurveyResponse, Meeting]]:
        """Answers with their meeting, for meetings in scope: local ones by municipality, regional
        ones by the counties of their network."""
        stmt = select(SurveyResponse, Meeting).join(Meeting, Meeting.id == SurveyResponse.meeting_id)
        if codes is not None:
            regional = (
                select(NetworkCounty.network_id)
                .where(
                    NetworkCounty.network_id == Meeting.network_id,
                    NetworkCounty.county_code.in_(sorted(county_codes or ())),
                )
                .exists()
            )
            stmt = stmt.where(or_(Meeting.municipality_code.in_(sorted(codes)), regional))
        if since is not None:
            stmt = stmt.where(SurveyResponse.submitted_on >= since)
        if until is not None:
            stmt = stmt.where(SurveyResponse.submitted_on <= until)
        return [(r, m) for r, m in (await self.session.execute(stmt)).tuples()]

    async def meeting_counties(self, meeting_ids: Collection[UUID]) -> dict[UUID, list[str]]:
        if not meeting_ids:
            return {}
        stmt = (
            select(Meeting.id, NetworkCounty.county_code)
            .join(NetworkCounty, NetworkCounty.network_id == Meeting.network_id)
            .where(Meeting.id.in_(list(meeting_ids)))
        )
        out: dict[UUID, list[str]] = {}
        for ident, county in (await self.session.execute(stmt)).tuples():
            out.setdefault(ident, []).append(county)
        return out
