"""Rules for certifications: earned by attending a held collaboration (or workplace) meeting of the
municipality while in its local network's mailing list; renewed by a follow-up inside the window;
suspended, reinstated, revoked by people; due, in grace and lapsed by the calendar."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, time
from typing import Any, Literal
from uuid import UUID, uuid4

from service import events
from service.certifications import credentials, documents, schemas
from service.certifications.models import (
    Certification,
    CertificationEvent,
    CertificationNotice,
    CertificationPeriod,
    CertificationState,
    CertificationStatus,
    PeriodKind,
)
from service.certifications.repository import CertificationRepository
from service.certifications.rules import Terms, Window, renewable, status, window
from service.context import Context
from service.geography.models import Municipality
from service.meetings.mail import Outside, public_url, whom_to_call
from service.meetings.models import Meeting, MeetingKind
from service.meetings.times import STOCKHOLM
from service.messages import render_email
from service.organizations.models import PHYSICAL_KINDS, Organization
from service.outbox.service import OutboxService
from service.pluginspec import Attachment, DomainEvent
from service.problems import Problem, invalid, not_found
from service.settings import SettingsError

ISSUING_MEETINGS = (MeetingKind.COLLABORATION_MEETING, MeetingKind.WORKPLACE_MEETING)
ISSUER_NAME = "Tillsammans mot nätdroger (TMN)"


def terms_of(outside: Outside) -> Terms:
    s = outside.settings
    return Terms(
        valid_months=s.certification_valid_months,
        window_months=s.certification_window_months,
        grace_days=s.certification_grace_days,
    )


def current_window(cert: Certification) -> Window:
    return Window(
        valid_from=cert.valid_from,
        window_opens=cert.window_opens,
        valid_until=cert.valid_until,
        grace_until=cert.grace_until,
    )


def state_conflict(
    cert: Certification, current: CertificationStatus, action: str, allowed: list[str]
) -> Problem:
    return Problem(
        "conflict",
        f"cannot {action} a {current.value} certification",
        extra={"current_state": current.value, "allowed": allowed},
    )


class CertificationService:
    def __init__(self, ctx: Context, outside: Outside) -> None:
        self.ctx = ctx
        self.outside = outside
        self.settings = outside.settings
        self.terms = terms_of(outside)
        self.repo = CertificationRepository(session=ctx.session)

    @property
    def today(self) -> date:
        return self.ctx.clock().astimezone(STOCKHOLM).date()

    def status_of(self, cert: Certification) -> CertificationStatus:
        return status(cert.state, current_window(cert), self.today)

    def verify_url(self, cert: Certification) -> str:
        return public_url(self.settings, f"/verify/{cert.verify_code}")

    # --- reading ------------------------------------------------------------------------------

    async def to_schemas(self, rows: list[tuple[Certification, str]]) -> list[schemas.Certification]:
        trained = await self.repo.trained_staff([c.organization_id for c, _ in rows])
        return [
            schemas.Certification(
                id=c.id,
                organization_id=c.organization_id,
                organization_name=name,
                municipality_code=c.municipality_code,
                number=c.number,
                sticker_serial=c.sticker_serial,
                status=self.status_of(c),
                state=c.state,
                state_reason=c.state_reason,
                issued_on=c.issued_on,
                valid_from=c.valid_from,
                window_opens=c.window_opens,
                valid_until=c.valid_until,
                grace_until=c.grace_until,
                trained_staff=[
                    schemas.TrainedPerson(participant_id=pid, name=pname)
                    for pid, pname in trained[c.organization_id]
                ],
                needs_training=not trained[c.organization_id],
                verify_url=self.verify_url(c),
                created_at=c.created_at,
                updated_at=c.updated_at,
            )
            for c, name in rows
        ]

    async def get(self, ident: UUID) -> tuple[Certification, str]:
        row = await self.repo.get_visible(self.ctx.principal, ident)
        if row is None:
            raise not_found("certification", ident)
        return row

    async def one(self, ident: UUID) -> schemas.Certification:
        return (await self.to_schemas([await self.get(ident)]))[0]

    async def page(
        self,
        *,
        organization_id: UUID | None,
        municipality: str | None,
        county: str | None,
        status_filter: CertificationStatus | None,
        due_before: date | None,
        limit: int,
        cursor: str | None,
    ) -> schemas.CertificationPage:
        rows, next_cursor = await self.repo.page(
            self.ctx.principal,
            today=self.today,
            organization_id=organization_id,
            municipality=municipality,
            county=county,
            status=status_filter,
            due_before=due_before,
            limit=limit,
            cursor=cursor,
        )
        return schemas.CertificationPage(
            items=await self.to_schemas(rows), limit=limit, next_cursor=next_cursor
        )

    async def history(self, ident: UUID) -> schemas.History:
        row = await self.get(ident)
        cert = row[0]
        return schemas.History(
            certification=(await self.to_schemas([row]))[0],
            periods=[
                schemas.Period(
                    id=p.id,
                    kind=p.kind,
                    valid_from=p.valid_from,
                    window_opens=p.window_opens,
                    valid_until=p.valid_until,
                    grace_until=p.grace_until,
                    meeting_id=p.meeting_id,
                )
                for p in await self.repo.periods(cert.id)
            ],
            events=[
                schemas.Event(
                    id=e.id,
                    kind=e.kind,
                    status=e.status,
                    reason=e.reason,
                    occurred_at=e.occurred_at,
                    principal_id=e.principal_id,
                )
                for e in await self.repo.events(cert.id)
            ],
        )

    # --- issuing and renewing -----------------------------------------------------------------

    async def issue(self, data: schemas.CertificationIssue) -> Certification:
        """The coordinator's explicit call; every rule answers with the field that breaks it."""
        meeting = await self._held_meeting(data.meeting_id, ISSUING_MEETINGS)
        org = await self._organization(data.organization_id, meeting)
        await self._check_attended(meeting, org)
        existing = await self.repo.get_one_or_none(organization_id=org.id)
        if existing is not None:
            current = self.status_of(existing)
            if current is not CertificationStatus.LAPSED:
                raise state_conflict(existing, current, "issue again", [CertificationStatus.LAPSED.value])
        if not await self.repo.has_network_contact(org):
            raise invalid(
                "organization_id",
                "no one at this organization is in the local network's mailing list with consent",
            )
        return await self._earn(org, meeting, existing)

    async def renew(self, ident: UUID, data: schemas.Renewal) -> Certification:
        cert, _ = await self.get(ident)
        current = self.status_of(cert)
        if current is CertificationStatus.REVOKED or current is CertificationStatus.SUSPENDED:
            raise state_conflict(cert, current, "renew", ["follow_up_due", "in_grace"])
        meeting = await self._held_meeting(data.meeting_id, (MeetingKind.FOLLOW_UP_MEETING,))
        org = await self._organization(cert.organization_id, meeting, field="meeting_id")
        await self._check_attended(meeting, org)
        held_on = self._day_of(meeting)
        if not renewable(cert.state, current_window(cert), held_on):
            raise state_conflict(
                cert,
                current,
                "renew from a meeting outside the renewal window of",
                ["follow_up_due", "in_grace"],
            )
        await self._add_period(cert, PeriodKind.RENEWED, held_on, meeting.id)
        await self._record(cert, "renewed", None)
        return cert

    async def issue_for_meeting(self, meeting: Meeting) -> int:
        """When a meeting closes: certify (or renew) every eligible organization that attended.
        The ineligible are skipped, not refused: the coordinator sees them uncertified."""
        done = 0
        for org_id in await self.repo.attending_organizations(meeting.id):
            org = await self.ctx.session.get(Organization, org_id)
            if (
                org is None
                or org.kind not in PHYSICAL_KINDS
                or org.municipality_code != meeting.municipality_code
            ):
                continue
            existing = await self.repo.get_one_or_none(organization_id=org.id)
            if meeting.kind in ISSUING_MEETINGS:
                lapsed = existing is not None and self.status_of(existing) is CertificationStatus.LAPSED
                if (existing is None or lapsed) and await self.repo.has_network_contact(org):
                    await self._earn(org, meeting, existing)
                    done += 1
            elif meeting.kind is MeetingKind.FOLLOW_UP_MEETING and existing is not None:
                held_on = self._day_of(meeting)
                if renewable(existing.state, current_window(existing), held_on):
                    await self._add_period(existing, PeriodKind.RENEWED, held_on, meeting.id)
                    await self._record(existing, "renewed", None)
                    done += 1
        return done

    async def _earn(
        self, org: Organization, meeting: Meeting, existing: Certification | None
    ) -> Certification:
        held_on = self._day_of(meeting)
        if existing is not None:
            await self._add_period(existing, PeriodKind.REISSUED, held_on, meeting.id)
            await self._record(existing, "reissued", None)
            cert = existing
        else:
            serial = await self.repo.next_serial()
            first = window(held_on, self.terms)
            assert org.municipality_code is not None
            cert = Certification(
                id=uuid4(),
                organization_id=org.id,
                serial=serial,
                number=f"TMN-{org.municipality_code}-{serial:06d}",
                sticker_serial=f"D-{serial:06d}",
                verify_code=secrets.token_urlsafe(18),
                municipality_code=org.municipality_code,
                state=CertificationState.ACTIVE,
                issued_on=held_on,
                valid_from=first.valid_from,
                window_opens=first.window_opens,
                valid_until=first.valid_until,
                grace_until=first.grace_until,
            )
            self.ctx.session.add(cert)
            await self.ctx.session.flush()
            await self._add_period(cert, PeriodKind.ISSUED, held_on, meeting.id)
            await self._record(cert, "issued", None)
        await self._send_documents(cert, org, meeting)
        return cert

    async def _add_period(
        self, cert: Certification, kind: PeriodKind, start: date, meeting_id: UUID | None
    ) -> None:
        span = window(start, self.terms)
        self.ctx.session.add(
            CertificationPeriod(
                certification_id=cert.id,
                kind=kind,
                valid_from=span.valid_from,
                window_opens=span.window_opens,
                valid_until=span.valid_until,
                grace_until=span.grace_until,
                meeting_id=meeting_id,
            )
        )
        cert.valid_from, cert.window_opens = span.valid_from, span.window_opens
        cert.valid_until, cert.grace_until = span.valid_until, span.grace_until
        await self.ctx.session.flush()

    # --- decisions ----------------------------------------------------------------------------

    async def suspend(self, ident: UUID, data: schemas.StateChange) -> Certification:
        cert, _ = await self.get(ident)
        current = self.status_of(cert)
        if cert.state is not CertificationState.ACTIVE:
            raise state_conflict(cert, current, "suspend", ["active", "follow_up_due", "in_grace", "lapsed"])
        return await self._decide(cert, CertificationState.SUSPENDED, "suspended", data.reason)

    async def reinstate(self, ident: UUID, data: schemas.Reinstate) -> Certification:
        cert, _ = await self.get(ident)
        if cert.state is not CertificationState.SUSPENDED:
            raise state_conflict(cert, self.status_of(cert), "reinstate", ["suspended"])
        return await self._decide(cert, CertificationState.ACTIVE, "reinstated", data.reason)

    async def revoke(self, ident: UUID, data: schemas.StateChange) -> Certification:
        cert, _ = await self.get(ident)
        if cert.state is CertificationState.REVOKED:
            raise state_conflict(
                cert,
                CertificationStatus.REVOKED,
                "revoke",
                ["active", "follow_up_due", "in_grace", "lapsed", "suspended"],
            )
        return await self._decide(cert, CertificationState.REVOKED, "revoked", data.reason)

    async def organization_closed(self, org: Organization) -> None:
        """An organization closed (archived, or closed by its carrier): its certification is revoked."""
        cert = await self.repo.get_one_or_none(organization_id=org.id)
        if cert is not None and cert.state is not CertificationState.REVOKED:
            await self._decide(cert, CertificationState.REVOKED, "revoked", "the organization was closed")

    async def _decide(
        self, cert: Certification, state: CertificationState, kind: str, reason: str | None
    ) -> Certification:
        cert.state = state
        cert.state_reason = reason
        cert.state_changed_at = self.ctx.clock()
        await self.ctx.session.flush()
        await self._record(cert, kind, reason)
        return cert

    async def _record(
        self, cert: Certification, kind: str, reason: str | None, previous: CertificationStatus | None = None
    ) -> None:
        now = self.ctx.clock()
        current = self.status_of(cert)
        self.ctx.session.add(
            CertificationEvent(
                certification_id=cert.id,
                kind=kind,
                status=current,
                reason=reason,
                occurred_at=now,
                principal_id=self.ctx.principal.id,
            )
        )
        await self.ctx.session.flush()
        await events.emit(
            self.ctx,
            self.settings,
            DomainEvent(
                id=str(uuid4()),
                type="certification.status_changed",
                occurred_at=now.isoformat(),
                data={
                    "certification_id": str(cert.id),
                    "organization_id": str(cert.organization_id),
                    "number": cert.number,
                    "change": kind,
                    "status": current.value,
                    "valid_until": cert.valid_until.isoformat(),
                },
                municipality_code=cert.municipality_code,
                county_code=cert.municipality_code[:2],
            ),
        )

    # --- time's changes, noticed ------------------------------------------------------------

    async def notify(self) -> schemas.NotifyReport:
        """Record and e-mail what the calendar changed: due, in grace, lapsed. Each once per period."""
        counts = {
            CertificationStatus.FOLLOW_UP_DUE: 0,
            CertificationStatus.IN_GRACE: 0,
            CertificationStatus.LAPSED: 0,
        }
        queued = 0
        for cert in await self.repo.needing_notice(self.today):
            current = self.status_of(cert)
            if current not in counts:
                continue
            periods = await self.repo.periods(cert.id)
            period = periods[-1]
            if await self.ctx.session.get(CertificationNotice, (cert.id, period.id, current)) is not None:
                continue
            self.ctx.session.add(
                CertificationNotice(
                    certification_id=cert.id, period_id=period.id, status=current, noticed_at=self.ctx.clock()
                )
            )
            await self._record(cert, current.value, None)
            counts[current] += 1
            if current is not CertificationStatus.IN_GRACE:
                queued += await self._notice_mail(cert, current)
        await self.ctx.session.flush()
        return schemas.NotifyReport(
            follow_up_due=counts[CertificationStatus.FOLLOW_UP_DUE],
            in_grace=counts[CertificationStatus.IN_GRACE],
            lapsed=counts[CertificationStatus.LAPSED],
            messages_queued=queued,
        )

    async def _notice_mail(self, cert: Certification, current: CertificationStatus) -> int:
        org = await self.ctx.session.get(Organization, cert.organization_id)
        if org is None or not org.email:
            return 0
        coordinator = await self._coordinator(cert.municipality_code)
        values: dict[str, Any] = {"organization_name": org.name, **coordinator}
        if current is CertificationStatus.FOLLOW_UP_DUE:
            name, values["due_by"] = "follow_up_due", cert.valid_until
        else:
            name, values["lapsed_on"] = "certification_lapsed", cert.grace_until
        rendered = render_email(name, "sv", values)
        await OutboxService(self.ctx, self.settings).enqueue_email(
            to=org.email, subject=rendered.subject, text=rendered.text, html=rendered.html
        )
        return 1

    async def _coordinator(self, municipality_code: str) -> dict[str, str]:
        from sqlalchemy import select

        from service.participants.models import Participant, ParticipantRole, ParticipantRoleKind

        stmt = (
            select(Participant)
            .join(ParticipantRole, ParticipantRole.participant_id == Participant.id)
            .join(Organization, Organization.id == Participant.organization_id)
            .where(
                ParticipantRole.role == ParticipantRoleKind.MUNICIPAL_COORDINATOR,
                Organization.municipality_code == municipality_code,
                Participant.erased_at.is_(None),
            )
            .order_by(Participant.created_at)
        )
        person = (await self.ctx.session.scalars(stmt.limit(1))).first()
        if person is None:
            return {
                "coordinator_name": "Tillsammans mot nätdroger",
                "coordinator_email": self.settings.email_from,
            }
        return {"coordinator_name": person.name, "coordinator_email": person.email}

    # --- documents, credential, verification -------------------------------------------------

    async def document_data(self, cert: Certification, org: Organization) -> documents.CertificateData:
        municipality = await self.ctx.session.get(Municipality, cert.municipality_code)
        address = ", ".join(
            p for p in (org.street_address, " ".join(x for x in (org.postal_code, org.city) if x)) if p
        )
        contacts = await whom_to_call(self.ctx, self.outside, cert.municipality_code)
        return documents.CertificateData(
            organization_name=org.name,
            organization_address=address or None,
            municipality_name=municipality.name if municipality else cert.municipality_code,
            certification_number=cert.number,
            sticker_serial=cert.sticker_serial,
            valid_from=cert.valid_from,
            valid_until=cert.valid_until,
            issued_on=cert.issued_on,
            verify_url=self.verify_url(cert),
            contacts=[documents.Contact(c["organization"], c["role"], c["phone"]) for c in contacts],
        )

    async def certificate_pdf(
        self, ident: UUID, language: Literal["sv", "en"]
    ) -> tuple[Certification, bytes]:
        cert, _ = await self.get(ident)
        org = await self.ctx.session.get(Organization, cert.organization_id)
        assert org is not None
        return cert, documents.certificate_pdf(await self.document_data(cert, org), language)

    async def sticker_pdf(self, ident: UUID) -> tuple[Certification, bytes]:
        cert, _ = await self.get(ident)
        org = await self.ctx.session.get(Organization, cert.organization_id)
        assert org is not None
        return cert, documents.sticker_pdf(await self.document_data(cert, org))

    async def _send_documents(self, cert: Certification, org: Organization, meeting: Meeting) -> None:
        """On issue: the certificate and the sticker to the place, and to its staff who attended."""
        data = await self.document_data(cert, org)
        attachments = [
            Attachment(
                filename=f"certifiering-{cert.number}.pdf",
                content_type="application/pdf",
                content=documents.certificate_pdf(data, "sv"),
            ),
            Attachment(
                filename=f"dekal-{cert.sticker_serial}.pdf",
                content_type="application/pdf",
                content=documents.sticker_pdf(data),
            ),
        ]
        recipients: dict[str, tuple[str | None, str]] = {}
        if org.email:
            recipients[org.email.lower()] = (None, org.email)
        for person in await self.repo.attended(meeting.id, org.id):
            if person.erased_at is None:
                recipients.setdefault(person.email.lower(), (person.name, person.email))
        outbox = OutboxService(self.ctx, self.settings)
        for name, address in recipients.values():
            rendered = render_email(
                "certificate_issued",
                "sv",
                {
                    "organization_name": org.name,
                    "certification_number": cert.number,
                    "valid_until": cert.valid_until,
                    "verify_url": data.verify_url,
                    "recipient_name": name,
                },
            )
            await outbox.enqueue_email(
                to=address,
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                attachments=attachments,
            )

    async def credential(self, ident: UUID) -> schemas.Credential:
        cert, name = await self.get(ident)
        current = self.status_of(cert)
        if current in (CertificationStatus.REVOKED, CertificationStatus.LAPSED):
            raise state_conflict(
                cert, current, "issue a credential for", ["active", "follow_up_due", "in_grace", "suspended"]
            )
        municipality = await self.ctx.session.get(Municipality, cert.municipality_code)
        period = (await self.repo.periods(cert.id))[-1]
        token = credentials.issue_credential(
            issuer_key(self.outside),
            issuer_id=issuer_id(self.outside),
            issuer_name=ISSUER_NAME,
            credential_id=f"urn:uuid:{period.id}",
            subject=credentials.CredentialSubject(
                organization_name=name,
                municipality_code=cert.municipality_code,
                municipality_name=municipality.name if municipality else cert.municipality_code,
                certification_number=cert.number,
                verify_url=self.verify_url(cert),
            ),
            valid_from=_start_of(cert.valid_from),
            valid_until=_start_of(cert.grace_until),
            issued_at=self.ctx.clock(),
            status_list_url=public_url(self.settings, "/v1/credentials/status"),
            status_index=cert.serial,
        )
        return schemas.Credential(format="vc+jwt", credential=token)

    async def status_list(self, purpose: Literal["revocation", "suspension"]) -> str:
        state = CertificationState.REVOKED if purpose == "revocation" else CertificationState.SUSPENDED
        return credentials.status_list_credential(
            issuer_key(self.outside),
            issuer_id=issuer_id(self.outside),
            list_url=public_url(self.settings, f"/v1/credentials/status/{purpose}"),
            purpose=purpose,
            set_indexes=await self.repo.with_state((state,)),
            issued_at=self.ctx.clock(),
        )

    async def verify(self, code: str) -> schemas.Verification:
        cert = await self.repo.get_one_or_none(verify_code=code)
        if cert is None:
            raise not_found("certification", "(no such code)")
        org = await self.ctx.session.get(Organization, cert.organization_id)
        municipality = await self.ctx.session.get(Municipality, cert.municipality_code)
        current = self.status_of(cert)
        return schemas.Verification(
            status=current,
            valid=current
            in (CertificationStatus.ACTIVE, CertificationStatus.FOLLOW_UP_DUE, CertificationStatus.IN_GRACE),
            organization_name=org.name if org else "",
            municipality_name=municipality.name if municipality else cert.municipality_code,
            certification_number=cert.number,
            valid_until=cert.valid_until,
            checked_at=self.ctx.clock(),
        )

    # --- helpers ------------------------------------------------------------------------------

    async def _held_meeting(self, meeting_id: UUID, kinds: tuple[MeetingKind, ...]) -> Meeting:
        from service.meetings.repository import MeetingRepository

        meeting = await MeetingRepository(session=self.ctx.session).get_visible(
            self.ctx.principal, meeting_id
        )
        if meeting is None:
            raise invalid("meeting_id", f"no meeting {meeting_id}")
        if meeting.kind not in kinds:
            raise invalid(
                "meeting_id",
                f"a {meeting.kind.value} does not count here; needs: {', '.join(k.value for k in kinds)}",
            )
        if await self.repo.held_meeting(meeting.id) is None:
            raise invalid("meeting_id", f"the meeting is {meeting.status.value}; it must have been held")
        return meeting

    async def _organization(
        self, organization_id: UUID, meeting: Meeting, *, field: str = "organization_id"
    ) -> Organization:
        from service.organizations.service import OrganizationService

        org = await OrganizationService(self.ctx).require_active(organization_id, field="organization_id")
        if org.kind not in PHYSICAL_KINDS:
            raise invalid(
                "organization_id", "only pickup points, terminals and mail-carrier offices are certified"
            )
        if org.municipality_code != meeting.municipality_code:
            raise invalid(field, "the meeting was held in another municipality than the organization's")
        return org

    async def _check_attended(self, meeting: Meeting, org: Organization) -> None:
        if not await self.repo.attended(meeting.id, org.id):
            raise invalid("organization_id", "none of this organization's staff attended the meeting")

    @staticmethod
    def _day_of(meeting: Meeting) -> date:
        return (meeting.held_at or meeting.starts_at).astimezone(STOCKHOLM).date()


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=STOCKHOLM).astimezone(UTC)


_KEYS: dict[tuple[str, str], credentials.IssuerKey] = {}


def issuer_key(outside: Outside) -> credentials.IssuerKey:
    """The signing key, loaded once per process."""
    s = outside.settings
    cache_key = (s.credential_key_file, s.data_dir)
    if cache_key not in _KEYS:
        try:
            _KEYS[cache_key] = credentials.IssuerKey.load_or_create(
                key_file=s.credential_key_file, data_dir=s.data_dir, embedded=s.is_embedded
            )
        except SettingsError as exc:
            # A configuration gap, said plainly (503), not an internal error.
            raise Problem("service-unavailable", f"credentials are not set up: {exc}") from exc
    return _KEYS[cache_key]


def issuer_id(outside: Outside) -> str:
    return public_url(outside.settings, "")
