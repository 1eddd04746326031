"""Rules for geography: reference data is public to every principal; codes are validated."""

from __future__ import annotations

import csv
from importlib import resources

from service.context import Context
from service.geography import schemas
from service.geography.models import County, Municipality
from service.geography.repository import GeographyRepository
from service.problems import Source, invalid, not_found


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("service.geography").joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def reference_counties() -> list[tuple[str, str, str]]:
    regions = {r["county_code"]: r["police_region"] for r in _read_csv("police_regions.csv")}
    return [
        (r["county_code"], r["county_name"], regions[r["county_code"]]) for r in _read_csv("counties.csv")
    ]


def reference_municipalities() -> list[tuple[str, str, str]]:
    return [
        (r["municipality_code"], r["municipality_name"], r["county_code"])
        for r in _read_csv("municipalities.csv")
    ]


def municipality_out(m: Municipality) -> schemas.Municipality:
    return schemas.Municipality(
        code=m.code,
        name=m.name,
        county_code=m.county_code,
        county_name=m.county.name,
        police_region=m.county.police_region,
    )


class GeographyService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.repo = GeographyRepository(ctx.session)

    async def seed(self) -> tuple[int, int]:
        """Insert or correct the 21 counties and 290 municipalities; returns rows changed."""
        counties = await self.repo.upsert_counties(reference_counties())
        municipalities = await self.repo.upsert_municipalities(reference_municipalities())
        return counties, municipalities

    async def list_counties(self, *, limit: int, cursor: str | None) -> schemas.CountyPage:
        rows, next_cursor = await self.repo.list_counties(limit=limit, cursor=cursor)
        counts = await self.repo.municipality_counts(c.code for c in rows)
        items = [self._county_out(c, counts.get(c.code, 0)) for c in rows]
        return schemas.CountyPage(items=items, limit=limit, next_cursor=next_cursor)

    async def get_county(self, code: str) -> schemas.County:
        county = await self.repo.get_county(code)
        if county is None:
            raise not_found("county", code)
        counts = await self.repo.municipality_counts([code])
        return self._county_out(county, counts.get(code, 0))

    async def list_municipalities(
        self, *, county: str | None, q: str | None, limit: int, cursor: str | None
    ) -> schemas.MunicipalityPage:
        if county is not None:
            await self.require_county(county, field="county", source="query")
        rows, next_cursor = await self.repo.list_municipalities(
            county=county, q=q, limit=limit, cursor=cursor
        )
        return schemas.MunicipalityPage(
            items=[municipality_out(m) for m in rows], limit=limit, next_cursor=next_cursor
        )

    async def get_municipality(self, code: str) -> schemas.Municipality:
        municipality = await self.repo.get_municipality(code)
        if municipality is None:
            raise not_found("municipality", code)
        return municipality_out(municipality)

    async def require_county(self, code: str, *, field: str, source: Source = "body") -> County:
        county = await self.repo.get_county(code)
        if county is None:
            raise invalid(field, f"no county has code {code}", source)
        return county

    async def require_municipality(self, code: str, *, field: str, source: Source = "body") -> Municipality:
        municipality = await self.repo.get_municipality(code)
        if municipality is None:
            raise invalid(field, f"no municipality has code {code}", source)
        return municipality

    @staticmethod
    def _county_out(county: County, municipality_count: int) -> schemas.County:
        return schemas.County(
            code=county.code,
            name=county.name,
            police_region=county.police_region,
            municipality_count=municipality_count,
        )
