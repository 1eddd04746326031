from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType

from service.networks.models import MemberRole, NetworkKind, NetworkLevel
from service.pagination import Page
from service.schemas import CountyCode, Input, LongText, MunicipalityCode, Name, Output

CountyCodes = Annotated[
    list[CountyCode], msgspec.Meta(max_length=21, description="The counties a regional network covers")
]


class NetworkCreate(Input):
    name: Name
    kind: NetworkKind
    # Follows from the kind; when given it must agree.
    level: NetworkLevel | None = None
    parent_id: UUID | None = None
    municipality_code: MunicipalityCode | None = None
    county_codes: CountyCodes | None = None
    description: LongText | None = None


class NetworkUpdate(Input):
    """Merge patch. The level cannot change; the kind may change within its level."""

    name: Name | UnsetType = UNSET
    kind: NetworkKind | UnsetType = UNSET
    parent_id: UUID | UnsetType | None = UNSET
    municipality_code: MunicipalityCode | UnsetType | None = UNSET
    county_codes: CountyCodes | UnsetType | None = UNSET
    description: LongText | UnsetType | None = UNSET


class Network(Output):
    id: UUID
    name: str
    level: NetworkLevel
    kind: NetworkKind
    parent_id: UUID | None
    municipality_code: str | None
    county_codes: list[str]
    description: str | None
    created_at: datetime
    updated_at: datetime


class NetworkTreeNode(Output):
    """A network in a tree listing: `depth` 0 is the root asked for, parents come before children."""

    id: UUID
    name: str
    level: NetworkLevel
    kind: NetworkKind
    parent_id: UUID | None
    municipality_code: str | None
    county_codes: list[str]
    depth: int


class NetworkTree(Output):
    root_id: UUID
    nodes: list[NetworkTreeNode]


class MemberCreate(Input):
    participant_id: UUID
    role: MemberRole = MemberRole.MEMBER
    organization_id: UUID | None = None


class MemberUpdate(Input):
    role: MemberRole | UnsetType = UNSET
    organization_id: UUID | UnsetType | None = UNSET


class Member(Output):
    id: UUID
    network_id: UUID
    participant_id: UUID
    participant_name: str
    role: MemberRole
    organization_id: UUID | None
    organization_name: str | None
    joined_at: datetime
    left_at: datetime | None


class NetworkPage(Page[Network]):
    """A page of networks; `next_cursor` is null on the last page."""

    # Named again: the OpenAPI generator does not resolve the generic base.
    items: list[Network]


class MemberPage(Page[Member]):
    """A page of members; `next_cursor` is null on the last page."""

    # Named again: the OpenAPI generator does not resolve the generic base.
    items: list[Member]
