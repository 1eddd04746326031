"""Rules for meetings: the network of the fitting level, Stockholm times, instructors with the
qualification, and the lifecycle draft → scheduled → invitations sent → held → closed (cancelled
from any state before held), each step an explicit transition."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import msgspec

from service import events
from service.context import Context
from service.meetings import checklists, schemas
from service.meetings.instructors import REPRESENTS, qualified
from service.meetings.mail import MeetingMailer, Outside
from service.meetings.models import (
    LEVELS_OF_KIND,
    NETWORK_KIND_OF,
    ChecklistItem,
    Invitation,
    InvitationStatus,
    Meeting,
    MeetingInstructor,
    MeetingKind,
    MeetingStatus,
    RegistrationStatus,
    Reminder,
    ReminderAudience,
    ReminderStatus,
)
from service.meetings.repository import (
    InvitationRepository,
    MeetingRepository,
    RegistrationRepository,
    ReminderRepository,
    mailing_list,
)
from service.meetings.times import TIMEZONE, NonexistentTime, from_input, local, same_wall_time_later
from service.networks.models import Network
from service.networks.repository import NetworkRepository
from service.networks.service import NetworkService
from service.organizations.models import Organization
from service.participants.models import Participant, ParticipantRole, ParticipantRoleKind
from service.participants.service import ParticipantService
from service.pluginspec import DomainEvent
from service.problems import FieldError, Problem, invalid, not_found
from service.validation import clean_name
from service.versioning import check_if_match, etag_of

S = MeetingStatus
TRANSITIONS: dict[MeetingStatus, tuple[MeetingStatus, ...]] = {
    S.DRAFT: (S.SCHEDULED, S.CANCELLED),
    S.SCHEDULED: (S.INVITATIONS_SENT, S.CANCELLED),
    S.INVITATIONS_SENT: (S.HELD, S.CANCELLED),
    S.HELD: (S.CLOSED,),
    S.CLOSED: (),
    S.CANCELLED: (),
}
EDITABLE = (S.DRAFT, S.SCHEDULED, S.INVITATIONS_SENT)
MINUTES_STATES = (S.HELD, S.CLOSED)
# Changing these after invitations went out sends everyone an updated calendar entry.
NOTIFIED_FIELDS = ("starts_at", "ends_at", "venue", "online_url")
MAX_LENGTH = timedelta(hours=24)
# Instructors represent these authorities; a collaboration meeting needs the police.
DEFAULT_REMINDERS = ((7 * 24 * 60, ReminderAudience.NOT_ANSWERED), (24 * 60, ReminderAudience.REGISTERED))


def etag(meeting: Meeting) -> str:
    return etag_of("meeting", meeting.id, meeting.version)


def wrong_state(meeting: Meeting, action: str, allowed: tuple[MeetingStatus, ...]) -> Problem:
    """409 naming the meeting's state and the states (or transitions) that would be allowed."""
    names = [s.value for s in allowed]
    return Problem(
        "conflict",
        f"cannot {action} a {meeting.status.value} meeting"
        + (f"; allowed from: {', '.join(names)}" if names else "; nothing more can happen to it"),
        extra={"current_state": meeting.status.value, "allowed": names},
    )


def require_transition(meeting: Meeting, target: MeetingStatus) -> None:
    allowed = TRANSITIONS[meeting.status]
    if target not in allowed:
        names = [s.value for s in allowed]
        raise Problem(
            "conflict",
            f"a {meeting.status.value} meeting cannot become {target.value}; "
            + (f"it may become: {', '.join(names)}" if names else "it is final"),
            extra={"current_state": meeting.status.value, "allowed": names},
        )


