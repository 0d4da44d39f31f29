"""Plain SQL that writes every row a billing run writes for one tenant: a reference for
``billing_run.py``, not the issue's ceiling.

The issue's ceiling inserts two rows per invoice (the invoice and its line). A run writes nine:
it also moves the subscription on, takes numbers from the counter row, records three events
(``subscription.updated``, ``invoice.created``, ``invoice.finalized``, as the API shows each
object) and queues the charge (a pending payment, its ``payment.created`` event and its
``payment.charge`` outbox row). This
writes the same rows, into the same tables, with raw asyncpg and no business logic, so that the
run's rate can also be read against what PostgreSQL takes for all of them here. The events'
text is the run's own (``EventTemplate``, read from one tenant after the run), so the JSON parsed
is the same size.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from billplane_tenants.naming import quoted_schema

# One statement for the rows besides the invoices and lines, as the run sends its own writes in
# few statements. The subscription rows get a new version with the values they have: the same
# heap and index work as the run's UPDATE, and the data the checks read afterwards stays as the
# run left it. The counter row is rewritten unchanged, as the run takes its numbers from it.
REST = (
    "WITH moved AS (UPDATE subscriptions SET current_period_start = current_period_start, "
    "current_period_end = current_period_end, updated_at = now() WHERE id = ANY($1::bigint[]) RETURNING 1), "
    "counted AS (INSERT INTO invoice_counters (id, last_number) VALUES (1, 0) "
    "ON CONFLICT (id) DO UPDATE SET last_number = invoice_counters.last_number RETURNING 1), "
    "e AS (INSERT INTO events (type, object_type, object_id, data) SELECT t, o, i, d::jsonb "
    "FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[]) AS u(t, o, i, d) RETURNING 1), "
    "p AS (INSERT INTO payments (customer_id, invoice_id, amount, currency, status, provider, "
    "provider_account_id, refunded_amount, metadata) SELECT c, i, a, 'USD', 'pending', 'sandbox', $9::bigint, 0, "
    '\'{"payment_method_id": "1"}\'::jsonb FROM unnest($6::bigint[], $7::bigint[], $8::bigint[]) AS u(c, i, a) '
    "RETURNING id, provider_account_id), "
    "o AS (INSERT INTO outbox (kind, object_id, provider_account_id) "
    "SELECT 'payment.charge', id, provider_account_id FROM p RETURNING 1), "
    # Each new payment's event, as the run writes it in its statement (its id is known only there).
    "pe AS (INSERT INTO events (type, object_type, object_id, data) "
    "SELECT 'payment.created', 'payment', id, $10::jsonb FROM p RETURNING 1) "
    "SELECT 1"
)


@dataclass(frozen=True)
class EventTemplate:
    """One event a run wrote: its type, the kind of object it is about, and its data as text."""

    type: str
    object_type: str
    data: str


async def event_templates(connection: asyncpg.Connection, schema: str) -> list[EventTemplate]:
    """The events the run wrote in ``schema`` (one tenant's), in their order."""
    events = f"{quoted_schema(schema)}.events"
    rows = await connection.fetch(f"SELECT type, object_type, data::text FROM {events} ORDER BY id")
    return [EventTemplate(row[0], row[1], row[2]) for row in rows]


async def write_every_row(
    connection: asyncpg.Connection,
    subscriptions: list[tuple[int, int, int]],
    invoice_ids: list[int],
    totals: list[int],
    templates: list[EventTemplate],
    *,
    account: int | None,
) -> None:
    """After the invoices and their lines (written by the caller, as the issue's ceiling writes
    them): the subscriptions' new versions, the counter row, the events (the templates' text, each
    about the next invoice or subscription in turn) and, with an ``account``, the pending payments,
    their events (the first payment template's text) and their outbox rows."""
    ids = [subscription for subscription, _, _ in subscriptions]
    about = {"invoice": invoice_ids, "subscription": ids}
    taken = dict.fromkeys(about, 0)
    objects = []
    payment = next((template.data for template in templates if template.object_type == "payment"), None)
    templates = [template for template in templates if template.object_type in about]
    for template in templates:
        objects.append(about[template.object_type][taken[template.object_type] % len(ids)])
        taken[template.object_type] += 1
    charged = account is not None  # without an account the run charges nothing either
    await connection.execute(
        REST,
        ids,
        [template.type for template in templates],
        [template.object_type for template in templates],
        objects,
        [template.data for template in templates],
        [customer for _, customer, _ in subscriptions] if charged else [],
        invoice_ids if charged else [],
        totals if charged else [],
        account,
        payment,
    )
