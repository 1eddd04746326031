from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody, PathParameter, QueryParameter

from service.auth.permissions import Permission, requires
from service.deps import RequestContext
from service.geography.service import GeographyService
from service.http import (
    ACTION_ERRORS,
    CREATE_ERRORS,
    LIST_ERRORS,
    MERGE_PATCH_NOTE,
    READ_ERRORS,
    UPDATE_ERRORS,
    CountyFilter,
    Cursor,
    IdempotencyKey,
    IfMatch,
    Limit,
    MunicipalityFilter,
    created_response,
    idempotent,
    page_response,
    problem_responses,
    resource_response,
)
from service.meetings import calendar, schemas
from service.meetings.instructors import listing as instructor_listing
from service.meetings.invitations import InvitationService
from service.meetings.mail import MeetingMailer, Outside
from service.meetings.models import (
    InvitationStatus,
    Meeting,
    MeetingKind,
    MeetingStatus,
    RegistrationStatus,
)
from service.meetings.registrations import RegistrationService
from service.meetings.repository import MeetingRepository
from service.meetings.service import MeetingService, etag
from service.meetings.surveys import SurveyService
from service.networks.service import NetworkService

READ = requires(Permission.MEETINGS_READ)
WRITE = requires(Permission.MEETINGS_WRITE)
ATTENDANCE = requires(Permission.MEETINGS_ATTENDANCE)
STATE_ERRORS = problem_responses(403, 404, 409, 412, 422)
MeetingId = Annotated[UUID, PathParameter(description="The meeting")]


def outside(request: Request[Any, Any, Any]) -> Outside:
    state = request.app.state
    return Outside(settings=state.settings, plugins=state.plugins, directory_cache=state.directory_cache)


async def _meeting_response(
    request: Request[Any, Any, Any], service: MeetingService, meeting: Meeting
) -> Response[schemas.Meeting]:
    return resource_response(request, await service.to_schema(meeting), etag(meeting))