class MeetingService:
    def __init__(self, ctx: Context, outside: Outside) -> None:
        self.ctx = ctx
        self.outside = outside
        self.repo = MeetingRepository(session=ctx.session)
        self.mailer = MeetingMailer(ctx, outside)

    @property
    def now(self) -> datetime:
        return self.ctx.clock()

    # --- reading ------------------------------------------------------------------------------

    async def get(self, ident: UUID) -> Meeting:
        meeting = await self.repo.get_visible(self.ctx.principal, ident)
        if meeting is None:
            raise not_found("meeting", ident)
        return meeting

    async def writable(self, ident: UUID) -> Meeting:
        """A meeting the principal may change: one of a network they may change."""
        meeting = await self.get(ident)
        await NetworkService(self.ctx).writable(meeting.network_id)
        return meeting

    async def to_schemas(self, meetings: list[Meeting]) -> list[schemas.Meeting]:
        ids = [m.id for m in meetings]
        counts = await self.repo.counts(ids)
        items = await self.repo.checklist_progress(ids)
        instructors = await self._instructor_rows([p.participant_id for m in meetings for p in m.instructors])
        out = []
        for m in meetings:
            facts = await self._facts(m, counts.get(m.id, {}), instructors) if items.get(m.id) else {}
            done = sum(1 for i in items.get(m.id, []) if _is_done(i, facts))
            c = counts.get(m.id, {})
            out.append(
                schemas.Meeting(
                    id=m.id,
                    network_id=m.network_id,
                    kind=m.kind,
                    status=m.status,
                    title=m.title,
                    description=m.description,
                    starts_at=local(m.starts_at),
                    ends_at=local(m.ends_at),
                    timezone=TIMEZONE,
                    venue=m.venue,
                    online_url=m.online_url,
                    capacity=m.capacity,
                    agenda=list(m.agenda),
                    registration_deadline=m.registration_deadline,
                    coordinator_id=m.coordinator_id,
                    municipality_code=m.municipality_code,
                    instructors=[instructors[i.participant_id] for i in m.instructors],
                    sequence=m.sequence,
                    invitations_sent_at=m.invitations_sent_at,
                    held_at=m.held_at,
                    closed_at=m.closed_at,
                    cancelled_at=m.cancelled_at,
                    cancel_reason=m.cancel_reason,
                    minutes_distributed_at=m.minutes_distributed_at,
                    follow_up_of_id=m.follow_up_of_id,
                    counts=schemas.Counts(
                        invited=c.get("invited", 0),
                        declined=c.get("declined", 0),
                        registered=c.get("registered", 0),
                        waitlisted=c.get("waitlisted", 0),
                        attended=c.get("attended", 0),
                        no_show=c.get("no_show", 0),
                    ),
                    checklist=schemas.Progress(done=done, total=len(items.get(m.id, []))),
                    allowed_transitions=list(TRANSITIONS[m.status]),
                    created_at=m.created_at,
                    updated_at=m.updated_at,
                )
            )
        return out

    async def to_schema(self, meeting: Meeting) -> schemas.Meeting:
        return (await self.to_schemas([meeting]))[0]

    async def page(
        self,
        *,
        network_id: UUID | None,
        kind: MeetingKind | None,
        status: MeetingStatus | None,
        municipality: str | None,
        county: str | None,
        starts_after: datetime | None,
        starts_before: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> schemas.MeetingPage:
        times = {}
        for field, value in (("starts_after", starts_after), ("starts_before", starts_before)):
            if value is not None:
                try:
                    times[field] = from_input(value)
                except NonexistentTime as exc:
                    raise invalid(field, str(exc), "query") from exc
        rows, next_cursor = await self.repo.page(
            self.ctx.principal,
            network_id=network_id,
            kind=kind,
            status=status,
            municipality=municipality,
            county=county,
            starts_after=times.get("starts_after"),
            starts_before=times.get("starts_before"),
            limit=limit,
            cursor=cursor,
        )
        return schemas.MeetingPage(items=await self.to_schemas(rows), limit=limit, next_cursor=next_cursor)

    # --- writing ------------------------------------------------------------------------------

    async def create(self, data: schemas.MeetingCreate) -> Meeting:
        network = await self._network_for(data.network_id, data.kind)
        starts_at, ends_at = self._times(data.starts_at, data.ends_at)
        self._check_deadline(data.registration_deadline, starts_at)
        if data.coordinator_id is not None:
            await ParticipantService(self.ctx).require(data.coordinator_id, field="coordinator_id")
        meeting = Meeting(
            id=uuid4(),
            network_id=network.id,
            kind=data.kind,
            status=MeetingStatus.DRAFT,
            title=clean_name(data.title),
            description=data.description,
            starts_at=starts_at,
            ends_at=ends_at,
            venue=data.venue,
            online_url=data.online_url,
            capacity=data.capacity,
            agenda=list(data.agenda),
            registration_deadline=data.registration_deadline,
            coordinator_id=data.coordinator_id,
            municipality_code=network.municipality_code,
            sequence=0,
        )
        meeting.instructors = await self._instructors(
            data.kind, data.instructor_ids, starts_at, counties_of_network(network)
        )
        self.ctx.session.add(meeting)
        await self.ctx.session.flush()
        return meeting

    async def update(self, ident: UUID, patch: schemas.MeetingUpdate, if_match: str | None) -> Meeting:
        meeting = await self.writable(ident)
        check_if_match(if_match, etag(meeting))
        if meeting.status not in EDITABLE:
            raise wrong_state(meeting, "change", EDITABLE)
        changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
        before = {f: getattr(meeting, f) for f in NOTIFIED_FIELDS}
        if "starts_at" in changes or "ends_at" in changes:
            starts_at, ends_at = self._times(
                changes.get("starts_at", meeting.starts_at), changes.get("ends_at", meeting.ends_at)
            )
            if meeting.status is not MeetingStatus.DRAFT and starts_at <= self.now:
                raise invalid("starts_at", "a scheduled meeting cannot move into the past")
            meeting.starts_at, meeting.ends_at = starts_at, ends_at
        if "registration_deadline" in changes or "starts_at" in changes:
            self._check_deadline(
                changes.get("registration_deadline", meeting.registration_deadline), meeting.starts_at
            )
        if "title" in changes:
            meeting.title = clean_name(changes["title"])
        for field in ("venue", "online_url", "capacity", "description", "registration_deadline"):
            if field in changes:
                setattr(meeting, field, changes[field])
        if "agenda" in changes:
            meeting.agenda = list(changes["agenda"])
        if "coordinator_id" in changes:
            if changes["coordinator_id"] is not None:
                await ParticipantService(self.ctx).require(changes["coordinator_id"], field="coordinator_id")
            meeting.coordinator_id = changes["coordinator_id"]
        if "instructor_ids" in changes:
            network = await NetworkRepository(session=self.ctx.session).get(meeting.network_id)
            wanted = await self._instructors(
                meeting.kind, changes["instructor_ids"], meeting.starts_at, counties_of_network(network)
            )
            if {i.participant_id for i in wanted} != {i.participant_id for i in meeting.instructors}:
                meeting.instructors = wanted
                meeting.updated_at = self.now  # a collection change alone would not move the ETag
        if meeting.status is not MeetingStatus.DRAFT:
            await self._check_ready(meeting)
        moved = [f for f in NOTIFIED_FIELDS if getattr(meeting, f) != before[f]]
        if moved and meeting.status is MeetingStatus.INVITATIONS_SENT:
            meeting.sequence += 1
            await self._tell_everyone(meeting, cancelled=False)
            await self._emit(meeting, "meeting.changed", {"changed": moved})
        if "capacity" in changes and meeting.status is MeetingStatus.INVITATIONS_SENT:
            from service.meetings.registrations import RegistrationService

            await RegistrationService(self.ctx, self.outside).fill_free_seats(meeting)
        await self.ctx.session.flush()
        return meeting

    # --- lifecycle ----------------------------------------------------------------------------

    async def schedule(self, ident: UUID, if_match: str | None) -> Meeting:
        meeting = await self.writable(ident)
        check_if_match(if_match, etag(meeting))
        require_transition(meeting, MeetingStatus.SCHEDULED)
        if meeting.starts_at <= self.now:
            raise invalid("starts_at", "a meeting is scheduled for the future; move it first")
        await self._check_ready(meeting)
        meeting.status = MeetingStatus.SCHEDULED
        for position, item in enumerate(checklists.TEMPLATES[meeting.kind]):
            self.ctx.session.add(
                ChecklistItem(
                    meeting_id=meeting.id,
                    key=item.key,
                    position=position,
                    automatic=item.automatic,
                    required=item.required,
                )
            )
        reminders = ReminderRepository(session=self.ctx.session)
        if not await reminders.of_meeting(meeting.id):
            for minutes, audience in DEFAULT_REMINDERS:
                self.ctx.session.add(
                    Reminder(meeting_id=meeting.id, minutes_before=minutes, audience=audience)
                )
        await self.ctx.session.flush()
        await self._emit(meeting, "meeting.scheduled", {})
        return meeting

    async def hold(self, ident: UUID, if_match: str | None) -> Meeting:
        meeting = await self.writable(ident)
        check_if_match(if_match, etag(meeting))
        require_transition(meeting, MeetingStatus.HELD)
        if self.now < meeting.starts_at:
            raise Problem(
                "conflict",
                "the meeting has not started yet",
                extra={"current_state": meeting.status.value, "allowed": [MeetingStatus.HELD.value]},
            )
        meeting.status = MeetingStatus.HELD
        meeting.held_at = self.now
        await self._skip_pending_reminders(meeting)
        if meeting.kind in (MeetingKind.COLLABORATION_MEETING, MeetingKind.FOLLOW_UP_MEETING):
            await self._propose_follow_up(meeting)
        await self.ctx.session.flush()
        await self._emit(meeting, "meeting.held", {})
        return meeting

    async def close(self, ident: UUID, if_match: str | None) -> Meeting:
        meeting = await self.writable(ident)
        check_if_match(if_match, etag(meeting))
        require_transition(meeting, MeetingStatus.CLOSED)
        now = self.now
        await RegistrationRepository(session=self.ctx.session).no_show_unrecorded(meeting.id, now)
        if meeting.kind is MeetingKind.INSTRUCTOR_TRAINING:
            await self._qualify_instructors(meeting)
        meeting.status = MeetingStatus.CLOSED
        meeting.closed_at = now
        await self.ctx.session.flush()
        from service.certifications.service import CertificationService

        await CertificationService(self.ctx, self.outside).issue_for_meeting(meeting)
        if meeting.surveys_sent_at is None:
            from service.meetings.surveys import SurveyService

            await SurveyService(self.ctx, self.outside).dispatch(meeting)
        await self._emit(meeting, "meeting.closed", {})
        return meeting

    async def cancel(self, ident: UUID, data: schemas.CancelMeeting, if_match: str | None) -> Meeting:
        meeting = await self.writable(ident)
        check_if_match(if_match, etag(meeting))
        require_transition(meeting, MeetingStatus.CANCELLED)
        told = meeting.status is MeetingStatus.INVITATIONS_SENT
        meeting.status = MeetingStatus.CANCELLED
        meeting.cancelled_at = self.now
        meeting.cancel_reason = data.reason
        await self._skip_pending_reminders(meeting)
        if told:
            meeting.sequence += 1
            await self._tell_everyone(meeting, cancelled=True)
        await self.ctx.session.flush()
        await self._emit(meeting, "meeting.cancelled", {"reason_given": data.reason is not None})
        return meeting

    # --- reminders ----------------------------------------------------------------------------

    async def reminders(self, ident: UUID) -> list[schemas.Reminder]:
        meeting = await self.get(ident)
        return [
            _reminder(r, meeting)
            for r in await ReminderRepository(session=self.ctx.session).of_meeting(meeting.id)
        ]

    async def add_reminder(self, ident: UUID, data: schemas.ReminderCreate) -> schemas.Reminder:
        meeting = await self.writable(ident)
        if meeting.status not in EDITABLE:
            raise wrong_state(meeting, "add a reminder to", EDITABLE)
        for existing in await ReminderRepository(session=self.ctx.session).of_meeting(meeting.id):
            if existing.minutes_before == data.minutes_before and existing.audience is data.audience:
                raise Problem(
                    "conflict",
                    "minutes_before: this meeting already has that reminder",
                    errors=[FieldError("minutes_before", "already set for this audience")],
                )
        reminder = Reminder(meeting_id=meeting.id, minutes_before=data.minutes_before, audience=data.audience)
        self.ctx.session.add(reminder)
        await self.ctx.session.flush()
        return _reminder(reminder, meeting)

    async def delete_reminder(self, ident: UUID, reminder_id: UUID) -> None:
        meeting = await self.writable(ident)
        repo = ReminderRepository(session=self.ctx.session)
        reminder = await repo.get_one_or_none(id=reminder_id, meeting_id=meeting.id)
        if reminder is None:
            raise not_found("reminder", reminder_id)
        if reminder.status is not ReminderStatus.PENDING:
            raise Problem("conflict", f"this reminder is {reminder.status.value}; it stays on record")
        await self.ctx.session.delete(reminder)
        await self.ctx.session.flush()

    # --- minutes ------------------------------------------------------------------------------

    async def minutes(self, ident: UUID) -> schemas.MinutesOut:
        return _minutes(await self.get(ident))

    async def write_minutes(self, ident: UUID, data: schemas.Minutes) -> schemas.MinutesOut:
        meeting = await self.writable(ident)
        if meeting.status not in MINUTES_STATES:
            raise wrong_state(meeting, "write the minutes of", MINUTES_STATES)
        if data.text != meeting.minutes:
            meeting.minutes = data.text
            meeting.minutes_updated_at = self.now
            await self.ctx.session.flush()
        return _minutes(meeting)

    async def distribute_minutes(self, ident: UUID) -> schemas.Distribution:
        """To everyone who attended (and the instructors), and as a mailing to the network's list."""
        meeting = await self.writable(ident)
        if meeting.status not in MINUTES_STATES:
            raise wrong_state(meeting, "distribute the minutes of", MINUTES_STATES)
        if not meeting.minutes or meeting.minutes_updated_at is None:
            raise Problem("conflict", "write the minutes first (PUT …/minutes)")
        if (
            meeting.minutes_distributed_at is not None
            and meeting.minutes_updated_at <= meeting.minutes_distributed_at
        ):
            raise Problem(
                "conflict", "these minutes were already distributed; change them to send them again"
            )
        registrations = RegistrationRepository(session=self.ctx.session)
        attendees: dict[UUID, Participant] = {
            p.id: p
            for _r, p in await registrations.with_people(
                meeting.id, (RegistrationStatus.CONFIRMED,), attended_only=True
            )
        }
        for instructor in meeting.instructors:
            person = await self.ctx.session.get(Participant, instructor.participant_id)
            if person is not None:
                attendees[person.id] = person
        queued = sent_attendees = sent_list = 0
        for person in attendees.values():
            if person.erased_at is None and await self.mailer.minutes(meeting, person, mailing=False):
                queued += 1
                sent_attendees += 1
        for person in await mailing_list(self.repo, meeting):
            if person.id not in attendees and await self.mailer.minutes(meeting, person, mailing=True):
                queued += 1
                sent_list += 1
        meeting.minutes_distributed_at = self.now
        await self.ctx.session.flush()
        return schemas.Distribution(queued=queued, attendees=sent_attendees, mailing_list=sent_list)

    # --- checklist ----------------------------------------------------------------------------

    async def checklist(self, ident: UUID) -> schemas.Checklist:
        meeting = await self.get(ident)
        return await self._checklist(meeting)

    async def tick(self, ident: UUID, key: str, data: schemas.ChecklistTick) -> schemas.Checklist:
        meeting = await self.writable(ident)
        items = {i.key: i for i in await self.repo.checklist(meeting.id)}
        if not items:
            raise wrong_state(
                meeting, "tick the checklist of", (S.SCHEDULED, S.INVITATIONS_SENT, S.HELD, S.CLOSED)
            )
        item = items.get(key)
        if item is None:
            raise not_found("checklist item", key)
        if item.automatic:
            raise invalid("done", "this item ticks itself when TMN sees it done")
        item.done_at = self.now if data.done else None
        item.done_by = self.ctx.principal.id if data.done else None
        await self.ctx.session.flush()
        return await self._checklist(meeting)

    async def _checklist(self, meeting: Meeting) -> schemas.Checklist:
        items = await self.repo.checklist(meeting.id)
        facts = await self._facts(meeting)
        out = []
        for item in items:
            template = checklists.ITEMS[item.key]
            done = _is_done(item, facts)
            out.append(
                schemas.ChecklistItem(
                    key=item.key,
                    label=template.sv,
                    label_en=template.en,
                    automatic=item.automatic,
                    required=item.required,
                    done=done,
                    done_at=facts.get(item.key)
                    if item.automatic and isinstance(facts.get(item.key), datetime)
                    else item.done_at,
                    done_by="tmn" if item.automatic and done else item.done_by,
                )
            )
        return schemas.Checklist(
            meeting_id=meeting.id,
            progress=schemas.Progress(done=sum(1 for i in out if i.done), total=len(out)),
            items=out,
        )

    async def _facts(
        self,
        meeting: Meeting,
        counts: dict[str, int] | None = None,
        instructors: dict[UUID, schemas.Instructor] | None = None,
    ) -> dict[str, Any]:
        """What TMN sees done, for the automatic checklist items: a time when it has one, else a
        flag. A page of meetings passes the counts and instructors it already read."""
        if instructors is None:
            instructors = await self._instructor_rows([p.participant_id for p in meeting.instructors])
        if counts is None:
            counts = (await self.repo.counts([meeting.id])).get(meeting.id, {})
        represented = {instructors[p.participant_id].represents for p in meeting.instructors}
        return {
            "instructors_booked": "police" in represented or None,
            "customs_instructor": "customs" in represented or None,
            "invitations_sent": meeting.invitations_sent_at,
            "agent_managers_invited": await InvitationRepository(
                session=self.ctx.session
            ).agent_manager_invited(meeting.id)
            or None,
            "registrations_in": bool(counts.get("registered")) or None,
            "meeting_held": meeting.held_at,
            "minutes_written": meeting.minutes_updated_at,
            "minutes_distributed": meeting.minutes_distributed_at,
        }

    # --- helpers ------------------------------------------------------------------------------

    async def _network_for(self, network_id: UUID, kind: MeetingKind) -> Network:
        network = await NetworkRepository(session=self.ctx.session).get_visible(
            self.ctx.principal, network_id
        )
        if network is None:
            raise invalid("network_id", f"no network {network_id}")
        levels = LEVELS_OF_KIND[kind]
        if network.level not in levels:
            fitting = " or ".join(sorted(level.value for level in levels))
            raise invalid(
                "network_id",
                f"a {kind.value} belongs to a {fitting} network; this one is {network.level.value}",
            )
        needed = NETWORK_KIND_OF.get(kind)
        if needed is not None and network.kind is not needed:
            raise invalid(
                "network_id", f"a {kind.value} meets in a {needed.value} network, not a {network.kind.value}"
            )
        await NetworkService(self.ctx).writable(network.id)
        return network

    def _times(self, starts: datetime, ends: datetime) -> tuple[datetime, datetime]:
        try:
            starts_at = from_input(starts)
        except NonexistentTime as exc:
            raise invalid("starts_at", str(exc)) from exc
        try:
            ends_at = from_input(ends)
        except NonexistentTime as exc:
            raise invalid("ends_at", str(exc)) from exc
        if ends_at <= starts_at:
            raise invalid("ends_at", "must be after starts_at")
        if ends_at - starts_at > MAX_LENGTH:
            raise invalid("ends_at", "a meeting lasts at most 24 hours")
        return starts_at, ends_at

    @staticmethod
    def _check_deadline(deadline: Any, starts_at: datetime) -> None:
        if deadline is not None and deadline > local(starts_at).date():
            raise invalid("registration_deadline", "must be on or before the meeting's day")

    async def _instructor_rows(self, ids: list[UUID]) -> dict[UUID, schemas.Instructor]:
        if not ids:
            return {}
        from sqlalchemy import select

        stmt = (
            select(Participant.id, Participant.name, Participant.organization_id, Organization.kind)
            .outerjoin(Organization, Organization.id == Participant.organization_id)
            .where(Participant.id.in_(ids))
        )
        return {
            pid: schemas.Instructor(
                participant_id=pid,
                name=name,
                organization_id=org_id,
                represents=REPRESENTS.get(kind) if kind is not None else None,
            )
            for pid, name, org_id, kind in (await self.ctx.session.execute(stmt)).tuples()
        }

    async def _instructors(
        self, kind: MeetingKind, ids: list[UUID], starts_at: datetime, counties: set[str] | None
    ) -> list[MeetingInstructor]:
        people = ParticipantService(self.ctx)
        out: list[MeetingInstructor] = []
        seen: set[UUID] = set()
        for i, ident in enumerate(ids):
            field = f"instructor_ids[{i}]"
            # A qualified instructor employed in the meeting's counties may be booked even when the
            # booking coordinator's scope does not show them (police and customs work county-wide).
            found = await qualified(self.ctx, counties, ident=ident)
            person = found[0][0] if found else await people.require(ident, field=field)
            if person.id in seen:
                raise invalid(field, "listed twice")
            seen.add(person.id)
            # Trainers of an instructor training are the method's own people; everyone else needs
            # the qualification the training gives.
            if kind is not MeetingKind.INSTRUCTOR_TRAINING and (
                person.instructor_qualified_on is None
                or person.instructor_qualified_on > local(starts_at).date()
            ):
                raise invalid(field, "has no instructor qualification (attend an instructor training first)")
            out.append(MeetingInstructor(participant_id=person.id))
        return out

    async def _check_ready(self, meeting: Meeting) -> None:
        """What a meeting needs before it is scheduled (and keeps needing afterwards)."""
        if not meeting.venue and not meeting.online_url:
            raise Problem(
                "validation-error",
                "a meeting needs a venue or an online link",
                errors=[
                    FieldError("venue", "give a venue or an online_url"),
                    FieldError("online_url", "give a venue or an online_url"),
                ],
            )
        if meeting.kind is MeetingKind.COLLABORATION_MEETING:
            rows = await self._instructor_rows([i.participant_id for i in meeting.instructors])
            if not any(r.represents == "police" for r in rows.values()):
                raise invalid(
                    "instructor_ids", "a collaboration meeting needs at least one police instructor"
                )

    async def _skip_pending_reminders(self, meeting: Meeting) -> None:
        for reminder in await ReminderRepository(session=self.ctx.session).of_meeting(meeting.id):
            if reminder.status is ReminderStatus.PENDING:
                reminder.status = ReminderStatus.SKIPPED

    async def _tell_everyone(self, meeting: Meeting, *, cancelled: bool) -> None:
        """Send a change or a cancellation to every invitation out and every registered person."""
        invitations = InvitationRepository(session=self.ctx.session)
        for invitation in await invitations.with_status(
            meeting.id, (InvitationStatus.SENT, InvitationStatus.REGISTERED)
        ):
            if invitation.email:
                await self.mailer.change(
                    meeting,
                    to=invitation.email,
                    recipient_name=None,
                    language="sv",
                    cancelled=cancelled,
                    invitation_id=invitation.id,
                )
        registrations = RegistrationRepository(session=self.ctx.session)
        for _registration, person in await registrations.with_people(
            meeting.id,
            (RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED, RegistrationStatus.OFFERED),
        ):
            if person.erased_at is None:
                await self.mailer.change(
                    meeting,
                    to=person.email,
                    recipient_name=person.name,
                    language=person.language.value,
                    cancelled=cancelled,
                )

    async def _propose_follow_up(self, meeting: Meeting) -> None:
        """A draft follow-up one year on, same wall time, inviting the organizations that came."""
        if await self.repo.draft_follow_up(meeting.id) is not None:
            return
        follow_up = Meeting(
            id=uuid4(),
            network_id=meeting.network_id,
            kind=MeetingKind.FOLLOW_UP_MEETING,
            status=MeetingStatus.DRAFT,
            title=f"Uppföljningsmöte: {meeting.title}"[:200],
            starts_at=same_wall_time_later(meeting.starts_at, years=1),
            ends_at=same_wall_time_later(meeting.ends_at, years=1),
            venue=meeting.venue,
            online_url=meeting.online_url,
            capacity=meeting.capacity,
            agenda=[],
            coordinator_id=meeting.coordinator_id,
            municipality_code=meeting.municipality_code,
            follow_up_of_id=meeting.id,
            sequence=0,
        )
        follow_up.instructors = [
            MeetingInstructor(participant_id=i.participant_id) for i in meeting.instructors
        ]
        self.ctx.session.add(follow_up)
        await self.ctx.session.flush()
        await self.add_to_follow_up(meeting)

    async def add_to_follow_up(self, meeting: Meeting) -> None:
        """Invite (as pending) every organization that attended to the proposed follow-up draft."""
        follow_up = await self.repo.draft_follow_up(meeting.id)
        if follow_up is None:
            return
        registrations = RegistrationRepository(session=self.ctx.session)
        invitations = InvitationRepository(session=self.ctx.session)
        already = await invitations.invited_organizations(follow_up.id)
        for org_id in sorted(await registrations.attended_organizations(meeting.id) - already):
            org = await self.ctx.session.get(Organization, org_id)
            if org is not None:
                self.ctx.session.add(
                    Invitation(
                        meeting_id=follow_up.id,
                        organization_id=org.id,
                        email=org.email,
                        status=InvitationStatus.PENDING,
                    )
                )
        await self.ctx.session.flush()

    async def _qualify_instructors(self, meeting: Meeting) -> None:
        registrations = RegistrationRepository(session=self.ctx.session)
        day = local(meeting.held_at or meeting.starts_at).date()
        for _registration, person in await registrations.with_people(
            meeting.id, (RegistrationStatus.CONFIRMED,), attended_only=True
        ):
            if person.instructor_qualified_on is None:
                person.instructor_qualified_on = day
            if ParticipantRoleKind.INSTRUCTOR not in {r.role for r in person.roles}:
                person.roles.append(ParticipantRole(role=ParticipantRoleKind.INSTRUCTOR))

    async def _emit(self, meeting: Meeting, kind: str, data: dict[str, Any]) -> None:
        await events.emit(
            self.ctx,
            self.outside.settings,
            DomainEvent(
                id=str(uuid4()),
                type=kind,
                occurred_at=self.now.isoformat(),
                data={
                    "meeting_id": str(meeting.id),
                    "network_id": str(meeting.network_id),
                    "kind": meeting.kind.value,
                    "status": meeting.status.value,
                    "starts_at": local(meeting.starts_at).isoformat(),
                    **data,
                },
                municipality_code=meeting.municipality_code,
                county_code=meeting.municipality_code[:2] if meeting.municipality_code else None,
            ),
        )


def counties_of_network(network: Network) -> set[str] | None:
    """Where a network's meetings happen: its municipality's county, its counties, or anywhere."""
    if network.municipality_code is not None:
        return {network.municipality_code[:2]}
    return set(network.county_codes) or None


def _reminder(reminder: Reminder, meeting: Meeting) -> schemas.Reminder:
    return schemas.Reminder(
        id=reminder.id,
        meeting_id=reminder.meeting_id,
        minutes_before=reminder.minutes_before,
        audience=reminder.audience,
        due_at=local(meeting.starts_at - timedelta(minutes=reminder.minutes_before)),
        status=reminder.status,
        sent_at=reminder.sent_at,
        recipients=reminder.recipients,
    )


def _minutes(meeting: Meeting) -> schemas.MinutesOut:
    return schemas.MinutesOut(
        meeting_id=meeting.id,
        text=meeting.minutes,
        updated_at=meeting.minutes_updated_at,
        distributed_at=meeting.minutes_distributed_at,
    )


def _is_done(item: ChecklistItem, facts: dict[str, Any]) -> bool:
    if item.automatic:
        return bool(facts.get(item.key))
    return item.done_at is not None
