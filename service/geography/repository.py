from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import contains_folded
from service.geography.models import County, Municipality
from service.pagination import Ordering, fetch_page


class GeographyRepository:
    county_order = Ordering("county.code", (County.code,), ("code",))
    municipality_order = Ordering("municipality.code", (Municipality.code,), ("code",))

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _county_counts(self) -> Select[tuple[str, int]]:
        return select(Municipality.county_code, func.count().label("n")).group_by(Municipality.county_code)

    async def municipality_counts(self, county_codes: Iterable[str]) -> dict[str, int]:
        stmt = self._county_counts().where(Municipality.county_code.in_(list(county_codes)))
        return dict((await self.session.execute(stmt)).tuples().all())

    async def list_counties(self, *, limit: int, cursor: str | None) -> tuple[list[County], str | None]:
        return await fetch_page(self.session, select(County), self.county_order, limit=limit, cursor=cursor)

    async def get_county(self, code: str) -> County | None:
        return await self.session.get(County, code)

    async def list_municipalities(
        self, *, county: str | None, q: str | None, limit: int, cursor: str | None
    ) -> tuple[list[Municipality], str | None]:
        stmt = select(Municipality)
        if county:
            stmt = stmt.where(Municipality.county_code == county)
        if q:
            stmt = stmt.where(contains_folded(Municipality.name, q))
        return await fetch_page(self.session, stmt, self.municipality_order, limit=limit, cursor=cursor)

    async def get_municipality(self, code: str) -> Municipality | None:
        return await self.session.get(Municipality, code)

    async def counties_by_code(self, codes: Iterable[str]) -> dict[str, County]:
        rows = await self.session.scalars(select(County).where(County.code.in_(list(codes))))
        return {c.code: c for c in rows}

    async def municipalities_by_code(self, codes: Iterable[str]) -> dict[str, Municipality]:
        rows = await self.session.scalars(select(Municipality).where(Municipality.code.in_(list(codes))))
        return {m.code: m for m in rows}

    async def upsert_counties(self, rows: Iterable[tuple[str, str, str]]) -> int:
        existing = {c.code: c for c in await self.session.scalars(select(County))}
        changed = 0
        for code, name, region in rows:
            county = existing.get(code)
            if county is None:
                self.session.add(County(code=code, name=name, police_region=region))
                changed += 1
            elif (county.name, county.police_region) != (name, region):
                county.name, county.police_region = name, region
                changed += 1
        await self.session.flush()
        return changed

    async def upsert_municipalities(self, rows: Iterable[tuple[str, str, str]]) -> int:
        existing = {m.code: m for m in await self.session.scalars(select(Municipality))}
        changed = 0
        for code, name, county_code in rows:
            municipality = existing.get(code)
            if municipality is None:
                self.session.add(Municipality(code=code, name=name, county_code=county_code))
                changed += 1
            elif (municipality.name, municipality.county_code) != (name, county_code):
                municipality.name, municipality.county_code = name, county_code
                changed += 1
        await self.session.flush()
        return changed
