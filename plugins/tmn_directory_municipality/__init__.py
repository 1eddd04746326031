"""The `municipality` contact directory: the coordinators and local working-group convenors held
in TMN, only those who consented to be listed (`listed_in_directory`)."""

from __future__ import annotations

from service.pluginspec import Contact, DirectoryData, hookimpl

__version__ = "1.0.0"


@hookimpl
async def tmn_municipality_contacts(municipality_code: str, directory: DirectoryData) -> list[Contact]:
    return await directory.listed_people(municipality_code)
