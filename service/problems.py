"""RFC 9457 problem details for every error the API answers.

Each error kind has a stable `type` (a path under /problems/, where a short page explains
it); field errors are listed in `errors`, each naming the field, its JSON pointer, where it
came from (body, query, path, header) and what is wrong.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Sequence
from typing import Any, Literal

import msgspec
import structlog
from advanced_alchemy.exceptions import NotFoundError as AlchemyNotFoundError
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from service.db import database_unavailable

logger = structlog.get_logger("tmn.problems")

PROBLEM_MEDIA_TYPE = "application/problem+json"
Source = Literal["body", "query", "path", "header"]


class ProblemType(msgspec.Struct, frozen=True):
    slug: str
    title: str
    status: int
    description: str


PROBLEM_TYPES: dict[str, ProblemType] = {
    p.slug: p
    for p in (
        ProblemType(
            "validation-error",
            "Invalid input",
            422,
            "One or more fields are missing, of the wrong type, too long, out of range or break a "
            "rule. `errors` names each field.",
        ),
        ProblemType(
            "malformed-request",
            "Malformed request",
            400,
            "The body is not valid JSON, or the request cannot be read at all.",
        ),
        ProblemType("not-found", "Not found", 404, "No such resource, or none that you may see."),
        ProblemType(
            "method-not-allowed",
            "Method not allowed",
            405,
            "The resource exists but does not accept this method.",
        ),
        ProblemType(
            "conflict",
            "Conflict",
            409,
            "The change conflicts with existing data, for example a value that must be unique.",
        ),
        ProblemType(
            "precondition-failed",
            "Precondition failed",
            412,
            "If-Match did not match the resource's current ETag: someone changed it since you read "
            "it. Read it again and reapply your change.",
        ),
        ProblemType(
            "idempotency-key-reused",
            "Idempotency-Key reused",
            422,
            "The Idempotency-Key was already used for a request with a different body or target.",
        ),
        ProblemType(
            "unsupported-media-type",
            "Unsupported media type",
            415,
            "Send JSON (application/json or application/merge-patch+json).",
        ),
        ProblemType(
            "too-many-requests",
            "Too many requests",
            429,
            "Your principal used up its request budget; wait the seconds in Retry-After.",
        ),
        ProblemType(
            "payload-too-large",
            "Payload too large",
            413,
            "The request body is larger than this API accepts (TMN_MAX_REQUEST_BYTES).",
        ),
        ProblemType(
            "link-expired",
            "Link expired",
            410,
            "The signed link (an invitation, a registration, a survey) is past its time. Ask the "
            "coordinator for a new one.",
        ),
        ProblemType("unauthorized", "Unauthorized", 401, "Credentials are missing or not valid."),
        ProblemType("forbidden", "Forbidden", 403, "Your role does not allow this action."),
        ProblemType(
            "service-unavailable", "Service unavailable", 503, "A dependency (the database) is not available."
        ),
        ProblemType(
            "internal-error",
            "Internal error",
            500,
            "Something failed on our side. The request id in the response identifies it in the logs.",
        ),
        ProblemType("http-error", "HTTP error", 400, "A generic HTTP error."),
    )
}

_STATUS_TO_SLUG = {
    400: "malformed-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    410: "link-expired",
    412: "precondition-failed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    429: "too-many-requests",
    503: "service-unavailable",
}


class FieldError(msgspec.Struct, frozen=True, omit_defaults=True):
    field: str
    detail: str
    source: Source = "body"

    @property
    def pointer(self) -> str:
        """RFC 6901 JSON pointer into the body (`roles[0]` -> `#/roles/0`); the name elsewhere."""
        if self.source != "body":
            return self.field
        parts = [p for p in re.split(r"[.\[\]]+", self.field) if p]
        return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts) if parts else "#"


class ProblemBody(msgspec.Struct, omit_defaults=True):
    """The wire form of a problem: RFC 9457 members plus `errors` for field errors."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, str]] | None = None
    current_state: str | None = None
    allowed: list[str] | None = None


