from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from service.auth.principal import Role
from service.pagination import Page
from service.schemas import CountyCode, Input, MunicipalityCode, Name, Output

CarrierCode = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{1,39}$", description="e.g. postnord")]


class ApiKeyCreate(Input):
    name: Name
    role: Role
    municipality_code: MunicipalityCode | None = None
    county_code: CountyCode | None = None
    carrier: CarrierCode | None = None
    expires_at: datetime | None = None


class ApiKey(Output):
    id: UUID
    name: str
    prefix: str
    role: Role
    municipality_code: str | None
    county_code: str | None
    carrier: str | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    status: str


class ApiKeyCreated(ApiKey):
    """The new key, with its secret: shown this once, never again."""

    key: str


class ApiKeyPage(Page[ApiKey]):
    """A page of API keys; `next_cursor` is null on the last page."""

    # Named again: the OpenAPI generator does not resolve the generic base.
    items: list[ApiKey]
