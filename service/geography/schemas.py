from __future__ import annotations

from service.schemas import Output


class County(Output):
    code: str
    name: str
    police_region: str
    municipality_count: int


class Municipality(Output):
    code: str
    name: str
    county_code: str
    county_name: str
    police_region: str
