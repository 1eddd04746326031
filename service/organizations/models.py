from __future__ import annotations

import enum
from datetime import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import EntityBase, enum_type


class OrganizationKind(enum.StrEnum):
    POLICE = "police"
    CUSTOMS = "customs"
    PROSECUTION = "prosecution"
    PUBLIC_HEALTH_AGENCY = "public_health_agency"
    COUNTY_BOARD = "county_board"
    MUNICIPALITY = "municipality"
    POSTAL_OPERATOR = "postal_operator"
    LOGISTICS_COMPANY = "logistics_company"
    PICKUP_POINT = "pickup_point"
    TERMINAL = "terminal"
    MAIL_CARRIER_OFFICE = "mail_carrier_office"
    TRADE_ASSOCIATION = "trade_association"
    UNION = "union"
    RESEARCH = "research"


# Places where parcels change hands: they need an address, coordinates and one municipality.
PHYSICAL_KINDS = frozenset(
    {OrganizationKind.PICKUP_POINT, OrganizationKind.TERMINAL, OrganizationKind.MAIL_CARRIER_OFFICE}
)


class OrganizationStatus(enum.StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class Organization(EntityBase):
    __tablename__ = "organization"
    __table_args__ = (
        Index("ix_organization_kind_name", "kind", "name"),
        Index("ix_organization_municipality_kind", "municipality_code", "kind"),
    )

    kind: Mapped[OrganizationKind] = mapped_column(enum_type(OrganizationKind))
    name: Mapped[str] = mapped_column(String(200), index=True)
    org_number: Mapped[str | None] = mapped_column(String(11))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20))
    website: Mapped[str | None] = mapped_column(String(500))
    street_address: Mapped[str | None] = mapped_column(String(200))
    postal_code: Mapped[str | None] = mapped_column(String(5))
    city: Mapped[str | None] = mapped_column(String(100))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    municipality_code: Mapped[str | None] = mapped_column(ForeignKey("municipality.code"))
    # Derived from the municipality when there is one; set alone for county boards and the like.
    county_code: Mapped[str | None] = mapped_column(ForeignKey("county.code"), index=True)
    police_region: Mapped[str | None] = mapped_column(String(50))
    status: Mapped[OrganizationStatus] = mapped_column(
        enum_type(OrganizationStatus), default=OrganizationStatus.ACTIVE, index=True
    )
    archived_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # How the municipality was decided: given (by whoever registered it), polygon or proximity (from
    # the coordinates, by the carriers' sync), or manual (a coordinator's correction, which syncs keep).
    placement: Mapped[str] = mapped_column(String(20), default="given", server_default="given")
    placement_distance_m: Mapped[float | None] = mapped_column(Float)
