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


class PrincipalError(ValueError):
    """A role and scope that do not fit together (e.g. a municipal coordinator without a municipality)."""


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is acting. `id` is safe to log (a key id or an identity provider's subject); `name` is a
    label such as the key's name, never a person's name."""

    id: str
    name: str
    roles: frozenset[Role]
    scope: Scope

    def has(self, role: Role) -> bool:
        return role in self.roles

    @classmethod
    def for_role(
        cls,
        *,
        id: str,
        name: str,
        role: Role,
        municipality: str | None = None,
        county: str | None = None,
        carrier: str | None = None,
    ) -> Principal:
        """The principal of an API key or a token: one role, and the scope that role needs.

        national_admin and auditor act nationwide; county_coordinator needs a county;
        municipal_coordinator a municipality; carrier_integration a carrier; instructor and viewer
        a municipality or a county (a viewer with neither reads nationwide).
        """
        if role is Role.SYSTEM:
            raise PrincipalError("the system role is not for keys or tokens")
        if municipality is not None and county is not None:
            raise PrincipalError("give a municipality or a county, not both")
        if role in (Role.NATIONAL_ADMIN, Role.AUDITOR):
            if municipality or county or carrier:
                raise PrincipalError(f"{role.value} acts nationwide; give no municipality, county or carrier")
            scope = Scope.national()
        elif role is Role.CARRIER_INTEGRATION:
            if not carrier or municipality or county:
                raise PrincipalError("carrier_integration needs a carrier and no municipality or county")
            scope = Scope(carrier=carrier)
        else:
            if carrier:
                raise PrincipalError(f"{role.value} has no carrier")
            if role is Role.COUNTY_COORDINATOR and county is None:
                raise PrincipalError("county_coordinator needs a county")
            if role is Role.MUNICIPAL_COORDINATOR and municipality is None:
                raise PrincipalError("municipal_coordinator needs a municipality")
            if role is Role.INSTRUCTOR and municipality is None and county is None:
                raise PrincipalError("instructor needs a municipality or a county")
            if municipality is not None:
                scope = Scope(municipality_codes=frozenset({municipality}))
            elif county is not None:
                scope = Scope(county_codes=frozenset({county}))
            else:
                scope = Scope.national()
        return cls(id=id, name=name, roles=frozenset({role}), scope=scope)

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
