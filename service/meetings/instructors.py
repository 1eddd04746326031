"""Who may instruct: people with the instructor qualification. Police and customs instructors are
employed county-wide (a local police area, a customs office), not by the municipality whose
meetings they lead, so a coordinator finds and books them through the county, not through the
people their own scope shows."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from sqlalchemy import select

from service.auth.principal import Principal
from service.context import Context
from service.meetings import schemas
from service.organizations.models import Organization, OrganizationKind
from service.participants.models import Participant

REPRESENTS = {
    OrganizationKind.POLICE: "police",
    OrganizationKind.CUSTOMS: "customs",
    OrganizationKind.MUNICIPALITY: "municipality",
}


def counties_of(principal: Principal) -> set[str] | None:
    """The counties a principal works in (None: the whole nation)."""
    scope = principal.scope
    if scope.nation:
        return None
    return set(scope.county_codes) | {m[:2] for m in scope.municipality_codes}


async def qualified(
    ctx: Context, counties: set[str] | None, *, on: date | None = None, ident: UUID | None = None
) -> list[tuple[Participant, Organization | None]]:
    """Qualified people employed in these counties (any county when None), by name."""
    stmt = (
        select(Participant, Organization)
        .outerjoin(Organization, Organization.id == Participant.organization_id)
        .where(Participant.instructor_qualified_on.is_not(None), Participant.erased_at.is_(None))
        .order_by(Participant.name, Participant.id)
    )
    if counties is not None:
        stmt = stmt.where(Organization.county_code.in_(sorted(counties)))
    if on is not None:
        stmt = stmt.where(Participant.instructor_qualified_on <= on)
    if ident is not None:
        stmt = stmt.where(Participant.id == ident)
    return list((await ctx.session.execute(stmt.limit(500))).tuples())


async def listing(ctx: Context, county: str | None) -> list[schemas.InstructorListing]:
    allowed = counties_of(ctx.principal)
    wanted = {county} if county is not None else None
    if allowed is not None:
        wanted = allowed if wanted is None else wanted & allowed
    if wanted is not None and not wanted:
        return []
    return [
        schemas.InstructorListing(
            participant_id=person.id,
            name=person.name,
            organization_id=org.id if org else None,
            organization_name=org.name if org else None,
            county_code=org.county_code if org else None,
            represents=REPRESENTS.get(org.kind) if org else None,
            qualified_on=person.instructor_qualified_on,
        )
        for person, org in await qualified(ctx, wanted)
        if person.instructor_qualified_on is not None
    ]
