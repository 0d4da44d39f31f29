"""Field types shared by request and response schemas (validated by msgspec at the edge)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar.enums import RequestEncodingType
from litestar.openapi.spec import Example
from litestar.params import BodyKwarg

from billplane.api.pattern_words import worded
from billplane.api.problems import InvalidFieldError
from billplane.money.currencies import UnknownCurrencyError, normalize_currency

# Metadata: free-form string pairs the tenant attaches to an object (Stripe's limits).
MetadataKey = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
MetadataValue = Annotated[str, msgspec.Meta(max_length=500)]
Metadata = Annotated[
    dict[MetadataKey, MetadataValue],
    msgspec.Meta(
        max_length=50,
        description="Up to 50 string pairs; keys up to 40 characters, values up to 500. Replaced whole on update.",
        examples=[{"crm_id": "A-1042"}],
    ),
]

# Minor units (cents for USD, yen for JPY, fils for KWD): an integer, never a float.
Amount = Annotated[int, msgspec.Meta(ge=0, le=999_999_999_999, description="Integer minor units.", examples=[1999])]
CurrencyCode = Annotated[
    str,
    msgspec.Meta(
        pattern=worded("^[A-Za-z]{3}$", "must be a three-letter ISO 4217 currency code, such as USD"),
        description="ISO 4217 code, any case; stored upper-case.",
        examples=["USD"],
    ),
]
Email = Annotated[
    str,
    msgspec.Meta(
        max_length=320,
        pattern=worded(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "must be an email address, such as ada@example.com"),
        examples=["ada@example.com"],
    ),
]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
LongText = Annotated[str, msgspec.Meta(max_length=5000)]


class Patch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A PATCH body: fields left out stay as they are (UNSET); `null` clears a nullable field."""

    def changes(self) -> dict[str, Any]:
        values = {field: getattr(self, field) for field in self.__struct_fields__}
        return {field: value for field, value in values.items() if value is not msgspec.UNSET}


# The times a client may send: billing's own calendar, with room on both sides. Outside it a time
# overflows on its way to PostgreSQL (year 1 with an offset east of UTC) or in period arithmetic
# (a test clock in year 9999), which was a 500.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def checked_time(value: datetime, field: str, *, source: str = "body") -> datetime:
    """``value`` if it carries a time zone and falls between 1970 and 2200, else a 422 naming ``field``."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidFieldError(field, "must carry a time zone offset (2030-01-01T00:00:00Z)", source=source)
    if not EARLIEST <= value < LATEST:
        raise InvalidFieldError(field, "must fall between 1970-01-01 and 2200-01-01", source=source)
    return value


def checked_query_times(**times: datetime | None) -> None:
    """``checked_time`` for each query parameter given (None: not sent), named by its keyword."""
    for name, value in times.items():
        if value is not None:
            checked_time(value, name, source="query")


def checked_currency(code: str, field: str = "currency") -> str:
    """The upper-case code if it is an active ISO 4217 currency, else a 422 naming ``field``."""
    try:
        return normalize_currency(code)
    except UnknownCurrencyError as exc:
        raise InvalidFieldError(field, str(exc)) from exc


def example_body(summary: str, value: dict[str, Any]) -> BodyKwarg:
    """A JSON body marker carrying one whole example, shown on the interactive API page."""
    return BodyKwarg(media_type=RequestEncodingType.JSON, examples=[Example(summary=summary, value=value)])
