"""Cursor (keyset) pagination shared by every collection.

A page is ordered by a fixed tuple of columns ending in a unique one, so the order is
stable while rows are added. The cursor is the last row's key, opaque to clients
(base64url JSON) and bound to the ordering it was made for.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

import msgspec
from sqlalchemy import Select, bindparam, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_scoped_session
from sqlalchemy.orm import QueryableAttribute

from service.problems import invalid

T = TypeVar("T")
MAX_LIMIT = 200


class Page(msgspec.Struct, Generic[T]):
    """One page of a collection. `next_cursor` is null on the last page."""

    items: list[T]
    limit: int
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Ordering:
    """A named keyset ordering: the columns, and how to read each key back from a row."""

    name: str
    columns: tuple[QueryableAttribute[Any], ...]
    attributes: tuple[str, ...]
    descending: bool = False


def encode_cursor(ordering: Ordering, values: Sequence[Any]) -> str:
    payload = [ordering.name, [_plain(v) for v in values]]
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _plain(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def decode_cursor(ordering: Ordering, cursor: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, values = json.loads(raw)
    except (ValueError, binascii.Error, TypeError, UnicodeDecodeError) as exc:
        raise invalid("cursor", "not a cursor returned by this API", "query") from exc
    if name != ordering.name or not isinstance(values, list) or len(values) != len(ordering.columns):
        raise invalid("cursor", "cursor belongs to another ordering or collection", "query")
    out: list[Any] = []
    for column, value in zip(ordering.columns, values, strict=True):
        python_type = _python_type(column)
        try:
            if value is None:
                out.append(value)
            elif python_type is UUID:
                out.append(UUID(value))
            elif python_type is datetime:
                out.append(datetime.fromisoformat(value))
            else:
                out.append(value)
        except (ValueError, TypeError, AttributeError) as exc:
            raise invalid("cursor", "not a cursor returned by this API", "query") from exc
    return out


def _python_type(column: QueryableAttribute[Any]) -> type | None:
    try:
        python_type: type = column.type.python_type
    except NotImplementedError:
        return None
    return python_type


async def fetch_page(
    session: AsyncSession | async_scoped_session[AsyncSession],
    stmt: Select[Any],
    ordering: Ordering,
    *,
    limit: int,
    cursor: str | None,
    scalars: bool = True,
) -> tuple[list[Any], str | None]:
    """Run `stmt` for one page; returns the rows and the next cursor.

    With `scalars` the rows are the first column's objects; otherwise whole tuples, whose
    first element carries the ordering's attributes.
    """
    if cursor:
        after = decode_cursor(ordering, cursor)
        # Bind each key with its column's type, so UUIDs compare as the column stores them.
        bound = [
            bindparam(None, value, type_=col.type) for col, value in zip(ordering.columns, after, strict=True)
        ]
        after_cursor = tuple_(*ordering.columns) > tuple_(*bound)
        if ordering.descending:
            after_cursor = tuple_(*ordering.columns) < tuple_(*bound)
        stmt = stmt.where(after_cursor)
    order = [c.desc() for c in ordering.columns] if ordering.descending else list(ordering.columns)
    stmt = stmt.order_by(*order).limit(limit + 1)
    result = await session.execute(stmt)
    rows: list[Any] = list(result.scalars() if scalars else result.tuples())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1] if scalars else rows[-1][0]
        next_cursor = encode_cursor(ordering, [getattr(last, a) for a in ordering.attributes])
    return rows, next_cursor
