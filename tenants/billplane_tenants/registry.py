"""Tenants and their API keys, stored in the control schema.

The clear API key exists only in the value returned by :meth:`TenantRegistry.issue_key`; the
database keeps a display prefix and a peppered HMAC digest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billplane_tenants.announcements import announce_change
from billplane_tenants.control import ApiKey, Tenant
from billplane_tenants.keys import display_prefix, key_digest, new_key
from billplane_tenants.naming import schema_for_slug
from billplane_tenants.provisioning import SchemaExistsError, SchemaProvisioner

_MAX_ID = 2**63 - 1  # api_keys.id is a BIGINT


class TenantExistsError(Exception):
    """A tenant (or a schema) with this slug already exists."""


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A freshly issued API key: the only object that ever holds the clear key."""

    id: int
    prefix: str
    key: str
    created_at: datetime
    scopes: tuple[str, ...] = ("*",)


@dataclass(frozen=True, slots=True)
class KeyPrincipal:
    """Who an API key belongs to, as the request pipeline needs it."""

    key_id: int
    tenant_id: int
    slug: str
    schema_name: str
    status: str
    # The tenant's request-rate override (per second, burst); None: the caller's default.
    rate_limit: tuple[int, int] | None = None
    scopes: tuple[str, ...] = ("*",)  # what the key may do (billplane.api.scopes)


class TenantRegistry:
    def __init__(self, provisioner: SchemaProvisioner, pepper: bytes) -> None:
        self.provisioner = provisioner
        self._pepper = pepper

    async def create(self, session: AsyncSession, slug: str, name: str) -> tuple[Tenant, IssuedKey]:
        """Create the tenant row, its schema at head and its first key, in the caller's transaction."""
        schema = schema_for_slug(slug)
        tenant = Tenant(slug=slug, name=name, schema_name=schema)
        try:
            # Added inside the savepoint: if it rolls back, the row leaves the session too, so a
            # caller that catches the error and commits cannot insert a tenant without a schema.
            async with session.begin_nested():
                session.add(tenant)
                await session.flush()
                connection = await session.connection()
                tenant.schema_revision = await self.provisioner.create_schema(connection, schema)
                tenant.migration_status = "ok"
                tenant.migrated_at = datetime.now(UTC)
        except IntegrityError as exc:
            raise TenantExistsError(f"a tenant with slug {slug!r} already exists") from exc
        except SchemaExistsError as exc:
            raise TenantExistsError(str(exc)) from exc
        await session.flush()
        await session.refresh(tenant)
        return tenant, await self.issue_key(session, tenant)

    async def get(self, session: AsyncSession, slug: str) -> Tenant | None:
        result = await session.execute(select(Tenant).where(Tenant.slug == slug))
        return result.scalar_one_or_none()

    async def page(self, session: AsyncSession, *, after_id: int | None, limit: int) -> list[Tenant]:
        """Tenants in id order after ``after_id`` (keyset pagination: stable under inserts)."""
        query = select(Tenant).order_by(Tenant.id).limit(limit)
        if after_id is not None:
            query = query.where(Tenant.id > after_id)
        return list((await session.execute(query)).scalars())

    async def all(self, session: AsyncSession) -> list[Tenant]:
        return list((await session.execute(select(Tenant).order_by(Tenant.id))).scalars())

    async def set_status(self, session: AsyncSession, tenant: Tenant, status: str) -> Tenant:
        tenant.status = status
        await announce_change(session, tenant.id)
        await session.flush()
        await session.refresh(tenant)
        return tenant

    async def set_rate_limit(self, session: AsyncSession, tenant: Tenant, limit: tuple[int, int] | None) -> Tenant:
        """Set (per second, burst) or clear (None) the override; processes hear of it on commit."""
        tenant.rate_limit_per_second, tenant.rate_limit_burst = limit if limit is not None else (None, None)
        await announce_change(session, tenant.id)  # cached principals carry the old limit
        await session.flush()
        await session.refresh(tenant)
        return tenant

    async def delete(self, session: AsyncSession, tenant: Tenant) -> None:
        """Drop the tenant's schema and its control rows, in the caller's transaction.

        The tenant's row is locked first: work queued for the tenant holds it (KEY SHARE) in each
        of its transactions, so the deletion waits for those running, and any that begin after
        it find the tenant gone, even once a new tenant has its slug and so its schema's name.
        """
        await session.execute(select(Tenant.id).where(Tenant.id == tenant.id).with_for_update())
        await self.provisioner.drop_schema(await session.connection(), tenant.schema_name)
        await announce_change(session, tenant.id)
        await session.delete(tenant)
        await session.flush()

    async def issue_key(self, session: AsyncSession, tenant: Tenant, scopes: Sequence[str] = ("*",)) -> IssuedKey:
        """A new key for ``tenant`` with ``scopes`` (checked by the caller)."""
        key = new_key()
        row = ApiKey(
            tenant_id=tenant.id, prefix=display_prefix(key), digest=key_digest(self._pepper, key), scopes=list(scopes)
        )
        session.add(row)
        await session.flush()
        await session.refresh(row)
        return IssuedKey(id=row.id, prefix=row.prefix, key=key, created_at=row.created_at, scopes=tuple(row.scopes))

    async def keys(self, session: AsyncSession, tenant: Tenant, *, after_id: int | None, limit: int) -> list[ApiKey]:
        """``tenant``'s keys in id order after ``after_id`` (keyset pagination, as ``page``)."""
        query = select(ApiKey).where(ApiKey.tenant_id == tenant.id).order_by(ApiKey.id).limit(limit)
        if after_id is not None:
            query = query.where(ApiKey.id > after_id)
        return list((await session.execute(query)).scalars())

    async def revoke_key(self, session: AsyncSession, tenant: Tenant, key_id: int) -> ApiKey | None:
        """Revoke one of ``tenant``'s keys; a key of another tenant is treated as unknown, and so is
        an id no BIGINT can hold."""
        if not 1 <= key_id <= _MAX_ID:
            return None
        result = await session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.tenant_id == tenant.id)
            .values(revoked_at=func.coalesce(ApiKey.revoked_at, func.now()))
            .returning(ApiKey)
        )
        revoked = result.scalar_one_or_none()
        if revoked is not None:
            await announce_change(session, tenant.id)
        return revoked

    async def resolve_key(self, session: AsyncSession, key: str) -> KeyPrincipal | None:
        """The live key's owner, or None for an unknown or revoked key."""
        query = (
            select(
                ApiKey.id,
                Tenant.id,
                Tenant.slug,
                Tenant.schema_name,
                Tenant.status,
                Tenant.rate_limit_per_second,
                Tenant.rate_limit_burst,
                ApiKey.scopes,
            )
            .join(Tenant, Tenant.id == ApiKey.tenant_id)
            .where(ApiKey.digest == key_digest(self._pepper, key), ApiKey.revoked_at.is_(None))
        )
        row = (await session.execute(query)).one_or_none()
        if row is None:
            return None
        per_second, burst = row[5], row[6]
        return KeyPrincipal(
            key_id=row[0],
            tenant_id=row[1],
            slug=row[2],
            schema_name=row[3],
            status=row[4],
            rate_limit=None if per_second is None or burst is None else (per_second, burst),
            scopes=tuple(row[7]),
        )
