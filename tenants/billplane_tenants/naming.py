"""Tenant slugs and the schema names derived from them.

Every identifier that reaches SQL as text (``CREATE SCHEMA``, ``DROP SCHEMA``) passes through
:func:`schema_for_slug` or :func:`validate_schema_name` first, so no SQL is ever built from an
unvalidated string.
"""

from __future__ import annotations

import re

SLUG_PATTERN = r"^[a-z][a-z0-9_]{1,39}$"
SCHEMA_PREFIX = "tenant_"
_SLUG_RE = re.compile(SLUG_PATTERN)
_SCHEMA_RE = re.compile(r"^tenant_[a-z][a-z0-9_]{1,39}$")

# A schema that never exists. Connections start with it as their search_path so a query that was
# not scoped to a tenant finds no tenant table and fails instead of reading someone's rows.
UNSCOPED_SEARCH_PATH = "billplane_no_tenant"


class InvalidSlugError(ValueError):
    """The slug does not match :data:`SLUG_PATTERN`."""


def validate_slug(slug: str) -> str:
    if not _SLUG_RE.fullmatch(slug):
        msg = f"slug must match {SLUG_PATTERN}: lowercase letter first, then 1-39 of a-z, 0-9, _"
        raise InvalidSlugError(msg)
    return slug


def schema_for_slug(slug: str) -> str:
    return SCHEMA_PREFIX + validate_slug(slug)


def validate_schema_name(schema: str) -> str:
    if not _SCHEMA_RE.fullmatch(schema):
        msg = f"not a tenant schema name: {schema!r}"
        raise ValueError(msg)
    return schema


def quoted_schema(schema: str) -> str:
    """The schema as a quoted SQL identifier; only tenant schema names are accepted."""
    return '"' + validate_schema_name(schema) + '"'
