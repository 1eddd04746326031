from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType

from service.organizations.models import OrganizationKind, OrganizationStatus
from service.pagination import Page
from service.schemas import CountyCode, Input, Latitude, Longitude, MunicipalityCode, Name, Output

OrgNumber = Annotated[str, msgspec.Meta(max_length=11, description="Organisationsnummer, e.g. 556677-8899")]
Email = Annotated[str, msgspec.Meta(max_length=254)]
Phone = Annotated[str, msgspec.Meta(max_length=30, description="E.164, e.g. +46920123456")]
Url = Annotated[str, msgspec.Meta(max_length=500, pattern=r"^https?://")]
Street = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
PostalCode = Annotated[str, msgspec.Meta(max_length=6, description="Five digits, e.g. 97131 or 971 31")]
City = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
PoliceRegion = Annotated[str, msgspec.Meta(max_length=50, description="Police region, e.g. Nord")]


class OrganizationCreate(Input):
    kind: OrganizationKind
    name: Name
    org_number: OrgNumber | None = None
    email: Email | None = None
    phone: Phone | None = None
    website: Url | None = None
    street_address: Street | None = None
    postal_code: PostalCode | None = None
    city: City | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    municipality_code: MunicipalityCode | None = None
    county_code: CountyCode | None = None
    police_region: PoliceRegion | None = None


class OrganizationUpdate(Input):
    """Merge patch: absent fields are left alone, null clears an optional field."""

    kind: OrganizationKind | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    org_number: OrgNumber | UnsetType | None = UNSET
    email: Email | UnsetType | None = UNSET
    phone: Phone | UnsetType | None = UNSET
    website: Url | UnsetType | None = UNSET
    street_address: Street | UnsetType | None = UNSET
    postal_code: PostalCode | UnsetType | None = UNSET
    city: City | UnsetType | None = UNSET
    latitude: Latitude | UnsetType | None = UNSET
    longitude: Longitude | UnsetType | None = UNSET
    municipality_code: MunicipalityCode | UnsetType | None = UNSET
    county_code: CountyCode | UnsetType | None = UNSET
    police_region: PoliceRegion | UnsetType | None = UNSET


class Organization(Output):
    id: UUID
    kind: OrganizationKind
    name: str
    org_number: str | None
    email: str | None
    phone: str | None
    website: str | None
    street_address: str | None
    postal_code: str | None
    city: str | None
    latitude: float | None
    longitude: float | None
    municipality_code: str | None
    county_code: str | None
    police_region: str | None
    status: OrganizationStatus
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime


class OrganizationPage(Page[Organization]):
    """A page of organizations; `next_cursor` is null on the last page."""

    # Named again: the OpenAPI generator does not resolve the generic base.
    items: list[Organization]
