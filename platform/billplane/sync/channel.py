"""The notification that tells workers a tenant has new outbox rows.

A statement that queues outbox rows also sends ``pg_notify(OUTBOX_CHANNEL, '<tenant id>:<schema>')``.
NOTIFY is transactional: PostgreSQL delivers it at commit and drops it on rollback, so a worker
never hears of rows it cannot see yet, and the API process does no queue work of its own.
"""

from __future__ import annotations

from billplane_tenants.naming import validate_schema_name

OUTBOX_CHANNEL = "billplane_outbox"
# A test clock was asked to advance (payload: the tenant id, informative only): the listener
# queues the clocks job at once instead of leaving the advance to the next periodic tick.
CLOCKS_CHANNEL = "billplane_test_clocks"


def notify_payload(tenant_id: int, schema: str) -> str:
    return f"{int(tenant_id)}:{validate_schema_name(schema)}"


def parse_notify_payload(payload: str) -> tuple[int, str] | None:
    """(tenant id, schema) from a payload, or None if it is not one of ours.

    Anyone connected to the database as billplane's role can notify this channel: the schema
    name is validated here and the pair is checked against the tenants table before use.
    """
    tenant, _, schema = payload.partition(":")
    try:
        return int(tenant), validate_schema_name(schema)
    except ValueError:
        return None
