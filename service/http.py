"""HTTP conventions shared by every controller: pages with Link headers, ETags, If-Match."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_304_NOT_MODIFIED

from service.context import Context
from service.idempotency.service import IdempotencyService, StoredResponse, fingerprint
from service.pagination import MAX_LIMIT, Page
from service.problems import PROBLEM_MEDIA_TYPE, PROBLEM_TYPES, ProblemBody
from service.versioning import etag_matches

T = TypeVar("T")
PageT = TypeVar("PageT", bound=Page[Any])

Limit = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description=f"Page size, 1–{MAX_LIMIT}.")]
Cursor = Annotated[
    str | None,
    QueryParameter(max_length=1000, description="Opaque cursor from the previous page's `next_cursor`."),
]
# The list filters by place that many operations share (scope still decides what they see).
MunicipalityFilter = Annotated[str | None, QueryParameter(pattern=r"^[0-9]{4}$")]
CountyFilter = Annotated[str | None, QueryParameter(pattern=r"^[0-9]{2}$")]
IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        required=False,
        max_length=200,
        description="The ETag you read; the write is refused with 412 when it is stale.",
    ),
]
MERGE_PATCH_NOTE = "Merge semantics: absent fields stay as they are; `null` clears an optional field."


def base_url(request: Request[Any, Any, Any]) -> str:
    configured: str = request.app.state.settings.public_base_url
    return configured.rstrip("/") if configured else str(request.base_url).rstrip("/")


def page_response(request: Request[Any, Any, Any], page: PageT) -> Response[PageT]:
    headers: dict[str, str] = {}
    if page.next_cursor:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
        params.append(("cursor", page.next_cursor))
        headers["Link"] = f'<{base_url(request)}{request.url.path}?{urlencode(params)}>; rel="next"'
    return Response(page, headers=headers)


def resource_response(
    request: Request[Any, Any, Any],
    body: T,
    etag: str,
    *,
    status_code: int = 200,
    location: str | None = None,
) -> Response[T]:
    """A single resource with its ETag; answers 304 to a matching If-None-Match on GET."""
    headers = {"ETag": etag}
    if location is not None:
        headers["Location"] = location
    if_none_match = request.headers.get("if-none-match")
    if request.method == "GET" and if_none_match and etag_matches(if_none_match, etag):
        return Response(None, status_code=HTTP_304_NOT_MODIFIED, headers=headers)  # type: ignore[arg-type]
    return Response(body, status_code=status_code, headers=headers)


def created_response(request: Request[Any, Any, Any], body: T, etag: str, path: str) -> Response[T]:
    return resource_response(
        request, body, etag, status_code=HTTP_201_CREATED, location=f"{base_url(request)}{path}"
    )


IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        min_length=1,
        max_length=255,
        description="Retry-safe creation: a repeat with the same key and body returns the first answer.",
    ),
]


async def idempotent(
    request: Request[Any, Any, Any],
    ctx: Context,
    key: str | None,
    body: object,
    create: Callable[[], Awaitable[Response[Any]]],
) -> Response[Any]:
    """Run a creating handler once per Idempotency-Key; replay its stored answer afterwards."""
    if key is None:
        return await create()
    ttl = timedelta(hours=request.app.state.settings.idempotency_ttl_hours)
    service = IdempotencyService(ctx, ttl)
    method, path = request.method, request.url.path
    print_ = fingerprint(method, path, body)
    stored = await service.replay(key, method, path, print_)
    if stored is None:
        response = await create()
        stored = StoredResponse(
            status_code=response.status_code or 201,
            body=msgspec.json.encode(response.content),
            location=response.headers.get("Location"),
            etag=response.headers.get("ETag"),
        )
        await service.remember(key, method, path, print_, stored)
        replayed = "false"
    else:
        replayed = "true"
    headers = {"Idempotent-Replayed": replayed}
    if stored.location:
        headers["Location"] = stored.location
    if stored.etag:
        headers["ETag"] = stored.etag
    return Response(
        stored.body, status_code=stored.status_code, headers=headers, media_type="application/json"
    )


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem+json answers a route can give."""
    by_status = {p.status: p for p in reversed(PROBLEM_TYPES.values())}
    return {
        status: ResponseSpec(
            data_container=ProblemBody,
            description=f"{by_status[status].title}: {by_status[status].description}"
            if status in by_status
            else "Problem",
            media_type=PROBLEM_MEDIA_TYPE,
            generate_examples=False,
        )
        for status in statuses
    }


LIST_ERRORS = problem_responses(400, 422)
READ_ERRORS = problem_responses(404, 422)
CREATE_ERRORS = problem_responses(400, 403, 409, 422)
UPDATE_ERRORS = problem_responses(400, 403, 404, 409, 412, 422)
ACTION_ERRORS = problem_responses(404, 409, 412)
