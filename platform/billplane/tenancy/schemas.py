"""API shapes for tenants and their keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from billplane.api.pattern_words import worded
from billplane.api.types import Patch, example_body
from billplane_tenants import SLUG_PATTERN, ApiKey, IssuedKey, Tenant

Slug = Annotated[
    str,
    msgspec.Meta(
        pattern=worded(
            SLUG_PATTERN, "must be a lowercase letter, then 1-39 of a-z, 0-9 and _ (no capitals or hyphens)"
        ),
        description="Lowercase letter, then 1-39 of a-z, 0-9 and _. Names the tenant's schema; cannot change.",
        examples=["acme"],
    ),
]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, examples=["Acme Inc."])]


class TenantCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    slug: Slug
    name: Name


MAX_RATE = 1_000_000  # far above what one process serves; a typo guard, not a policy
PerSecond = Annotated[
    int,
    msgspec.Meta(
        ge=0, le=MAX_RATE, description="Requests a second on average, per API process; 0: unlimited.", examples=[50]
    ),
]
Burst = Annotated[
    int,
    msgspec.Meta(
        ge=1,
        le=MAX_RATE,
        description="Requests admitted at once after a quiet spell; default twice `per_second`.",
        examples=[100],
    ),
]


class RateLimit(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A tenant's request-rate limit: a token bucket of ``burst`` refilled at ``per_second``."""

    per_second: PerSecond
    burst: Burst | None = None

    def pair(self) -> tuple[int, int]:
        return self.per_second, self.burst if self.burst is not None else max(1, 2 * self.per_second)


class TenantUpdate(Patch):
    # `null` returns the tenant to the default of the API processes (BILLPLANE_RATE_LIMIT_*).
    rate_limit: RateLimit | msgspec.UnsetType | None = msgspec.UNSET


class RateLimitOut(msgspec.Struct, kw_only=True):
    per_second: int
    burst: int


class TenantOut(msgspec.Struct, kw_only=True):
    id: int
    slug: str
    name: str
    status: str
    created_at: datetime
    updated_at: datetime
    schema_revision: str | None
    migration_status: str | None
    migration_error: str | None
    # The operator's override; null: the API processes' default applies.
    rate_limit: RateLimitOut | None

    @classmethod
    def of(cls, tenant: Tenant) -> TenantOut:
        per_second, burst = tenant.rate_limit_per_second, tenant.rate_limit_burst
        rate_limit = None if per_second is None or burst is None else RateLimitOut(per_second=per_second, burst=burst)
        return cls(
            id=tenant.id,
            slug=tenant.slug,
            name=tenant.name,
            status=tenant.status,
            created_at=tenant.created_at,
            updated_at=tenant.updated_at,
            schema_revision=tenant.schema_revision,
            migration_status=tenant.migration_status,
            migration_error=tenant.migration_error,
            rate_limit=rate_limit,
        )


MAX_SCOPES = 64  # more than every resource's read and write scopes together


class ApiKeyCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # What the key may do: "*" (everything, the default), "read" (every read), or per resource
    # "customers:read", "invoices:write", ... (write covers reads); see docs/reference/api.md.
    scopes: Annotated[list[str], msgspec.Meta(min_length=1, max_length=MAX_SCOPES)] = msgspec.field(
        default_factory=lambda: ["*"]
    )


ApiKeyCreateBody = Annotated[
    ApiKeyCreate | None, example_body("A key that only reports usage", {"scopes": ["usage-records:write"]})
]


class ApiKeyOut(msgspec.Struct, kw_only=True):
    id: int
    prefix: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        return cls(
            id=key.id, prefix=key.prefix, scopes=list(key.scopes), created_at=key.created_at, revoked_at=key.revoked_at
        )


class IssuedKeyOut(msgspec.Struct, kw_only=True):
    """A new key. ``key`` is shown this once and never stored: keep it now."""

    id: int
    prefix: str
    key: str
    scopes: list[str]
    created_at: datetime

    @classmethod
    def of(cls, issued: IssuedKey) -> IssuedKeyOut:
        return cls(
            id=issued.id, prefix=issued.prefix, key=issued.key, scopes=list(issued.scopes), created_at=issued.created_at
        )


class TenantCreated(msgspec.Struct, kw_only=True):
    tenant: TenantOut
    api_key: IssuedKeyOut


class CurrentTenant(msgspec.Struct, kw_only=True):
    """The tenant that owns the calling API key."""

    id: int
    slug: str
    name: str
    status: str
    created_at: datetime


TenantCreateBody = Annotated[TenantCreate, example_body("A new tenant", {"slug": "acme", "name": "Acme Inc."})]
TenantUpdateBody = Annotated[
    TenantUpdate, example_body("Limit the tenant's request rate", {"rate_limit": {"per_second": 50, "burst": 100}})
]
