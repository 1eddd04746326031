"""The links meeting e-mails carry. Public (no account): the signed token is the authority, and
the routes are rate-limited per client address (TMN_PUBLIC_RATE_LIMIT_PER_MINUTE)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, PathParameter
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.permissions import PUBLIC
from service.auth.principal import Principal, Role, Scope
from service.context import Context
from service.db import utcnow
from service.http import problem_responses
from service.meetings import schemas
from service.meetings.controller import outside
from service.meetings.registrations import RegistrationService
from service.meetings.surveys import SurveyService

Token = Annotated[str, PathParameter(min_length=10, max_length=400, description="From the e-mail's link")]
LINK_ERRORS = problem_responses(404, 409, 410, 422, 429)
# Who acts when a link is used: recorded in the audit log as this id, never as a person.
LINK_PRINCIPAL = Principal(
    id="link:meeting", name="meeting link", roles=frozenset({Role.SYSTEM}), scope=Scope.national()
)


def link_context(request: Request[Any, Any, Any], session: AsyncSession) -> Context:
    session.info["principal_id"] = LINK_PRINCIPAL.id
    clock = request.app.state.get("clock") or utcnow
    return Context(session=session, principal=LINK_PRINCIPAL, clock=clock)


class InvitationLinkController(Controller):
    path = "/v1/invitations"
    tags = ["Meeting links"]

    @get("/{token:str}", **PUBLIC, summary="What the invitation's link shows", responses=LINK_ERRORS)
    async def view_invitation(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], token: Token
    ) -> schemas.PublicInvitation:
        return await RegistrationService(link_context(request, db_session), outside(request)).view(token)

    @post(
        "/{token:str}/registrations",
        **PUBLIC,
        status_code=200,
        summary="Register the staff who will come (names and e-mails); full meetings put them in line",
        responses=LINK_ERRORS,
    )
    async def register_through_invitation(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        token: Token,
        data: JSONBody[schemas.RegistrationRequest],
    ) -> schemas.RegistrationOutcome:
        return await RegistrationService(link_context(request, db_session), outside(request)).register(
            token, data
        )

    @post(
        "/{token:str}/decline",
        **PUBLIC,
        status_code=200,
        summary="Decline the invitation",
        responses=LINK_ERRORS,
    )
    async def decline_invitation(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        token: Token,
        data: JSONBody[schemas.Decline],
    ) -> schemas.PublicInvitation:
        return await RegistrationService(link_context(request, db_session), outside(request)).decline(
            token, data
        )

    @delete(
        "/{token:str}/registrations/{registration_id:uuid}",
        **PUBLIC,
        status_code=200,
        summary="Cancel one of the registrations made through this invitation",
        responses=LINK_ERRORS,
    )
    async def cancel_through_invitation(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        token: Token,
        registration_id: FromPath[UUID],
    ) -> schemas.PublicInvitation:
        service = RegistrationService(link_context(request, db_session), outside(request))
        return await service.cancel_through_invitation(token, registration_id)


class RegistrationLinkController(Controller):
    path = "/v1/registrations"
    tags = ["Meeting links"]

    @get(
        "/{token:str}", **PUBLIC, summary="A registration's status (and place in line)", responses=LINK_ERRORS
    )
    async def view_registration(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], token: Token
    ) -> schemas.PublicRegistration:
        return await RegistrationService(link_context(request, db_session), outside(request)).own(token)

    @delete(
        "/{token:str}", **PUBLIC, status_code=200, summary="Cancel this registration", responses=LINK_ERRORS
    )
    async def cancel_own_registration(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], token: Token
    ) -> schemas.PublicRegistration:
        return await RegistrationService(link_context(request, db_session), outside(request)).cancel_own(
            token
        )

    @post(
        "/{token:str}/accept",
        **PUBLIC,
        status_code=200,
        summary="Take the seat offered from the waitlist (before the offer runs out)",
        responses=LINK_ERRORS,
    )
    async def accept_offer(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], token: Token
    ) -> schemas.PublicRegistration:
        return await RegistrationService(link_context(request, db_session), outside(request)).accept(token)


class SurveyLinkController(Controller):
    path = "/v1/surveys"
    tags = ["Meeting links"]

    @get("/{token:str}", **PUBLIC, summary="The survey's questions", responses=LINK_ERRORS)
    async def view_survey(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], token: Token
    ) -> schemas.PublicSurvey:
        return await SurveyService(link_context(request, db_session), outside(request)).view(token)

    @post(
        "/{token:str}",
        **PUBLIC,
        status_code=204,
        summary="Answer the survey (once; answers are not linked to you)",
        responses=LINK_ERRORS,
    )
    async def answer_survey(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        token: Token,
        data: JSONBody[schemas.SurveyAnswer],
    ) -> None:
        await SurveyService(link_context(request, db_session), outside(request)).answer(token, data)
