from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType

from service.pagination import Page
from service.pluginspec import EVENT_TYPES
from service.schemas import CountyCode, Input, MunicipalityCode, Name, Output

Url = Annotated[
    str,
    msgspec.Meta(max_length=2000, pattern=r"^https?://", description="https:// (http:// only on loopback)"),
]
EventType = Annotated[
    str, msgspec.Meta(pattern="^(" + "|".join(t.replace(".", r"\.") for t in EVENT_TYPES) + ")$")
]
EventTypes = Annotated[list[EventType], msgspec.Meta(max_length=len(EVENT_TYPES), description="Empty: all")]


class WebhookCreate(Input):
    name: Name
    url: Url
    event_types: EventTypes = msgspec.field(default_factory=list)
    municipality_code: MunicipalityCode | None = None
    county_code: CountyCode | None = None


class WebhookUpdate(Input):
    name: Name | UnsetType = UNSET
    url: Url | UnsetType = UNSET
    event_types: EventTypes | UnsetType = UNSET


class Webhook(Output):
    id: UUID
    name: str
    url: str
    event_types: list[str]
    municipality_code: str | None
    county_code: str | None
    status: str
    disabled_reason: str | None
    secret_count: int
    created_by: str
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(Webhook):
    """Shown when a secret is made: store it, it is not shown again."""

    secret: str


class WebhookPage(Page[Webhook]):
    """A page of webhook endpoints; `next_cursor` is null on the last page."""

    # Named again: the OpenAPI generator does not resolve the generic base.
    items: list[Webhook]


class Delivery(Output):
    id: UUID
    webhook_id: str
    event_type: str
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    sent_at: datetime | None
    created_at: datetime
