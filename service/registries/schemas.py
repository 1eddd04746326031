from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from service.pagination import Page
from service.registries.models import PointStatus
from service.schemas import Input, Output

PointKind = Literal["pickup_point", "locker", "terminal", "mail_carrier_office"]


class PointIn(Input):
    """One pickup point as a carrier sends it (a row of a snapshot, or a single delta)."""

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=100, description="The carrier's own id")]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    kind: PointKind = "pickup_point"
    street_address: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    postal_code: Annotated[str, msgspec.Meta(max_length=10)] | None = None
    city: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    latitude: float | None = None
    longitude: float | None = None
    opening_hours: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class PointUpsert(Input):
    """A single point by its id in the path (delta push)."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    kind: PointKind = "pickup_point"
    street_address: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    postal_code: Annotated[str, msgspec.Meta(max_length=10)] | None = None
    city: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    latitude: float | None = None
    longitude: float | None = None
    opening_hours: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class RowError(Output):
    row: int  # 1-based, in the order sent
    id: str | None
    field: str
    reason: str


class SyncReport(Output):
    carrier: str
    dry_run: bool
    received: int
    created: int
    updated: int
    unchanged: int
    closed: int
    reopened: int
    # New listings that joined a shop another carrier already lists (one organization, two ids).
    joined_existing_shop: int
    placed_by_proximity: int
    errors: list[RowError]


class Carrier(Output):
    code: str
    name: str
    open_points: int
    closed_points: int


class Listing(Output):
    id: UUID
    carrier: str
    external_id: str
    name: str
    kind: str
    status: PointStatus
    closed_at: datetime | None
    last_seen_at: datetime


class PickupPoint(Output):
    id: UUID
    name: str
    kind: str
    status: str
    street_address: str | None
    postal_code: str | None
    city: str | None
    latitude: float | None
    longitude: float | None
    municipality_code: str | None
    county_code: str | None
    placement: str
    placement_distance_m: float | None
    carriers: list[str]
    listings: list[Listing]
    # The certification's status, computed now (null: never certified).
    certification_status: str | None


class PickupPointPage(Page[PickupPoint]):
    """A page of pickup points, terminals and mail-carrier offices, by name."""

    # Named again: the OpenAPI generator does not resolve the generic base.
    items: list[PickupPoint]


class Placement(Input):
    municipality_code: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4}$")]


class Merge(Input):
    """Make the other organization's listings this one's: the rule missed that they are one shop."""

    organization_id: UUID


class Split(Input):
    """Move one listing to a shop of its own: the rule joined two shops that are not one."""

    listing_id: UUID
