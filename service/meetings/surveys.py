"""Evaluation surveys: a link per attendee and instructor, answers kept without any link to them.

The link is signed and carries a random nonce; using it stores the nonce's hash (so it works once)
in a table of its own with no time and no person, and the answers in another with a random key and
only the day. Nothing in the database ties an answer to whoever was sent the link.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from uuid import UUID

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from service.context import Context
from service.meetings import schemas, tokens
from service.meetings.mail import MeetingMailer, Outside
from service.meetings.models import (
    Meeting,
    MeetingStatus,
    RegistrationStatus,
    SurveyDispatch,
    SurveyResponse,
    SurveyTokenUse,
)
from service.meetings.questions import ALL_QUESTIONS, SCALE, questions_for
from service.meetings.repository import MeetingRepository, RegistrationRepository
from service.meetings.service import MeetingService, wrong_state
from service.meetings.times import local
from service.networks.models import NetworkCounty
from service.participants.models import Participant
from service.problems import Problem, conflict, invalid, not_found

SURVEY_STATES = (MeetingStatus.HELD, MeetingStatus.CLOSED)


class SurveyService:
    def __init__(self, ctx: Context, outside: Outside) -> None:
        self.ctx = ctx
        self.outside = outside
        self.settings = outside.settings

    async def send(self, meeting_id: UUID) -> schemas.SurveyDispatchReport:
        meeting = await MeetingService(self.ctx, self.outside).writable(meeting_id)
        if meeting.status not in SURVEY_STATES:
            raise wrong_state(meeting, "send the survey of", SURVEY_STATES)
        return schemas.SurveyDispatchReport(queued=await self.dispatch(meeting))

    async def dispatch(self, meeting: Meeting) -> int:
        """Send the link to every attendee and instructor who has not had one for this meeting."""
        session = self.ctx.session
        already = set(
            await session.scalars(
                select(SurveyDispatch.participant_id).where(SurveyDispatch.meeting_id == meeting.id)
            )
        )
        recipients: dict[UUID, tuple[Participant, str]] = {}
        for instructor in meeting.instructors:
            person = await session.get(Participant, instructor.participant_id)
            if person is not None:
                recipients[person.id] = (person, "instructor")
        registrations = RegistrationRepository(session=session)
        for _reg, person in await registrations.with_people(
            meeting.id, (RegistrationStatus.CONFIRMED,), attended_only=True
        ):
            recipients.setdefault(person.id, (person, "attendee"))
        mailer = MeetingMailer(self.ctx, self.outside)
        queued = 0
        for person, respondent in recipients.values():
            if person.id in already or person.erased_at is not None:
                continue
            await mailer.survey(meeting, person, respondent=respondent)
            session.add(SurveyDispatch(meeting_id=meeting.id, participant_id=person.id))
            queued += 1
        meeting.surveys_sent_at = meeting.surveys_sent_at or self.ctx.clock()
        await session.flush()
        return queued

    # --- public, through the link -----------------------------------------------------------

    async def _meeting(self, token: str) -> tuple[Meeting, str, str]:
        meeting_id, respondent, nonce_hash = tokens.read_survey(self.settings, token, self.ctx.clock())
        meeting = await self.ctx.session.get(Meeting, meeting_id)
        if meeting is None or respondent not in ("attendee", "instructor"):
            raise not_found("link", "(invalid)")
        return meeting, respondent, nonce_hash

    async def view(self, token: str) -> schemas.PublicSurvey:
        meeting, respondent, nonce_hash = await self._meeting(token)
        if await self.ctx.session.get(SurveyTokenUse, nonce_hash) is not None:
            raise Problem("conflict", "this survey link was already used; thank you for answering")
        return schemas.PublicSurvey(
            meeting_title=meeting.title,
            held_on=local(meeting.held_at or meeting.starts_at).date(),
            respondent=respondent,
            scale=SCALE,
            questions=[
                schemas.SurveyQuestion(key=q.key, text=q.sv, text_en=q.en)
                for q in questions_for(meeting.kind, respondent)
            ],
        )

    async def answer(self, token: str, data: schemas.SurveyAnswer) -> None:
        meeting, respondent, nonce_hash = await self._meeting(token)
        allowed = {q.key for q in questions_for(meeting.kind, respondent)}
        for key in sorted(data.answers):
            if key not in allowed:
                raise invalid(
                    f"answers.{key}", f"not a question of this survey; ask: {', '.join(sorted(allowed))}"
                )
        if await self.ctx.session.get(SurveyTokenUse, nonce_hash) is not None:
            raise conflict("answers", "this survey link was already used")
        self.ctx.session.add(SurveyTokenUse(nonce_hash=nonce_hash))
        self.ctx.session.add(
            SurveyResponse(
                meeting_id=meeting.id,
                respondent=respondent,
                answers=dict(data.answers),
                submitted_on=local(self.ctx.clock()).date(),
            )
        )
        try:
            await self.ctx.session.flush()
        except IntegrityError as exc:  # the same link submitted twice at once
            raise conflict("answers", "this survey link was already used") from exc

    # --- results ------------------------------------------------------------------------------

    async def for_meeting(self, meeting_id: UUID) -> schemas.SurveyResults:
        meeting = await MeetingService(self.ctx, self.outside).get(meeting_id)
        rows = list(
            await self.ctx.session.scalars(
                select(SurveyResponse).where(SurveyResponse.meeting_id == meeting.id)
            )
        )
        return _aggregate(rows, meetings=1)

    async def aggregate(
        self, *, municipality: str | None, county: str | None, since: date | None, until: date | None
    ) -> schemas.SurveyResults:
        """Results over every meeting the principal may see, narrowed by place and time."""
        meetings = (
            MeetingRepository(session=self.ctx.session)
            .scoped(self.ctx.principal)
            .with_only_columns(Meeting.id)
        )
        if municipality is not None:
            meetings = meetings.where(Meeting.municipality_code == municipality)
        if county is not None:
            regional = (
                select(NetworkCounty.network_id)
                .where(NetworkCounty.network_id == Meeting.network_id, NetworkCounty.county_code == county)
                .exists()
            )
            meetings = meetings.where(or_(func.substr(Meeting.municipality_code, 1, 2) == county, regional))
        stmt = select(SurveyResponse).where(SurveyResponse.meeting_id.in_(meetings.scalar_subquery()))
        if since is not None:
            stmt = stmt.where(SurveyResponse.submitted_on >= since)
        if until is not None:
            stmt = stmt.where(SurveyResponse.submitted_on <= until)
        rows = list(await self.ctx.session.scalars(stmt))
        return _aggregate(rows, meetings=len({r.meeting_id for r in rows}))


def _aggregate(rows: list[SurveyResponse], *, meetings: int) -> schemas.SurveyResults:
    per_question: dict[str, list[int]] = defaultdict(list)
    per_month: dict[str, list[int]] = defaultdict(list)
    month_responses: dict[str, int] = defaultdict(int)
    for row in rows:
        month = row.submitted_on.strftime("%Y-%m")
        month_responses[month] += 1
        for key, value in row.answers.items():
            if isinstance(value, int) and 1 <= value <= 5:
                per_question[key].append(value)
                per_month[month].append(value)
    questions = []
    for key in sorted(per_question, key=lambda k: list(ALL_QUESTIONS).index(k) if k in ALL_QUESTIONS else 99):
        values = per_question[key]
        text = ALL_QUESTIONS[key].sv if key in ALL_QUESTIONS else key
        questions.append(
            schemas.QuestionResult(
                key=key,
                text=text,
                responses=len(values),
                mean=round(sum(values) / len(values), 2) if values else None,
                distribution=[values.count(n) for n in range(1, 6)],
            )
        )
    return schemas.SurveyResults(
        meetings=meetings,
        responses=len(rows),
        questions=questions,
        by_month=[
            schemas.MonthResult(
                month=month,
                responses=month_responses[month],
                mean=round(sum(per_month[month]) / len(per_month[month]), 2) if per_month[month] else None,
            )
            for month in sorted(month_responses)
        ],
    )
