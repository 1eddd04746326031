from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db import NaturalKeyBase


class County(NaturalKeyBase):
    __tablename__ = "county"

    code: Mapped[str] = mapped_column(String(2), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    police_region: Mapped[str] = mapped_column(String(50), index=True)

    municipalities: Mapped[list[Municipality]] = relationship(back_populates="county", lazy="raise")


class Municipality(NaturalKeyBase):
    __tablename__ = "municipality"

    code: Mapped[str] = mapped_column(String(4), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    county_code: Mapped[str] = mapped_column(ForeignKey("county.code"), index=True)

    county: Mapped[County] = relationship(back_populates="municipalities", lazy="joined", innerjoin=True)
