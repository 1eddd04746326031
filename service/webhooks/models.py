from __future__ import annotations

from datetime import datetime
from typing import Any

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import EntityBase


class WebhookEndpoint(EntityBase):
    __tablename__ = "webhook_endpoint"

    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2000))
    # [{"secret": "whsec_…", "created_at": iso, "expires_at": iso | None}]: several during rotation.
    secrets: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # Empty: every event type.
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Only events of this place (none: events everywhere the owner may see).
    municipality_code: Mapped[str | None] = mapped_column(ForeignKey("municipality.code"))
    county_code: Mapped[str | None] = mapped_column(ForeignKey("county.code"))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(100))

    def live_secrets(self, now: datetime) -> list[str]:
        """The secrets that sign now: the newest, and rotated-out ones until they lapse."""
        return [
            s["secret"]
            for s in self.secrets
            if s.get("expires_at") is None or datetime.fromisoformat(s["expires_at"]) > now
        ]
