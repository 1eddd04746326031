from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.params import PathParameter

from service.auth.permissions import Permission, requires
from service.deps import RequestContext
from service.directory.data import TmnDirectoryData
from service.directory.service import ContactsAnswer, contacts_for, vcards
from service.geography.service import GeographyService
from service.http import READ_ERRORS

Code = Annotated[str, PathParameter(pattern=r"^[0-9]{4}$", description="Four-digit municipality code")]
READ = requires(Permission.DIRECTORY_READ)


async def _answer(request: Request[Any, Any, Any], ctx: RequestContext, code: str) -> ContactsAnswer:
    await GeographyService(ctx).get_municipality(code)  # 404 for an unknown municipality
    state = request.app.state
    return await contacts_for(
        state.plugins, TmnDirectoryData(state.sessionmaker), state.directory_cache, code
    )


class DirectoryController(Controller):
    path = "/v1/municipalities"
    tags = ["Contacts"]

    @get(
        "/{code:str}/contacts",
        **READ,
        summary="Whom the municipality's pickup-point staff should call",
        responses=READ_ERRORS,
    )
    async def municipality_contacts(
        self, request: Request[Any, Any, Any], ctx: RequestContext, code: Code
    ) -> ContactsAnswer:
        return await _answer(request, ctx, code)

    @get(
        "/{code:str}/contacts.vcf",
        **READ,
        summary="The same contacts as vCards, for a phone",
        media_type="text/vcard",
        responses=READ_ERRORS,
    )
    async def municipality_contacts_vcard(
        self, request: Request[Any, Any, Any], ctx: RequestContext, code: Code
    ) -> Response[str]:
        answer = await _answer(request, ctx, code)
        return Response(
            vcards(answer.contacts),
            media_type="text/vcard; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="kontakter-{code}.vcf"'},
        )
