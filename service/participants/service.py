"""Rules for people: one person per e-mail (any case), employment history kept, consent dated."""

from __future__ import annotations

from uuid import UUID

import msgspec

from service.audit.service import AuditService
from service.auth.principal import ensure_in_scope
from service.context import Context
from service.db import utcnow
from service.geography.service import GeographyService
from service.organizations.service import OrganizationService
from service.participants import schemas
from service.participants.models import Employment, Participant, ParticipantRole, ParticipantRoleKind
from service.participants.repository import EmploymentRepository, ParticipantRepository
from service.problems import Problem, conflict, invalid, not_found
from service.validation import clean_name, normalize_email, normalize_phone
from service.versioning import check_if_match, etag_of


def to_schema(person: Participant) -> schemas.Participant:
    return schemas.Participant(
        id=person.id,
        name=person.name,
        email=person.email,
        phone=person.phone,
        language=person.language,
        organization_id=person.organization_id,
        roles=[r.role for r in person.roles],
        mailing_list_consent=person.mailing_list_consent,
        consent_changed_at=person.consent_changed_at,
        listed_in_directory=person.listed_in_directory,
        instructor_qualified_on=person.instructor_qualified_on,
        erased_at=person.erased_at,
        created_at=person.created_at,
        updated_at=person.updated_at,
    )


def etag(person: Participant) -> str:
    return etag_of("participant", person.id, person.version)


def email_key(email: str) -> str:
    """The form e-mail uniqueness is decided on: normalised, then lower-cased."""
    return normalize_email(email).lower()