class MeetingController(Controller):
    path = "/v1/meetings"
    tags = ["Meetings"]

    @post("/", **WRITE, summary="Plan a meeting (a draft)", responses=CREATE_ERRORS)
    async def create_meeting(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        data: JSONBody[schemas.MeetingCreate],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[schemas.Meeting]:
        async def create() -> Response[Any]:
            service = MeetingService(ctx, outside(request))
            meeting = await service.create(data)
            return created_response(
                request, await service.to_schema(meeting), etag(meeting), f"{self.path}/{meeting.id}"
            )

        return await idempotent(request, ctx, idempotency_key, data, create)

    @get("/", **READ, summary="List meetings, soonest first", responses=LIST_ERRORS)
    async def list_meetings(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        network: Annotated[UUID | None, QueryParameter(description="Of this network")] = None,
        kind: FromQuery[MeetingKind | None] = None,
        status: FromQuery[MeetingStatus | None] = None,
        municipality: MunicipalityFilter = None,
        county: CountyFilter = None,
        starts_after: Annotated[
            datetime | None, QueryParameter(description="From this time (Stockholm time without an offset)")
        ] = None,
        starts_before: Annotated[datetime | None, QueryParameter(description="Before this time")] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Response[schemas.MeetingPage]:
        page = await MeetingService(ctx, outside(request)).page(
            network_id=network,
            kind=kind,
            status=status,
            municipality=municipality,
            county=county,
            starts_after=starts_after,
            starts_before=starts_before,
            limit=limit,
            cursor=cursor,
        )
        return page_response(request, page)

    @get("/{meeting_id:uuid}", **READ, summary="One meeting", responses=READ_ERRORS)
    async def get_meeting(
        self, request: Request[Any, Any, Any], ctx: RequestContext, meeting_id: MeetingId
    ) -> Response[schemas.Meeting]:
        service = MeetingService(ctx, outside(request))
        return await _meeting_response(request, service, await service.get(meeting_id))

    @patch(
        "/{meeting_id:uuid}",
        **WRITE,
        summary="Change a meeting",
        description=MERGE_PATCH_NOTE
        + " Once invitations are out, a new time or place is sent to everyone invited and registered.",
        responses=UPDATE_ERRORS,
    )
    async def update_meeting(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        meeting_id: MeetingId,
        data: JSONBody[schemas.MeetingUpdate],
        if_match: IfMatch = None,
    ) -> Response[schemas.Meeting]:
        service = MeetingService(ctx, outside(request))
        return await _meeting_response(request, service, await service.update(meeting_id, data, if_match))

    # --- lifecycle ----------------------------------------------------------------------------

    @post(
        "/{meeting_id:uuid}/schedule",
        **WRITE,
        status_code=200,
        summary="draft → scheduled: the checklist and default reminders are made",
        responses=STATE_ERRORS,
    )
    async def schedule_meeting(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        meeting_id: MeetingId,
        if_match: IfMatch = None,
    ) -> Response[schemas.Meeting]:
        service = MeetingService(ctx, outside(request))
        return await _meeting_response(request, service, await service.schedule(meeting_id, if_match))

    @post(
        "/{meeting_id:uuid}/send-invitations",
        **WRITE,
        status_code=200,
        summary="scheduled → invitations sent: every pending invitation is e-mailed (with .ics)",
        responses=STATE_ERRORS,
    )
    async def send_invitations(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        meeting_id: MeetingId,
        if_match: IfMatch = None,
    ) -> Response[schemas.Meeting]:
        service = MeetingService(ctx, outside(request))
        meeting = await InvitationService(ctx, outside(request)).send_all(meeting_id, if_match)
        return await _meeting_response(request, service, meeting)

    @post(
        "/{meeting_id:uuid}/hold",
        **WRITE,
        status_code=200,
        summary="invitations sent → held (after it started); a collaboration meeting proposes its follow-up",
        responses=STATE_ERRORS,
    )
    async def hold_meeting(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        meeting_id: MeetingId,
        if_match: IfMatch = None,
    ) -> Response[schemas.Meeting]:
        service = MeetingService(ctx, outside(request))
        return await _meeting_response(request, service, await service.hold(meeting_id, if_match))

    @post(
        "/{meeting_id:uuid}/close",
        **WRITE,
        status_code=200,
        summary="held → closed: no-shows recorded, certifications issued or renewed, surveys sent",
        responses=STATE_ERRORS,
    )
    async def close_meeting(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        meeting_id: MeetingId,
        if_match: IfMatch = None,
    ) -> Response[schemas.Meeting]:
        service = MeetingService(ctx, outside(request))
        return await _meeting_response(request, service, await service.close(meeting_id, if_match))

    @post(
        "/{meeting_id:uuid}/cancel",
        **WRITE,
        status_code=200,
        summary="Cancel (any state before held); the invited get a cancellation (METHOD:CANCEL)",
        responses=STATE_ERRORS,
    )
    async def cancel_meeting(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        meeting_id: MeetingId,
        data: JSONBody[schemas.CancelMeeting],
        if_match: IfMatch = None,
    ) -> Response[schemas.Meeting]:
        service = MeetingService(ctx, outside(request))
        return await _meeting_response(request, service, await service.cancel(meeting_id, data, if_match))

    # --- invitations and registrations --------------------------------------------------------

    @post(
        "/{meeting_id:uuid}/invitations",
        **WRITE,
        status_code=200,
        summary="Invite a whole audience or chosen organizations and people",
        responses=STATE_ERRORS,
    )
    async def invite(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        meeting_id: MeetingId,
        data: JSONBody[schemas.InvitationCreate],
    ) -> schemas.InvitationReport:
        return await InvitationService(ctx, outside(request)).add(meeting_id, data)

    @get("/{meeting_id:uuid}/invitations", **READ, summary="The meeting's invitations", responses=READ_ERRORS)
    async def list_invitations(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        meeting_id: MeetingId,
        status: FromQuery[InvitationStatus | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Response[schemas.InvitationPage]:
        page = await InvitationService(ctx, outside(request)).page(
            meeting_id, status, limit=limit, cursor=cursor
        )
        return page_response(request, page)

    @get(
        "/{meeting_id:uuid}/registrations",
        **READ,
        summary="Registrations in the order they came (the waitlist's order), with attendance",
        responses=READ_ERRORS,
    )
    async def list_registrations(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        meeting_id: MeetingId,
        status: FromQuery[RegistrationStatus | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Response[schemas.RegistrationPage]:
        page = await RegistrationService(ctx, outside(request)).page(
            meeting_id, status, limit=limit, cursor=cursor
        )
        return page_response(request, page)

    @delete(
        "/{meeting_id:uuid}/registrations/{registration_id:uuid}",
        **WRITE,
        summary="Cancel a registration; a freed seat is offered to the next in line",
        responses=STATE_ERRORS,
    )
    async def cancel_registration(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        meeting_id: MeetingId,
        registration_id: FromPath[UUID],
    ) -> None:
        await RegistrationService(ctx, outside(request)).cancel_by_coordinator(meeting_id, registration_id)

    @post(
        "/{meeting_id:uuid}/attendance",
        **ATTENDANCE,
        status_code=200,
        summary="Record that a person came (or did not), and the organization they represented",
        responses=STATE_ERRORS,
    )
    async def record_attendance(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        meeting_id: MeetingId,
        data: JSONBody[schemas.AttendanceRecord],
    ) -> schemas.Registration:
        return await RegistrationService(ctx, outside(request)).record_attendance(meeting_id, data)

    @post(
        "/{meeting_id:uuid}/check-ins",
        **ATTENDANCE,
        status_code=200,
        summary="Check a person in with the code of their QR code",
        responses=STATE_ERRORS,
    )
    async def check_in(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        meeting_id: MeetingId,
        data: JSONBody[schemas.CheckIn],
    ) -> schemas.Registration:
        return await RegistrationService(ctx, outside(request)).check_in(meeting_id, data)

    # --- reminders, checklist, minutes, surveys -----------------------------------------------

    @get("/{meeting_id:uuid}/reminders", **READ, summary="The meeting's reminders", responses=READ_ERRORS)
    async def list_reminders(
        self, request: Request[Any, Any, Any], ctx: RequestContext, meeting_id: MeetingId
    ) -> list[schemas.Reminder]:
        return await MeetingService(ctx, outside(request)).reminders(meeting_id)

    @post("/{meeting_id:uuid}/reminders", **WRITE, summary="Add a reminder", responses=CREATE_ERRORS)
    async def add_reminder(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        meeting_id: MeetingId,
        data: JSONBody[schemas.ReminderCreate],
    ) -> schemas.Reminder:
        return await MeetingService(ctx, outside(request)).add_reminder(meeting_id, data)

    @delete(
        "/{meeting_id:uuid}/reminders/{reminder_id:uuid}",
        **WRITE,
        summary="Remove a reminder not yet sent",
        responses=ACTION_ERRORS,
    )
    async def delete_reminder(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        meeting_id: MeetingId,
        reminder_id: FromPath[UUID],
    ) -> None:
        await MeetingService(ctx, outside(request)).delete_reminder(meeting_id, reminder_id)

    @get(
        "/{meeting_id:uuid}/checklist",
        **READ,
        summary="The coordinator's checklist (appendix 3) and its progress",
        responses=READ_ERRORS,
    )
    async def get_checklist(
        self, request: Request[Any, Any, Any], ctx: RequestContext, meeting_id: MeetingId
    ) -> schemas.Checklist:
        return await MeetingService(ctx, outside(request)).checklist(meeting_id)

    @put(
        "/{meeting_id:uuid}/checklist/{key:str}",
        **WRITE,
        summary="Tick (or untick) an item that does not tick itself",
        responses=STATE_ERRORS,
    )
    async def tick_checklist_item(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        meeting_id: MeetingId,
        key: Annotated[str, PathParameter(max_length=50)],
        data: JSONBody[schemas.ChecklistTick],
    ) -> schemas.Checklist:
        return await MeetingService(ctx, outside(request)).tick(meeting_id, key, data)

    @get("/{meeting_id:uuid}/minutes", **READ, summary="The minutes (Markdown)", responses=READ_ERRORS)
    async def get_minutes(
        self, request: Request[Any, Any, Any], ctx: RequestContext, meeting_id: MeetingId
    ) -> schemas.MinutesOut:
        return await MeetingService(ctx, outside(request)).minutes(meeting_id)

    @put(
        "/{meeting_id:uuid}/minutes", **WRITE, summary="Write the minutes (Markdown)", responses=STATE_ERRORS
    )
    async def write_minutes(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        meeting_id: MeetingId,
        data: JSONBody[schemas.Minutes],
    ) -> schemas.MinutesOut:
        return await MeetingService(ctx, outside(request)).write_minutes(meeting_id, data)

    @post(
        "/{meeting_id:uuid}/minutes/distribute",
        **WRITE,
        status_code=200,
        summary="Send the minutes to the attendees and the network's mailing list",
        responses=STATE_ERRORS,
    )
    async def distribute_minutes(
        self, request: Request[Any, Any, Any], ctx: RequestContext, meeting_id: MeetingId
    ) -> schemas.Distribution:
        return await MeetingService(ctx, outside(request)).distribute_minutes(meeting_id)

    @post(
        "/{meeting_id:uuid}/surveys/send",
        **WRITE,
        status_code=200,
        summary="Send the anonymous evaluation survey to attendees and instructors not yet asked",
        responses=STATE_ERRORS,
    )
    async def send_surveys(
        self, request: Request[Any, Any, Any], ctx: RequestContext, meeting_id: MeetingId
    ) -> schemas.SurveyDispatchReport:
        return await SurveyService(ctx, outside(request)).send(meeting_id)

    @get(
        "/{meeting_id:uuid}/survey-results",
        **READ,
        summary="The meeting's survey results (anonymous aggregates)",
        responses=READ_ERRORS,
    )
    async def meeting_survey_results(
        self, request: Request[Any, Any, Any], ctx: RequestContext, meeting_id: MeetingId
    ) -> schemas.SurveyResults:
        return await SurveyService(ctx, outside(request)).for_meeting(meeting_id)


class InstructorController(Controller):
    path = "/v1/instructors"
    tags = ["Meetings"]

    @get(
        "/",
        **READ,
        summary="Qualified instructors of your counties (police, customs, municipal), to book for meetings",
        responses=LIST_ERRORS,
    )
    async def list_instructors(
        self,
        ctx: RequestContext,
        county: Annotated[
            str | None, QueryParameter(pattern=r"^[0-9]{2}$", description="One of yours")
        ] = None,
    ) -> list[schemas.InstructorListing]:
        if county is not None:
            await GeographyService(ctx).require_county(county, field="county", source="query")
        return await instructor_listing(ctx, county)


class SurveyResultsController(Controller):
    path = "/v1/survey-results"
    tags = ["Meetings"]

    @get(
        "/",
        **READ,
        summary="Survey results over the meetings you see, by place and time",
        responses=LIST_ERRORS,
    )
    async def survey_results(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        municipality: MunicipalityFilter = None,
        county: CountyFilter = None,
        since: FromQuery[date | None] = None,
        until: FromQuery[date | None] = None,
    ) -> schemas.SurveyResults:
        geography = GeographyService(ctx)
        if municipality is not None:
            await geography.require_municipality(municipality, field="municipality", source="query")
        if county is not None:
            await geography.require_county(county, field="county", source="query")
        return await SurveyService(ctx, outside(request)).aggregate(
            municipality=municipality, county=county, since=since, until=until
        )


ICS = "text/calendar; charset=utf-8"


class CalendarFeedController(Controller):
    """Subscribable calendars: every meeting past draft, cancelled ones marked so."""

    path = "/v1"
    tags = ["Meetings"]

    async def _feed(
        self, request: Request[Any, Any, Any], ctx: RequestContext, name: str, **where: Any
    ) -> Response[bytes]:
        meetings = await MeetingRepository(session=ctx.session).for_feed(ctx.principal, **where)
        mailer = MeetingMailer(ctx, outside(request))
        events = [
            calendar.CalendarEvent(
                uid=mailer.uid(m),
                sequence=m.sequence,
                title=m.title,
                starts_at=m.starts_at,
                ends_at=m.ends_at,
                location=m.venue,
                online_url=m.online_url,
                description="\n".join(m.agenda),
                cancelled=m.status is MeetingStatus.CANCELLED,
                stamp=m.updated_at,
            )
            for m in meetings
        ]
        return Response(calendar.feed_ics(name, events), media_type=ICS)

    @get(
        "/networks/{network_id:uuid}/meetings.ics",
        **READ,
        summary="The network's meetings as an iCalendar feed",
        media_type=ICS,
        responses=READ_ERRORS,
    )
    async def network_feed(
        self, request: Request[Any, Any, Any], ctx: RequestContext, network_id: FromPath[UUID]
    ) -> Response[bytes]:
        network = await NetworkService(ctx).get(network_id)
        return await self._feed(request, ctx, network.name, network_id=network.id, municipality=None)

    @get(
        "/municipalities/{code:str}/meetings.ics",
        **READ,
        summary="The municipality's meetings as an iCalendar feed",
        media_type=ICS,
        responses=READ_ERRORS,
    )
    async def municipality_feed(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        code: Annotated[str, PathParameter(pattern=r"^[0-9]{4}$")],
    ) -> Response[bytes]:
        municipality = await GeographyService(ctx).get_municipality(code)
        return await self._feed(
            request,
            ctx,
            f"Tillsammans mot nätdroger – {municipality.name}",
            network_id=None,
            municipality=code,
        )
