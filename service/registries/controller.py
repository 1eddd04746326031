from __future__ import annotations

import hashlib
import zlib
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, PathParameter, QueryParameter
from sqlalchemy import func, select

from service.auth.permissions import Permission, requires
from service.deps import RequestContext, read_context
from service.http import (
    ACTION_ERRORS,
    LIST_ERRORS,
    READ_ERRORS,
    CountyFilter,
    Cursor,
    IdempotencyKey,
    Limit,
    MunicipalityFilter,
    idempotent,
    page_response,
    problem_responses,
)
from service.meetings.controller import outside
from service.organizations.models import OrganizationStatus
from service.problems import Problem, invalid
from service.registries import schemas
from service.registries.models import Carrier, CarrierPoint, PointStatus
from service.registries.points import PickupPointService
from service.registries.sync import RegistryService

CarrierCode = Annotated[str, PathParameter(pattern=r"^[a-z0-9_-]{2,30}$", description="e.g. postnord")]
ExternalId = Annotated[
    str, PathParameter(min_length=1, max_length=100, description="The carrier's id of the point")
]
PUSH = requires(Permission.REGISTRY_PUSH)
SNAPSHOT_ERRORS = problem_responses(400, 403, 404, 409, 413, 415, 422)
CarrierFilter = Annotated[str | None, QueryParameter(pattern=r"^[a-z0-9_-]{2,30}$")]
BBox = Annotated[
    str | None,
    QueryParameter(
        pattern=r"^-?[0-9.]+,-?[0-9.]+,-?[0-9.]+,-?[0-9.]+$",
        description="west,south,east,north in WGS84 degrees",
    ),
]
GEOJSON_MAX = 10_000


