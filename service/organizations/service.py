"""Rules for organizations: where they are, what each kind needs, archiving instead of deleting."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import distinct, select

from service.auth.principal import ensure_in_scope
from service.context import Context
from service.db import utcnow
from service.geography.models import County
from service.geography.service import GeographyService
from service.organizations import schemas
from service.organizations.models import (
    PHYSICAL_KINDS,
    Organization,
    OrganizationKind,
    OrganizationStatus,
)
from service.organizations.repository import OrganizationRepository
from service.problems import FieldError, Problem, invalid, not_found
from service.validation import normalize_email, normalize_org_number, normalize_phone, normalize_postal_code
from service.versioning import check_if_match, etag_of

_PHYSICAL_REQUIRED = ("street_address", "postal_code", "city", "latitude", "longitude", "municipality_code")


def to_schema(org: Organization) -> schemas.Organization:
    return schemas.Organization(
        id=org.id,
        kind=org.kind,
        name=org.name,
        org_number=org.org_number,
        email=org.email,
        phone=org.phone,
        website=org.website,
        street_address=org.street_address,
        postal_code=org.postal_code,
        city=org.city,
        latitude=org.latitude,
        longitude=org.longitude,
        municipality_code=org.municipality_code,
        county_code=org.county_code,
        police_region=org.police_region,
        status=org.status,
        archived_at=org.archived_at,
        created_at=org.created_at,
        updated_at=org.updated_at,
    )


def etag(org: Organization) -> str:
    return etag_of("organization", org.id, org.version)


class OrganizationService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.repo = OrganizationRepository(session=ctx.session)
        self.geography = GeographyService(ctx)

    async def create(self, data: schemas.OrganizationCreate) -> Organization:
        values = await self._validated(msgspec.structs.asdict(data))
        org = Organization(**values, status=OrganizationStatus.ACTIVE)
        return await self.repo.add(org)

    async def get(self, ident: UUID) -> Organization:
        org = await self.repo.get_visible(self.ctx.principal, ident)
        if org is None:
            raise not_found("organization", ident)
        return org

    async def require_active(self, ident: UUID, field: str) -> Organization:
        """An organization another resource may point at: visible and not archived."""
        org = await self.repo.get_visible(self.ctx.principal, ident)
        if org is None:
            raise invalid(field, f"no organization {ident}")
        if org.status is OrganizationStatus.ARCHIVED:
            raise invalid(field, f"organization {ident} is archived")
        return org

    async def page(
        self,
        *,
        kind: OrganizationKind | None,
        municipality: str | None,
        county: str | None,
        q: str | None,
        status: OrganizationStatus | None,
        limit: int,
        cursor: str | None,
    ) -> schemas.OrganizationPage:
        if municipality is not None:
            await self.geography.require_municipality(municipality, field="municipality", source="query")
        if county is not None:
            await self.geography.require_county(county, field="county", source="query")
        rows, next_cursor = await self.repo.page(
            self.ctx.principal,
            kind=kind,
            municipality=municipality,
            county=county,
            q=q,
            status=status,
            limit=limit,
            cursor=cursor,
        )
        return schemas.OrganizationPage(
            items=[to_schema(o) for o in rows], limit=limit, next_cursor=next_cursor
        )

    async def update(
        self, ident: UUID, patch: schemas.OrganizationUpdate, if_match: str | None
    ) -> Organization:
        org = await self.get(ident)
        check_if_match(if_match, etag(org))
        if org.status is OrganizationStatus.ARCHIVED:
            raise Problem("conflict", "an archived organization cannot be changed; restore it first")
        changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
        if not changes:
            return org
        current = {c: getattr(org, c) for c in _FIELDS}
        # County follows the municipality unless the client set it explicitly in this patch.
        if "municipality_code" in changes and "county_code" not in changes:
            current["county_code"] = None
        merged = {**current, **changes}
        values = await self._validated(merged)
        for key, value in values.items():
            setattr(org, key, value)
        await self.ctx.session.flush()
        return org

    async def archive(self, ident: UUID, if_match: str | None) -> Organization:
        org = await self.get(ident)
        check_if_match(if_match, etag(org))
        if org.status is not OrganizationStatus.ARCHIVED:
            org.status = OrganizationStatus.ARCHIVED
            org.archived_at = utcnow()
            await self.ctx.session.flush()
        return org

    async def restore(self, ident: UUID, if_match: str | None) -> Organization:
        org = await self.get(ident)
        check_if_match(if_match, etag(org))
        if org.status is not OrganizationStatus.ACTIVE:
            org.status = OrganizationStatus.ACTIVE
            org.archived_at = None
            await self.ctx.session.flush()
        return org

    async def _validated(self, values: dict[str, Any]) -> dict[str, Any]:
        """Normalise formats and apply the per-kind rules; returns the columns to store."""
        kind = OrganizationKind(values["kind"])
        out = dict(values)
        for field, normalizer in (
            ("email", normalize_email),
            ("phone", normalize_phone),
            ("postal_code", normalize_postal_code),
            ("org_number", normalize_org_number),
        ):
            if out.get(field) is not None:
                out[field] = normalizer(out[field], field)
        for field in ("name", "street_address", "city"):
            if isinstance(out.get(field), str):
                out[field] = out[field].strip()
                if not out[field]:
                    raise invalid(field, "must not be blank")

        if kind in PHYSICAL_KINDS:
            missing = [f for f in _PHYSICAL_REQUIRED if out.get(f) is None]
            if missing:
                raise Problem(
                    "validation-error",
                    f"a {kind.value} needs a postal address, coordinates and a municipality",
                    errors=[FieldError(f, f"required for a {kind.value}") for f in missing],
                )
        if (out.get("latitude") is None) != (out.get("longitude") is None):
            field = "longitude" if out.get("longitude") is None else "latitude"
            raise invalid(field, "latitude and longitude go together")

        municipality_code = out.get("municipality_code")
        if municipality_code is not None:
            municipality = await self.geography.require_municipality(
                municipality_code, field="municipality_code"
            )
            if out.get("county_code") not in (None, municipality.county_code):
                raise invalid(
                    "county_code",
                    f"municipality {municipality_code} lies in county {municipality.county_code}",
                )
            out["county_code"] = municipality.county_code
        elif out.get("county_code") is not None:
            await self.geography.require_county(out["county_code"], field="county_code")

        if kind is OrganizationKind.MUNICIPALITY and municipality_code is None:
            raise invalid("municipality_code", "required for a municipality")
        if kind is OrganizationKind.COUNTY_BOARD and out.get("county_code") is None:
            raise invalid("county_code", "required for a county board")
        if out.get("police_region") is not None:
            if kind is not OrganizationKind.POLICE:
                raise invalid("police_region", "only police organizations belong to a police region")
            regions = set(await self.ctx.session.scalars(select(distinct(County.police_region))))
            if out["police_region"] not in regions:
                raise invalid("police_region", f"unknown police region; one of {', '.join(sorted(regions))}")

        ensure_in_scope(
            self.ctx.principal,
            municipality_code=out.get("municipality_code"),
            county_code=out.get("county_code"),
            field="municipality_code" if out.get("municipality_code") else "county_code",
        )
        return {k: out[k] for k in _FIELDS}


_FIELDS = tuple(f for f in schemas.OrganizationCreate.__struct_fields__)