class Problem(HTTPException):
    """An error raised by services and controllers; rendered as problem+json."""

    def __init__(
        self,
        slug: str,
        detail: str | None = None,
        *,
        status: int | None = None,
        errors: Sequence[FieldError] = (),
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        ptype = PROBLEM_TYPES[slug]
        self.slug = slug
        self.errors = list(errors)
        self.problem_extra = extra or {}
        super().__init__(detail=detail or ptype.title, status_code=status or ptype.status, headers=headers)


def invalid(field: str, detail: str, source: Source = "body") -> Problem:
    """A single-field validation problem (422)."""
    return Problem("validation-error", f"{field}: {detail}", errors=[FieldError(field, detail, source)])


def not_found(resource: str, ident: object) -> Problem:
    return Problem("not-found", f"{resource} {ident} not found")


def conflict(field: str, detail: str) -> Problem:
    return Problem("conflict", f"{field}: {detail}", errors=[FieldError(field, detail)])


def problem_response(
    request: Request[Any, Any, Any],
    slug: str,
    detail: str | None,
    *,
    status: int | None = None,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response[ProblemBody]:
    ptype = PROBLEM_TYPES[slug]
    body = ProblemBody(
        type=f"/problems/{slug}",
        title=ptype.title,
        status=status or ptype.status,
        detail=detail,
        instance=request.url.path,
        errors=[
            {"field": e.field, "pointer": e.pointer, "source": e.source, "detail": e.detail} for e in errors
        ]
        or None,
        **(extra or {}),
    )
    return Response(body, status_code=body.status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


# --- Exception handlers -------------------------------------------------------------------

_MSGSPEC_UNKNOWN = re.compile(r"Object contains unknown field `([^`]+)`")
_MSGSPEC_MISSING = re.compile(r"Object missing required field `([^`]+)`")
_MSGSPEC_PATH = re.compile(r" - at `\$(?:\.data)?(?P<path>[^`]*)`$")


def _field_from_msgspec(key: str, message: str) -> tuple[str, str]:
    """Turn a msgspec error message into (field path, reason) with the field named fully."""
    path = ""
    if m := _MSGSPEC_PATH.search(message):
        path = m.group("path")
        message = message[: m.start()]
    # msgspec paths look like `.name`, `.roles[2]`, `.address.city`.
    path = path.lstrip(".")
    named = _MSGSPEC_UNKNOWN.match(message) or _MSGSPEC_MISSING.match(message)
    if named:
        path = f"{path}.{named.group(1)}" if path else named.group(1)
        message = "unknown field" if _MSGSPEC_UNKNOWN.match(message) else "required field is missing"
    return path or key, message


def _validation_handler(request: Request[Any, Any, Any], exc: ValidationException) -> Response[ProblemBody]:
    errors: list[FieldError] = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        key = str(item.get("key", "")) if isinstance(item, dict) else ""
        message = str(item.get("message", "")) if isinstance(item, dict) else str(item)
        raw = item.get("source", "body") if isinstance(item, dict) else "body"
        raw_source = str(getattr(raw, "value", raw))
        source: Source = raw_source if raw_source in ("query", "path", "header") else "body"  # type: ignore[assignment]
        if source == "body":
            key = key.removeprefix("data").lstrip(".")
            field, reason = _field_from_msgspec(key, message)
        elif source == "header":
            # Litestar names the handler argument (idempotency_key); clients know the header.
            field, reason = "-".join(w.capitalize() for w in key.split("_")), message
        else:
            field, reason = key, message
        errors.append(FieldError(field, reason, source))
    if not errors or (len(errors) == 1 and errors[0].detail == "'data'"):
        # Litestar reports a missing body as a KeyError on its `data` argument.
        return problem_response(request, "malformed-request", "the request body is empty; send a JSON object")
    detail = "; ".join(f"{e.field or 'body'}: {e.detail}" for e in errors)
    return problem_response(request, "validation-error", detail, errors=errors)


def _problem_handler(request: Request[Any, Any, Any], exc: Problem) -> Response[ProblemBody]:
    return problem_response(
        request,
        exc.slug,
        exc.detail,
        status=exc.status_code,
        errors=exc.errors,
        headers=exc.headers,
        extra=exc.problem_extra,
    )


def _http_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ProblemBody]:
    slug = _STATUS_TO_SLUG.get(exc.status_code, "http-error" if exc.status_code < 500 else "internal-error")
    detail = exc.detail
    if exc.status_code == 400 and any(
        w in detail.lower() for w in ("json", "truncated", "decode", "malformed")
    ):
        detail = f"the request body is not valid JSON ({detail})"
    headers = dict(exc.headers or {})
    if exc.status_code == 429 and "RateLimit-Reset" in headers:
        headers["Retry-After"] = str(max(1, int(headers["RateLimit-Reset"])))
    return problem_response(request, slug, detail, status=exc.status_code, headers=headers or None)


def _alchemy_not_found(request: Request[Any, Any, Any], _exc: AlchemyNotFoundError) -> Response[ProblemBody]:
    return problem_response(request, "not-found", "resource not found")


def _stale_handler(request: Request[Any, Any, Any], _exc: StaleDataError) -> Response[ProblemBody]:
    # Two writers raced on the same row; the later lost. Same remedy as a stale If-Match.
    return problem_response(request, "precondition-failed", "the resource was changed by another request")


def _integrity_handler(request: Request[Any, Any, Any], exc: IntegrityError) -> Response[ProblemBody]:
    # Services check uniqueness first and name the field; this catches the race between two
    # requests, without echoing the database's message (it may contain personal data).
    logger.info(
        "integrity error", method=request.method, path=request.url.path, error=type(exc.orig).__name__
    )
    return problem_response(request, "conflict", "the change conflicts with existing data")


# How long a client should wait before trying again while the database is away: PostgreSQL
# restarts (a failover, a minor upgrade) take a few seconds.
DATABASE_RETRY_AFTER_SECONDS = 2


def _unavailable_response(request: Request[Any, Any, Any], exc: Exception) -> Response[ProblemBody]:
    logger.warning(
        "database unavailable",
        method=request.method,
        path=request.url.path,
        error=type(exc).__name__,
        request_id=request.scope.get("tmn_request_id"),
    )
    return problem_response(
        request,
        "service-unavailable",
        "the database is not available right now; try again shortly",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


def _internal_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[ProblemBody]:
    if database_unavailable(exc):
        # The database restarts, is down, or no connection is free: nothing to fix in the request,
        # and the transaction was rolled back; say so (503) rather than an internal error.
        return _unavailable_response(request, exc)
    # The exception's type and where it happened, never its message: messages can carry values.
    logger.error(
        "unhandled error",
        method=request.method,
        path=request.url.path,
        error=type(exc).__name__,
        traceback="".join(traceback.format_tb(exc.__traceback__)),
        request_id=request.scope.get("tmn_request_id"),
    )
    return problem_response(
        request, "internal-error", "internal error", status=HTTP_500_INTERNAL_SERVER_ERROR
    )


EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    Problem: _problem_handler,
    ValidationException: _validation_handler,
    HTTPException: _http_handler,
    AlchemyNotFoundError: _alchemy_not_found,
    StaleDataError: _stale_handler,
    IntegrityError: _integrity_handler,
    Exception: _internal_handler,
}


def handler_for(exc: Exception) -> Any:
    """The exception handler Litestar would choose: the most specific class in the table."""
    for cls in type(exc).__mro__:
        if cls in EXCEPTION_HANDLERS:
            return EXCEPTION_HANDLERS[cls]
    return _internal_handler


__all__ = [
    "EXCEPTION_HANDLERS",
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_TYPES",
    "FieldError",
    "MediaType",
    "Problem",
    "ProblemBody",
    "conflict",
    "handler_for",
    "invalid",
    "not_found",
    "problem_response",
]
