"""The acting principal and its scope.

Every service call receives a Principal; every repository query asks the principal's
Scope for a filter, so scope is enforced in SQL and not only on routes. Until
authentication lands, requests act as the development principal (national administrator).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import msgspec
from sqlalchemy import ColumnElement, false, or_
from sqlalchemy.orm import InstrumentedAttribute


class Role(enum.StrEnum):
    NATIONAL_ADMIN = "national_admin"
    COUNTY_COORDINATOR = "county_coordinator"
    MUNICIPAL_COORDINATOR = "municipal_coordinator"
    INSTRUCTOR = "instructor"
    CARRIER_INTEGRATION = "carrier_integration"
    VIEWER = "viewer"
    AUDITOR = "auditor"
    SYSTEM = "system"


class Scope(msgspec.Struct, frozen=True, kw_only=True):
    """Where a principal may act: the whole nation, or some counties and municipalities."""

    nation: bool = False
    county_codes: frozenset[str] = frozenset()
    municipality_codes: frozenset[str] = frozenset()
    carrier: str | None = None

    @classmethod
    def national(cls) -> Scope:
        return cls(nation=True)

    def covers_municipality(self, municipality_code: str | None, county_code: str | None = None) -> bool:
        if self.nation:
            return True
        if municipality_code is not None:
            county_code = county_code or municipality_code[:2]
            return municipality_code in self.municipality_codes or county_code in self.county_codes
        return county_code is not None and county_code in self.county_codes

    def covers_counties(self, county_codes: Iterable[str]) -> bool:
        codes = set(county_codes)
        return self.nation or (bool(codes) and codes <= self.county_codes)

    def geo_filter(
        self,
        municipality_col: InstrumentedAttribute[str | None] | InstrumentedAttribute[str] | None,
        county_col: InstrumentedAttribute[str | None] | InstrumentedAttribute[str] | None,
    ) -> ColumnElement[bool] | None:
        """A WHERE clause limiting rows to this scope, or None when nothing is excluded."""
        if self.nation:
            return None
        clauses: list[ColumnElement[bool]] = []
        if municipality_col is not None and self.municipality_codes:
            clauses.append(municipality_col.in_(sorted(self.municipality_codes)))
        if county_col is not None and self.county_codes:
            clauses.append(county_col.in_(sorted(self.county_codes)))
        return or_(*clauses) if clauses else false()


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    roles: frozenset[Role]
    scope: Scope

    @classmethod
    def development(cls) -> Principal:
        """The principal of every request until authentication exists."""
        return cls(
            id="dev", name="development", roles=frozenset({Role.NATIONAL_ADMIN}), scope=Scope.national()
        )

    @classmethod
    def system(cls) -> Principal:
        """The principal of CLI commands and the worker."""
        return cls(id="system", name="system", roles=frozenset({Role.SYSTEM}), scope=Scope.national())


def ensure_in_scope(
    principal: Principal, *, municipality_code: str | None, county_code: str | None, field: str
) -> None:
    """Refuse to create or move something outside the principal's geography (403, naming the field)."""
    from service.problems import FieldError, Problem

    if not principal.scope.covers_municipality(municipality_code, county_code):
        raise Problem(
            "forbidden",
            f"{field}: outside your geographic scope",
            errors=[FieldError(field, "outside your scope")],
        )
