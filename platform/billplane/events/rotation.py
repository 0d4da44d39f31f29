"""Re-sealing every webhook endpoint's signing secret under the current key (``billplane secrets rotate``).

The secrets live in each tenant's schema, so the work goes tenant by tenant: one read per batch
of schemas finds the endpoints still under another key (and counts those already current), then
each tenant's endpoints are re-sealed in batches, one transaction per batch with the rows locked.
A crash keeps the batches that committed and a rerun finds only what is left; an API request
that rotates an endpoint's secret meanwhile waits for the batch, and a row it already moved to
the current key is left alone. Suspended tenants are included: their endpoints must still open
once the old key is gone and the tenant is resumed. The secret itself never changes, so
receivers keep verifying with the secret they were given.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select

from billplane.db.tenant_scan import batches, ids_by_schema
from billplane.events.models import WebhookEndpoint
from billplane.events.vault import EndpointVault, SecretUnavailableError
from billplane_tenants import Database, Tenant
from billplane_tenants.naming import quoted_schema

BATCH_SIZE = 100
_TABLE = "webhook_endpoints"


@dataclass(slots=True)
class EndpointRotationReport:
    current_key_id: str
    # Endpoints re-sealed, by the key that had sealed them.
    rotated: Counter[str] = field(default_factory=Counter)
    # Endpoints already sealed under the current key when their tenant was reached.
    already_current: int = 0
    # (tenant slug, endpoint id, reason) for each endpoint whose secret could not be opened.
    failed: list[tuple[str, int, str]] = field(default_factory=list)
    # Slugs of the tenants whose endpoints could not be read at all: none of them was re-sealed.
    unread: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _TenantRef:
    id: int
    slug: str
    schema: str


async def _every_tenant(database: Database) -> list[_TenantRef]:
    async with database.control_session() as session:
        query = select(Tenant.id, Tenant.slug, Tenant.schema_name).order_by(Tenant.id)
        return [_TenantRef(int(row[0]), str(row[1]), str(row[2])) for row in (await session.execute(query)).all()]


def _under_other_keys(schema: str) -> str:
    return f"(SELECT '{schema}', id FROM {quoted_schema(schema)}.{_TABLE} WHERE secret_key_id <> :current ORDER BY id)"


def _count_current(schema: str) -> str:
    # The scan reads (schema, integer) pairs: here the integer is a count, not an id.
    return f"(SELECT '{schema}', count(*) FROM {quoted_schema(schema)}.{_TABLE} WHERE secret_key_id = :current)"


async def rotate_endpoints(
    database: Database,
    vault: EndpointVault,
    *,
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[int], None] | None = None,
) -> EndpointRotationReport:
    current = vault.box.current_key_id
    report = EndpointRotationReport(current)
    tenants = await _every_tenant(database)
    by_schema = {tenant.schema: tenant for tenant in tenants}
    params = {"current": current}
    unread: list[str] = []
    for group in batches([tenant.schema for tenant in tenants]):
        counts = await ids_by_schema(database, group, table=_TABLE, part=_count_current, params=params, failed=unread)
        report.already_current += sum(sum(values) for values in counts.values())
        waiting = await ids_by_schema(
            database, group, table=_TABLE, part=_under_other_keys, params=params, failed=unread
        )
        for schema in group:
            ids = waiting.get(schema, [])
            for start in range(0, len(ids), batch_size):
                chunk = ids[start : start + batch_size]
                await _reseal(database, vault, by_schema[schema], chunk, report)
                if on_batch is not None:
                    on_batch(len(chunk))
    report.unread = sorted({by_schema[schema].slug for schema in unread})
    return report


async def _reseal(
    database: Database, vault: EndpointVault, tenant: _TenantRef, ids: list[int], report: EndpointRotationReport
) -> None:
    current = vault.box.current_key_id
    async with database.tenant_session(tenant.schema) as session:
        query = (
            select(WebhookEndpoint)
            .where(WebhookEndpoint.id.in_(ids), WebhookEndpoint.secret_key_id != current)
            .order_by(WebhookEndpoint.id)
            # NO KEY UPDATE: the fan-outs' KEY SHARE locks neither wait for a rotation nor hold it.
            .with_for_update(key_share=True)
        )
        for endpoint in (await session.scalars(query)).all():
            old_key_id = endpoint.secret_key_id
            try:
                secret = vault.open(tenant.id, endpoint.id, old_key_id, endpoint.secret_ciphertext)
            except SecretUnavailableError as exc:
                report.failed.append((tenant.slug, endpoint.id, str(exc)))
                continue
            vault.seal_into(endpoint, tenant.id, secret)
            report.rotated[old_key_id] += 1