class ParticipantService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.repo = ParticipantRepository(session=ctx.session)
        self.employment_repo = EmploymentRepository(session=ctx.session)

    async def create(self, data: schemas.ParticipantCreate) -> Participant:
        email = normalize_email(data.email)
        await self._check_email_free(email.lower(), None)
        if data.organization_id is not None:
            await OrganizationService(self.ctx).require_active(data.organization_id, field="organization_id")
        else:
            ensure_in_scope(
                self.ctx.principal, municipality_code=None, county_code=None, field="organization_id"
            )
        now = utcnow()
        person = Participant(
            name=clean_name(data.name),
            email=email,
            email_normalized=email.lower(),
            phone=normalize_phone(data.phone) if data.phone is not None else None,
            language=data.language,
            organization_id=data.organization_id,
            mailing_list_consent=data.mailing_list_consent,
            consent_changed_at=now if data.mailing_list_consent else None,
            listed_in_directory=data.listed_in_directory,
            instructor_qualified_on=data.instructor_qualified_on,
            roles=[ParticipantRole(role=r) for r in _unique(data.roles)],
        )
        person = await self.repo.add(person)
        if data.organization_id is not None:
            await self.employment_repo.add(
                Employment(participant_id=person.id, organization_id=data.organization_id, started_at=now)
            )
        return person

    async def get(self, ident: UUID) -> Participant:
        person = await self.repo.get_visible(self.ctx.principal, ident)
        if person is None:
            raise not_found("participant", ident)
        return person

    async def require(self, ident: UUID, *, field: str) -> Participant:
        """A participant another resource points at; a missing one is the client's field error."""
        person = await self.repo.get_visible(self.ctx.principal, ident)
        if person is None:
            raise invalid(field, f"no participant {ident}")
        return person

    async def page(
        self,
        *,
        organization_id: UUID | None,
        role: ParticipantRoleKind | None,
        municipality: str | None,
        county: str | None,
        email: str | None,
        q: str | None,
        limit: int,
        cursor: str | None,
    ) -> schemas.ParticipantPage:
        geography = GeographyService(self.ctx)
        if municipality is not None:
            await geography.require_municipality(municipality, field="municipality", source="query")
        if county is not None:
            await geography.require_county(county, field="county", source="query")
        key = None
        if email is not None:
            try:
                key = email_key(email)
            except Problem as exc:
                raise invalid("email", "not a valid e-mail address", "query") from exc
        rows, next_cursor = await self.repo.page(
            self.ctx.principal,
            organization_id=organization_id,
            role=role,
            municipality=municipality,
            county=county,
            email=key,
            q=q,
            limit=limit,
            cursor=cursor,
        )
        return schemas.ParticipantPage(
            items=[to_schema(p) for p in rows], limit=limit, next_cursor=next_cursor
        )

    async def update(
        self, ident: UUID, patch: schemas.ParticipantUpdate, if_match: str | None
    ) -> Participant:
        person = await self.get(ident)
        check_if_match(if_match, etag(person))
        _refuse_if_erased(person)
        if patch.name is not msgspec.UNSET:
            person.name = clean_name(patch.name)
        if patch.email is not msgspec.UNSET:
            email = normalize_email(patch.email)
            await self._check_email_free(email.lower(), person.id)
            person.email, person.email_normalized = email, email.lower()
        if patch.phone is not msgspec.UNSET:
            person.phone = normalize_phone(patch.phone) if patch.phone is not None else None
        if patch.language is not msgspec.UNSET:
            person.language = patch.language
        if patch.roles is not msgspec.UNSET:
            wanted = _unique(patch.roles)
            if wanted != [r.role for r in person.roles]:
                person.roles = [ParticipantRole(role=r) for r in wanted]
                person.updated_at = utcnow()  # the row itself must change so the ETag moves
        if (
            patch.mailing_list_consent is not msgspec.UNSET
            and patch.mailing_list_consent != person.mailing_list_consent
        ):
            person.mailing_list_consent = patch.mailing_list_consent
            person.consent_changed_at = utcnow()
        if patch.listed_in_directory is not msgspec.UNSET:
            person.listed_in_directory = patch.listed_in_directory
        if patch.instructor_qualified_on is not msgspec.UNSET:
            person.instructor_qualified_on = patch.instructor_qualified_on
        if patch.organization_id is not msgspec.UNSET and patch.organization_id != person.organization_id:
            await self._move(person, patch.organization_id)
        await self.ctx.session.flush()
        return person

    async def leave(self, ident: UUID, if_match: str | None) -> Participant:
        """The person left their organization: the employment ends, the person stays."""
        person = await self.get(ident)
        check_if_match(if_match, etag(person))
        _refuse_if_erased(person)
        if person.organization_id is None:
            raise Problem("conflict", "this participant has no current organization")
        await self._move(person, None)
        await self.ctx.session.flush()
        return person

    async def employments(self, ident: UUID) -> list[schemas.Employment]:
        await self.get(ident)
        return [
            schemas.Employment(
                id=e.id,
                organization_id=e.organization_id,
                organization_name=name,
                started_at=e.started_at,
                ended_at=e.ended_at,
            )
            for e, name in await self.employment_repo.history(ident)
        ]

    async def export(self, ident: UUID) -> schemas.ParticipantExport:
        """Everything held about the person: the record, employments, memberships, meeting
        registrations and attendance, audit trail."""
        person = await self.get(ident)
        memberships = [
            schemas.Membership(
                id=m.id,
                network_id=m.network_id,
                network_name=name,
                role=m.role.value,
                organization_id=m.organization_id,
                joined_at=m.joined_at,
                left_at=m.left_at,
            )
            for m, name in await self.repo.memberships(person.id)
        ]
        registrations = [
            schemas.MeetingRegistration(
                meeting_id=r.meeting_id,
                meeting_title=title,
                starts_at=starts_at,
                organization_id=r.organization_id,
                status=r.status.value,
                attendance=r.attendance.value if r.attendance else None,
                registered_at=r.created_at,
            )
            for r, title, starts_at in await self.repo.registrations(person.id)
        ]
        return schemas.ParticipantExport(
            exported_at=utcnow(),
            participant=to_schema(person),
            employments=await self.employments(person.id),
            memberships=memberships,
            meeting_registrations=registrations,
            audit_events=await AuditService(self.ctx).about("participant", str(person.id)),
        )

    async def erase(self, ident: UUID, if_match: str | None) -> Participant:
        """Pseudonymise (GDPR art. 17): name, e-mail and phone are gone for good; the row, its
        employments and memberships stay, so attendance and certifications still count."""
        person = await self.get(ident)
        check_if_match(if_match, etag(person))
        if person.erased_at is not None:
            return person
        now = utcnow()
        placeholder = f"erased-{person.id}@erased.invalid"
        person.name = ERASED_NAME
        person.email = placeholder
        person.email_normalized = placeholder
        person.phone = None
        person.listed_in_directory = False
        if person.mailing_list_consent:
            person.mailing_list_consent = False
            person.consent_changed_at = now
        person.erased_at = now
        await self.ctx.session.flush()
        return person

    async def _move(self, person: Participant, organization_id: UUID | None) -> None:
        now = utcnow()
        if organization_id is not None:
            await OrganizationService(self.ctx).require_active(organization_id, field="organization_id")
        current = await self.employment_repo.open_for(person.id)
        if current is not None:
            current.ended_at = now
            await self.ctx.session.flush()  # close before opening: one open employment at a time
        if organization_id is not None:
            await self.employment_repo.add(
                Employment(participant_id=person.id, organization_id=organization_id, started_at=now)
            )
        person.organization_id = organization_id

    async def _check_email_free(self, email_normalized: str, own_id: UUID | None) -> None:
        existing = await self.repo.by_email(email_normalized)
        if existing is not None and existing.id != own_id:
            raise conflict("email", "another participant has this e-mail address")


ERASED_NAME = "Raderad person"


def _refuse_if_erased(person: Participant) -> None:
    if person.erased_at is not None:
        raise Problem("conflict", "this person was erased; their record can no longer change")


def _unique(roles: list[ParticipantRoleKind]) -> list[ParticipantRoleKind]:
    return sorted(set(roles), key=lambda r: r.value)
