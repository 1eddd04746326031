"""Shared wire building blocks: base Structs and constrained types."""

from __future__ import annotations

from typing import Annotated

import msgspec


class Input(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every request body: unknown fields are an error, not silently dropped."""


class Output(msgspec.Struct, kw_only=True):
    """Base of every response body."""


CountyCode = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9]{2}$", description="Two-digit county code (länskod)")
]
MunicipalityCode = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9]{4}$", description="Four-digit municipality code (kommunkod)")
]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
ShortText = Annotated[str, msgspec.Meta(max_length=200)]
LongText = Annotated[str, msgspec.Meta(max_length=4000)]
Latitude = Annotated[float, msgspec.Meta(ge=-90, le=90)]
Longitude = Annotated[float, msgspec.Meta(ge=-180, le=180)]
