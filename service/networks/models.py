from __future__ import annotations

import enum
from datetime import datetime
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db import EntityBase, NaturalKeyBase, enum_type, utcnow


class NetworkLevel(enum.StrEnum):
    NATIONAL = "national"
    REGIONAL = "regional"
    LOCAL = "local"


class NetworkKind(enum.StrEnum):
    NATIONAL_CONTACTS = "national_contacts"
    REGIONAL_MANAGEMENT_GROUP = "regional_management_group"
    COUNTY_GROUP = "county_group"
    PROJECT_GROUP = "project_group"
    LOCAL_WORKING_GROUP = "local_working_group"
    LOCAL_NETWORK = "local_network"


LEVEL_OF_KIND: dict[NetworkKind, NetworkLevel] = {
    NetworkKind.NATIONAL_CONTACTS: NetworkLevel.NATIONAL,
    NetworkKind.REGIONAL_MANAGEMENT_GROUP: NetworkLevel.REGIONAL,
    NetworkKind.COUNTY_GROUP: NetworkLevel.REGIONAL,
    NetworkKind.PROJECT_GROUP: NetworkLevel.REGIONAL,
    NetworkKind.LOCAL_WORKING_GROUP: NetworkLevel.LOCAL,
    NetworkKind.LOCAL_NETWORK: NetworkLevel.LOCAL,
}


class MemberRole(enum.StrEnum):
    CONVENOR = "convenor"
    INSTRUCTOR = "instructor"
    MEMBER = "member"
    REPRESENTATIVE = "representative"


class Network(EntityBase):
    __tablename__ = "network"

    name: Mapped[str] = mapped_column(String(200), index=True)
    level: Mapped[NetworkLevel] = mapped_column(enum_type(NetworkLevel), index=True)
    kind: Mapped[NetworkKind] = mapped_column(enum_type(NetworkKind))
    description: Mapped[str | None] = mapped_column(String(4000))
    parent_id: Mapped[UUID | None] = mapped_column(ForeignKey("network.id"), index=True)
    # Geographic scope: one municipality (local), some counties (regional), the nation (neither).
    municipality_code: Mapped[str | None] = mapped_column(ForeignKey("municipality.code"), index=True)

    counties: Mapped[list[NetworkCounty]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="NetworkCounty.county_code"
    )

    @property
    def county_codes(self) -> list[str]:
        return [c.county_code for c in self.counties]


class NetworkCounty(NaturalKeyBase):
    __tablename__ = "network_county"

    network_id: Mapped[UUID] = mapped_column(ForeignKey("network.id", ondelete="CASCADE"), primary_key=True)
    county_code: Mapped[str] = mapped_column(ForeignKey("county.code"), primary_key=True, index=True)


class NetworkMember(EntityBase):
    """A person's membership of a network; ended (left_at), not deleted, when they leave."""

    __tablename__ = "network_member"
    __table_args__ = (
        Index(
            "uq_network_member_active",
            "network_id",
            "participant_id",
            unique=True,
            postgresql_where=text("left_at IS NULL"),
            sqlite_where=text("left_at IS NULL"),
        ),
    )

    network_id: Mapped[UUID] = mapped_column(ForeignKey("network.id"), index=True)
    participant_id: Mapped[UUID] = mapped_column(ForeignKey("participant.id", ondelete="CASCADE"), index=True)
    role: Mapped[MemberRole] = mapped_column(enum_type(MemberRole))
    # The organization this person represents in the network (defaults to their employer).
    organization_id: Mapped[UUID | None] = mapped_column(ForeignKey("organization.id"), index=True)
    joined_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=utcnow)
    left_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
