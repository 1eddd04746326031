from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.params import PathParameter, QueryParameter

from service.auth.permissions import Permission, requires
from service.deps import RequestContext
from service.geography import schemas
from service.geography.service import GeographyService
from service.http import LIST_ERRORS, READ_ERRORS, Cursor, Limit, page_response

CountyCodePath = Annotated[str, PathParameter(pattern=r"^[0-9]{2}$", description="Two-digit county code")]
MunicipalityCodePath = Annotated[
    str, PathParameter(pattern=r"^[0-9]{4}$", description="Four-digit municipality code")
]


class CountyController(Controller):
    path = "/v1/counties"
    tags = ["Geography"]

    @get("/", **requires(Permission.GEOGRAPHY_READ), summary="List the 21 counties", responses=LIST_ERRORS)
    async def list_counties(
        self, request: Request[Any, Any, Any], ctx: RequestContext, limit: Limit = 50, cursor: Cursor = None
    ) -> Response[schemas.CountyPage]:
        return page_response(request, await GeographyService(ctx).list_counties(limit=limit, cursor=cursor))

    @get("/{code:str}", **requires(Permission.GEOGRAPHY_READ), summary="One county", responses=READ_ERRORS)
    async def get_county(self, ctx: RequestContext, code: CountyCodePath) -> schemas.County:
        return await GeographyService(ctx).get_county(code)


class MunicipalityController(Controller):
    path = "/v1/municipalities"
    tags = ["Geography"]

    @get(
        "/",
        **requires(Permission.GEOGRAPHY_READ),
        summary="List municipalities, optionally of one county",
        responses=LIST_ERRORS,
    )
    async def list_municipalities(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        county: Annotated[
            str | None, QueryParameter(pattern=r"^[0-9]{2}$", description="Only this county's municipalities")
        ] = None,
        q: Annotated[
            str | None, QueryParameter(max_length=100, description="Name contains (any case)")
        ] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Response[schemas.MunicipalityPage]:
        page = await GeographyService(ctx).list_municipalities(county=county, q=q, limit=limit, cursor=cursor)
        return page_response(request, page)

    @get(
        "/{code:str}",
        **requires(Permission.GEOGRAPHY_READ),
        summary="One municipality",
        responses=READ_ERRORS,
    )
    async def get_municipality(self, ctx: RequestContext, code: MunicipalityCodePath) -> schemas.Municipality:
        return await GeographyService(ctx).get_municipality(code)
