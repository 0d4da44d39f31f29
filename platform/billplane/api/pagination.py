"""Cursor pagination: keyset over a strictly increasing key, with an opaque cursor.

A keyset page never skips or repeats a row when rows are inserted between requests, unlike
OFFSET paging.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Generic, Protocol, TypeVar

import msgspec
from litestar.params import QueryParameter

from billplane.api.problems import InvalidFieldError
from billplane.db.mixins import MAX_ID

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
Limit = Annotated[int, QueryParameter(name="limit", ge=1, le=MAX_LIMIT, description="Page size, 1-100.")]
Cursor = Annotated[
    str | None, QueryParameter(name="cursor", description="`next_cursor` of the previous page; omit for the first.")
]


class Page(msgspec.Struct, Generic[T], kw_only=True):
    data: list[T]
    next_cursor: str | None = msgspec.field(default=None)


class _Cursor(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    after: Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]


def encode_cursor(after: int) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(_Cursor(after))).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return msgspec.json.decode(raw, type=_Cursor).after
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise InvalidFieldError("cursor", "not a cursor returned by this API", source="query") from exc


class _Keyed(Protocol):
    id: int


KeyedT = TypeVar("KeyedT", bound=_Keyed)


def page_of(rows: list[KeyedT], limit: int) -> tuple[list[KeyedT], str | None]:
    """Rows fetched as ``limit + 1``: the page, and a cursor only when the extra row came back."""
    if len(rows) > limit:
        return rows[:limit], encode_cursor(rows[limit - 1].id)
    return rows, None