async def _read_body(request: Request[Any, Any, Any], limit: int) -> bytes:
    """The body, at most `limit` bytes as sent; gzip (Content-Encoding or the media type) undone,
    at most 16 times that once inflated (a zip bomb is refused, not unpacked)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(
                "payload-too-large", f"a snapshot may be at most {limit} bytes as sent (gzip helps)"
            )
        chunks.append(chunk)
    raw = b"".join(chunks)
    gzipped = request.headers.get("content-encoding", "").lower() == "gzip" or request.headers.get(
        "content-type", ""
    ).startswith(("application/gzip", "application/x-gzip"))
    if gzipped or raw[:2] == b"\x1f\x8b":
        inflater = zlib.decompressobj(wbits=31)
        try:
            raw = inflater.decompress(raw, limit * 16)
        except zlib.error as exc:
            raise Problem("malformed-request", "the body is not valid gzip") from exc
        if inflater.unconsumed_tail:
            raise Problem("payload-too-large", "the snapshot inflates to more than this API accepts")
    return raw


def _rows(raw: bytes, content_type: str) -> list[Any]:
    """A JSON array, or NDJSON (one object per line; a line that is not JSON is that row's error)."""
    if not raw.strip():
        raise invalid("body", "send the carrier's pickup points: a JSON array, or NDJSON")
    if "ndjson" in content_type or "jsonl" in content_type or raw.lstrip()[:1] == b"{":
        rows: list[Any] = []
        for line in raw.splitlines():
            if not line.strip():
                continue
            try:
                rows.append(msgspec.json.decode(line))
            except msgspec.DecodeError:
                rows.append({"__invalid_json__": True})
        return rows
    try:
        decoded = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise Problem("malformed-request", f"the body is not valid JSON: {exc}") from exc
    if not isinstance(decoded, list):
        raise invalid("body", "a snapshot is a JSON array of points (or NDJSON)")
    return decoded


class CarrierController(Controller):
    path = "/v1/carriers"
    tags = ["Pickup points"]

    @get("/", **requires(Permission.ORGANIZATIONS_READ), summary="Carriers and how many points each lists")
    async def list_carriers(self, ctx: RequestContext) -> list[schemas.Carrier]:
        counts: dict[tuple[Any, Any], int] = {
            (c, s): n
            for c, s, n in (
                await ctx.session.execute(
                    select(CarrierPoint.carrier_id, CarrierPoint.status, func.count()).group_by(
                        CarrierPoint.carrier_id, CarrierPoint.status
                    )
                )
            ).tuples()
        }
        carriers = await ctx.session.scalars(select(Carrier).order_by(Carrier.code))
        return [
            schemas.Carrier(
                code=c.code,
                name=c.name,
                open_points=counts.get((c.id, PointStatus.OPEN), 0),
                closed_points=counts.get((c.id, PointStatus.CLOSED), 0),
            )
            for c in carriers
        ]

    @put(
        "/{code:str}/pickup-points",
        **PUSH,
        summary="The carrier's whole list (a snapshot): JSON array or NDJSON, gzip accepted",
        description="Up to 100,000 points, from the carrier's own integration key. Every row is "
        "validated; the difference is applied in one transaction and reported (created, updated, "
        "unchanged, closed, reopened, per-row errors). Points absent from the snapshot are closed, "
        "never deleted. `dry_run=true` reports without writing. Refused whole (nothing changed) when "
        "more than TMN_REGISTRY_MAX_ERROR_SHARE of the rows are in error (422, each row error named "
        "`[index].field`) or it would close more than TMN_REGISTRY_MAX_CLOSE_SHARE of the carrier's "
        "open points (409), unless `force=true`. Body rows: " + ", ".join(schemas.PointIn.__struct_fields__),
        responses=SNAPSHOT_ERRORS,
        request_max_body_size=None,
    )
    async def push_snapshot(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        code: CarrierCode,
        dry_run: Annotated[bool, QueryParameter(description="Report without writing")] = False,
        force: Annotated[bool, QueryParameter(description="Apply even past the safety limits")] = False,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[schemas.SyncReport]:
        service = RegistryService(ctx, outside(request))
        service.authorize_push(code)
        raw = await _read_body(request, request.app.state.settings.registry_max_body_bytes)
        rows = _rows(raw, request.headers.get("content-type", ""))

        async def apply() -> Response[Any]:
            report = await service.snapshot(code, rows, dry_run=dry_run, force=force)
            return Response(report, status_code=200)

        # The fingerprint covers the whole body: a retry of the same snapshot replays its report.
        fingerprint = {"dry_run": dry_run, "force": force, "sha256": hashlib.sha256(raw).hexdigest()}
        return await idempotent(request, ctx, idempotency_key, fingerprint, apply)

    @put(
        "/{code:str}/pickup-points/{external_id:str}",
        **PUSH,
        summary="Create or update one point (delta); a closed one is reopened",
        responses=problem_responses(403, 404, 422),
    )
    async def push_point(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        code: CarrierCode,
        external_id: ExternalId,
        data: JSONBody[schemas.PointUpsert],
    ) -> schemas.SyncReport:
        service = RegistryService(ctx, outside(request))
        service.authorize_push(code)
        return await service.upsert_one(code, external_id, data)

    @delete(
        "/{code:str}/pickup-points/{external_id:str}",
        **PUSH,
        summary="Close one point (delta); it is kept, and comes back if listed again",
        responses=problem_responses(403, 404),
    )
    async def close_point(
        self, request: Request[Any, Any, Any], ctx: RequestContext, code: CarrierCode, external_id: ExternalId
    ) -> None:
        service = RegistryService(ctx, outside(request))
        service.authorize_push(code)
        await service.close_one(code, external_id)


def _bbox(value: str | None) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    try:
        west, south, east, north = (float(v) for v in value.split(","))
    except ValueError as exc:
        raise invalid("bbox", "four numbers: west,south,east,north", "query") from exc
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise invalid("bbox", "west,south,east,north with west < east and south < north", "query")
    return west, south, east, north


class PickupPointController(Controller):
    path = "/v1/pickup-points"
    tags = ["Pickup points"]

    @get(
        "/",
        **requires(Permission.ORGANIZATIONS_READ),
        summary="Pickup points, terminals and offices",
        responses=LIST_ERRORS,
    )
    async def list_pickup_points(
        self,
        request: Request[Any, Any, Any],
        municipality: MunicipalityFilter = None,
        county: CountyFilter = None,
        carrier: CarrierFilter = None,
        status: FromQuery[OrganizationStatus | None] = None,
        certified: Annotated[
            bool | None, QueryParameter(description="Holding a certification in force")
        ] = None,
        bbox: BBox = None,
        q: Annotated[str | None, QueryParameter(max_length=100)] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Response[schemas.PickupPointPage]:
        # The hot path (bench/api.py): a read-only session of its own, not the per-request
        # session-and-transaction dependency, whose machinery costs a share of the request.
        async with read_context(request) as ctx:
            items, next_cursor = await PickupPointService(ctx, outside(request)).page(
                municipality=municipality,
                county=county,
                carrier=carrier,
                status=status,
                certified=certified,
                bbox=_bbox(bbox),
                q=q,
                limit=limit,
                cursor=cursor,
            )
        return page_response(
            request, schemas.PickupPointPage(items=items, limit=limit, next_cursor=next_cursor)
        )

    @get(
        "/geojson",
        **requires(Permission.ORGANIZATIONS_READ),
        summary="The same as GeoJSON for a map: points with their certification status",
        media_type="application/geo+json",
        responses=LIST_ERRORS,
    )
    async def pickup_points_geojson(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        municipality: MunicipalityFilter = None,
        county: CountyFilter = None,
        carrier: CarrierFilter = None,
        status: FromQuery[OrganizationStatus | None] = None,
        certified: Annotated[bool | None, QueryParameter()] = None,
        bbox: BBox = None,
        limit: Annotated[int, QueryParameter(ge=1, le=GEOJSON_MAX)] = 5000,
        cursor: Cursor = None,
    ) -> Response[dict[str, Any]]:
        items, next_cursor = await PickupPointService(ctx, outside(request)).page(
            municipality=municipality,
            county=county,
            carrier=carrier,
            status=status,
            certified=certified,
            bbox=_bbox(bbox),
            q=None,
            limit=limit,
            cursor=cursor,
        )
        features = [
            {
                "type": "Feature",
                "id": str(p.id),
                "geometry": {"type": "Point", "coordinates": [p.longitude, p.latitude]}
                if p.latitude is not None and p.longitude is not None
                else None,
                "properties": {
                    "name": p.name,
                    "kind": p.kind,
                    "status": p.status,
                    "municipality_code": p.municipality_code,
                    "carriers": p.carriers,
                    "certification_status": p.certification_status,
                },
            }
            for p in items
        ]
        body = {"type": "FeatureCollection", "features": features, "next_cursor": next_cursor}
        return Response(body, media_type="application/geo+json")

    @get(
        "/{organization_id:uuid}",
        **requires(Permission.ORGANIZATIONS_READ),
        summary="One pickup point and its listings",
        responses=READ_ERRORS,
    )
    async def get_pickup_point(
        self, request: Request[Any, Any, Any], ctx: RequestContext, organization_id: FromPath[UUID]
    ) -> schemas.PickupPoint:
        return await PickupPointService(ctx, outside(request)).one(organization_id)

    @put(
        "/{organization_id:uuid}/placement",
        **requires(Permission.ORGANIZATIONS_WRITE),
        summary="Place it in a municipality by hand; later syncs keep it",
        responses=problem_responses(403, 404, 422),
    )
    async def place_pickup_point(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        organization_id: FromPath[UUID],
        data: JSONBody[schemas.Placement],
    ) -> schemas.PickupPoint:
        service = PickupPointService(ctx, outside(request))
        org = await service.place(organization_id, data)
        return (await service.to_schemas([org]))[0]

    @post(
        "/{organization_id:uuid}/merge",
        **requires(Permission.ORGANIZATIONS_WRITE),
        status_code=200,
        summary="The other organization is the same shop: its listings become this one's",
        responses=ACTION_ERRORS,
    )
    async def merge_pickup_points(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        organization_id: FromPath[UUID],
        data: JSONBody[schemas.Merge],
    ) -> schemas.PickupPoint:
        service = PickupPointService(ctx, outside(request))
        org = await service.merge(organization_id, data)
        return (await service.to_schemas([org]))[0]

    @post(
        "/{organization_id:uuid}/split",
        **requires(Permission.ORGANIZATIONS_WRITE),
        status_code=201,
        summary="One listing is another shop: it moves to an organization of its own",
        responses=ACTION_ERRORS,
    )
    async def split_pickup_point(
        self,
        request: Request[Any, Any, Any],
        ctx: RequestContext,
        organization_id: FromPath[UUID],
        data: JSONBody[schemas.Split],
    ) -> schemas.PickupPoint:
        service = PickupPointService(ctx, outside(request))
        org = await service.split(organization_id, data)
        return (await service.to_schemas([org]))[0]
