"""Small HTML pages for the people who follow the links in meeting e-mails on a phone: a shop
registering its staff, a person taking an offered seat or cancelling, an attendee answering the
survey. Server-rendered forms, no script, no CDN; the JSON routes under /v1 do the same for front
ends (TMN_REGISTRATION_URL_TEMPLATE points invitations at one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import msgspec
from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.permissions import PUBLIC
from service.meetings import schemas
from service.meetings.controller import outside
from service.meetings.public import Token, link_context
from service.meetings.registrations import RegistrationService
from service.meetings.surveys import SurveyService
from service.messages import format_time, format_when
from service.problems import Problem

T = TypeVar("T")
ROWS = 5
STATUS_LABEL = {
    "confirmed": "anmäld / registered",
    "waitlisted": "i kö / on the waiting list",
    "offered": "erbjuden en plats / offered a seat",
    "cancelled": "avbokad / cancelled",
}
_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "pages"),
    autoescape=select_autoescape(enabled_extensions=("html",), default=True),
)
_ENV.filters.update(when=lambda v: format_when(v, "sv"), clock=lambda v: format_time(v, "sv"))


def page(template: str, status: int = 200, **values: Any) -> Response[str]:
    html = _ENV.get_template(template).render(status_label=STATUS_LABEL, rows=ROWS, **values)
    return Response(html, status_code=status, media_type=MediaType.HTML)


def problem_values(exc: Problem) -> dict[str, Any]:
    return {"error": exc.detail, "fields": [f"{e.field}: {e.detail}" for e in exc.errors]}


def _valid(kind: type[T], value: dict[str, Any]) -> T:
    """The form's values checked exactly as the JSON routes check a body."""
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise Problem("validation-error", f"Kontrollera uppgifterna: {exc}") from exc


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    return {k: str(v) for k, v in form.items()}


class LinkPageController(Controller):
    path = "/"
    include_in_schema = False

    @get("/rsvp/{token:str}", **PUBLIC, media_type=MediaType.HTML)
    async def invitation_page(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], token: Token
    ) -> Response[str]:
        service = RegistrationService(link_context(request, db_session), outside(request))
        try:
            view = await service.view(token)
        except Problem as exc:
            return page("base.html", exc.status_code, **problem_values(exc))
        return page("invitation.html", view=view, open=view.meeting_status == "invitations_sent")

    @post("/rsvp/{token:str}", **PUBLIC, media_type=MediaType.HTML, status_code=200)
    async def invitation_form(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], token: Token
    ) -> Response[str]:
        service = RegistrationService(link_context(request, db_session), outside(request))
        form = await _form(request)
        try:
            if form.get("action") == "decline":
                await service.decline(token, schemas.Decline())
                message = "Tack för beskedet. / Thank you for letting us know."
            else:
                people = [
                    {
                        "name": form.get(f"name_{i}", "").strip(),
                        "email": form.get(f"email_{i}", "").strip(),
                        "mailing_list_consent": form.get(f"consent_{i}") == "yes",
                    }
                    for i in range(ROWS)
                    if form.get(f"name_{i}", "").strip() or form.get(f"email_{i}", "").strip()
                ]
                if not people:
                    raise Problem("validation-error", "Fyll i namn och e-post för minst en person.")
                await service.register(token, _valid(schemas.RegistrationRequest, {"people": people}))
                message = "Tack! Anmälan är mottagen; en bekräftelse kommer med e-post."
            view = await service.view(token)
        except Problem as exc:
            await db_session.rollback()  # nothing half-done: the page shows the error instead
            try:
                current = await service.view(token)
            except Problem:
                return page("base.html", exc.status_code, **problem_values(exc))
            return page(
                "invitation.html",
                exc.status_code,
                view=current,
                open=current.meeting_status == "invitations_sent",
                **problem_values(exc),
            )
        return page(
            "invitation.html", view=view, open=view.meeting_status == "invitations_sent", message=message
        )

    @get("/seat/{token:str}", **PUBLIC, media_type=MediaType.HTML)
    async def registration_page(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], token: Token
    ) -> Response[str]:
        service = RegistrationService(link_context(request, db_session), outside(request))
        try:
            registration = await service.own(token)
        except Problem as exc:
            return page("base.html", exc.status_code, **problem_values(exc))
        return page("registration.html", registration=registration, title="Din anmälan / Your registration")

    @post("/seat/{token:str}", **PUBLIC, media_type=MediaType.HTML, status_code=200)
    async def registration_form(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], token: Token
    ) -> Response[str]:
        service = RegistrationService(link_context(request, db_session), outside(request))
        form = await _form(request)
        try:
            if form.get("action") == "accept":
                registration = await service.accept(token)
            else:
                registration = await service.cancel_own(token)
        except Problem as exc:
            await db_session.rollback()
            return page("base.html", exc.status_code, **problem_values(exc))
        return page("registration.html", registration=registration, title="Din anmälan / Your registration")

    @get("/survey/{token:str}", **PUBLIC, media_type=MediaType.HTML)
    async def survey_page(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], token: Token
    ) -> Response[str]:
        service = SurveyService(link_context(request, db_session), outside(request))
        try:
            survey = await service.view(token)
        except Problem as exc:
            return page("survey.html", exc.status_code, **problem_values(exc))
        return page("survey.html", survey=survey)

    @post("/survey/{token:str}", **PUBLIC, media_type=MediaType.HTML, status_code=200)
    async def survey_form(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], token: Token
    ) -> Response[str]:
        service = SurveyService(link_context(request, db_session), outside(request))
        form = await _form(request)
        answers = {k: int(v) for k, v in form.items() if v.isdigit() and 1 <= int(v) <= 5 and len(k) <= 50}
        try:
            if not answers:
                raise Problem("validation-error", "Välj ett svar på minst ett påstående.")
            await service.answer(token, _valid(schemas.SurveyAnswer, {"answers": answers}))
        except Problem as exc:
            await db_session.rollback()
            return page("survey.html", exc.status_code, **problem_values(exc))
        return page("survey.html", message="Tack för dina svar! / Thank you for your answers.")
