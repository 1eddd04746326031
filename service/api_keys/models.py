from __future__ import annotations

from datetime import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from service.auth.principal import Role
from service.db import EntityBase, enum_type


class ApiKey(EntityBase):
    """A machine client's key. The secret is never stored: only its SHA-256 (the key is 256
    random bits, so a slow password hash would add nothing) and a short visible prefix."""

    __tablename__ = "api_key"

    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[Role] = mapped_column(enum_type(Role))
    municipality_code: Mapped[str | None] = mapped_column(ForeignKey("municipality.code"))
    county_code: Mapped[str | None] = mapped_column(ForeignKey("county.code"))
    carrier: Mapped[str | None] = mapped_column(String(40))
    created_by: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
