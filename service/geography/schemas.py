from __future__ import annotations

from service.pagination import Page
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


class CountyPage(Page[County]):
    """A page of countys; `next_cursor` is null on the last page."""

    # Named again: the OpenAPI generator does not resolve the generic base.
    items: list[County]


class MunicipalityPage(Page[Municipality]):
    """A page of municipalitys; `next_cursor` is null on the last page."""

    # Named again: the OpenAPI generator does not resolve the generic base.
    items: list[Municipality]
