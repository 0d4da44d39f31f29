"""The last write of a billing run's tenant: its events and its charges, in one statement.

Events are numbered in the order given (webhooks are delivered per object in event order), their
deliveries queued as ``billplane.events.emit.emit`` queues one; a tenant without an enabled
endpoint (``Locked.endpoints``) gets the statement without the fan-out. Each charge is a pending
payment, its ``payment.created`` event (numbered after the run's events) and its
``payment.charge`` outbox row. What the workers must hear of (the charges, for the
outbox listener, which defers the charge jobs; the deliveries, for the webhook deliverers) is
returned, to be announced by the caller (``announcing``), so a run does no queue work of its own
(deferring a job per charge from the run cost more than the rest of billing once it fell behind;
docs/performance.md, "Billing runs").

Only a tenant whose run resumed mirrored subscriptions (``cycle.Outcome.resumed``) gets one
statement more, just before that one: for each, its ``subscription.resume`` outbox row for its
account, as ``OutboxRepository.add`` writes one (the rest of the row is the columns' defaults),
and its ``sync_status`` ``pending``, as ``SyncService.subscription_changed`` does for
``POST .../resume``. The workers hear of the rows as of the charges (``announcing``).
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import literal_column
from sqlalchemy.dialects import postgresql

from billplane.billing.announcing import Announcement
from billplane.billing.collection import Charge
from billplane.billing.cycle import Event
from billplane.customers.repository import json_time
from billplane.events.emit import ENABLED_ENDPOINTS, WEBHOOKS_CHANNEL
from billplane.events.types import MATCHES_SQL
from billplane.payments.operations import PAYMENT_METHOD_KEY
from billplane.sync.channel import OUTBOX_CHANNEL, notify_payload

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call] # SQLAlchemy's dialects are untyped


def _time(column: str) -> str:
    """SQL for a ``timestamptz`` as the API writes it: ``customers.repository.json_time``'s, so
    that the format has one definition."""
    return str(json_time(literal_column(column)).compile(dialect=_DIALECT, compile_kwargs={"literal_binds": True}))


# A new payment as ``GET /v1/payments/{id}`` shows it (``payments.schemas.Payment``): the data of
# its ``payment.created`` event, built here because its id exists only inside the statement (a
# test compares the two). A new payment has no refunds.
_CREATED_PAYMENT = (
    "jsonb_build_object('id', id, 'customer_id', customer_id, 'invoice_id', invoice_id, 'amount', amount, "
    "'currency', currency, 'status', status, 'provider', provider, 'provider_payment_id', provider_payment_id, "
    "'failure_code', failure_code, 'failure_message', failure_message, 'refunded_amount', refunded_amount, "
    f"'action_required', action_required, 'refunds', '[]'::jsonb, 'metadata', metadata, "
    f"'created_at', {_time('created_at')}, "
    f"'updated_at', {_time('updated_at')})"
)
_CHARGES = (
    "WITH p AS (INSERT INTO payments (customer_id, invoice_id, amount, currency, status, provider, "
    "provider_account_id, refunded_amount, metadata) SELECT c, i, a, cur, 'pending', p, pa, 0, m::jsonb "
    "FROM unnest($5::bigint[], $6::bigint[], $7::bigint[], $8::text[], $9::text[], $10::bigint[], $11::text[]) "
    "WITH ORDINALITY AS u(c, i, a, cur, p, pa, m, n) ORDER BY n RETURNING id, customer_id, invoice_id, amount, "
    "currency, status, provider, provider_account_id, provider_payment_id, failure_code, failure_message, "
    "refunded_amount, action_required, metadata, created_at, updated_at), "
    "o AS (INSERT INTO outbox (kind, object_id, provider_account_id) "
    "SELECT 'payment.charge', id, provider_account_id FROM p ORDER BY id RETURNING 1), "
)
# The run's events in the order given, then each new payment's ``payment.created`` (after its
# invoice's ``invoice.finalized``), in one insert so that one fan-out queues them all.
_EVENTS = (
    "e AS (INSERT INTO events (type, object_type, object_id, data) SELECT t, o, i, d FROM ("
    "SELECT 0, n, t, o, i, d::jsonb FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[]) "
    "WITH ORDINALITY AS u(t, o, i, d, n) "
    f"UNION ALL SELECT 1, id, 'payment.created', 'payment', id, {_CREATED_PAYMENT} FROM p"
    ") AS every_event(k, n, t, o, i, d) ORDER BY k, n RETURNING id, type), "
)
# The endpoints as emit reads them (ENABLED_ENDPOINTS: locked once, an endpoint deleted meanwhile skipped).
_FAN_OUT = (
    f"{ENABLED_ENDPOINTS}, queued AS (INSERT INTO webhook_deliveries (endpoint_id, event_id) "
    f"SELECT w.id, e.id FROM e JOIN w ON {MATCHES_SQL} ORDER BY e.id "
    "RETURNING 1) "
)
# A tenant without an enabled endpoint has nothing to fan out to: the statement then leaves
# webhook_deliveries (and its indexes) alone, which every tenant's transaction opened before.
_NO_FAN_OUT = "queued AS (SELECT FROM e WHERE false) "
_RESULT = "SELECT EXISTS (SELECT FROM queued), EXISTS (SELECT FROM o)"
_RECORD = {True: _CHARGES + _EVENTS + _FAN_OUT + _RESULT, False: _CHARGES + _EVENTS + _NO_FAN_OUT + _RESULT}
# The rows in the order given (subscription id order), as the request path would have added them.
_RESUMES = (
    "WITH s AS (UPDATE subscriptions AS s SET sync_status = 'pending' "
    "FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS r(id, account, n) WHERE s.id = r.id "
    "RETURNING r.id, r.account, r.n), "
    "o AS (INSERT INTO outbox (kind, object_id, provider_account_id) "
    "SELECT 'subscription.resume', s.id, s.account FROM s ORDER BY s.n RETURNING 1) "
    "SELECT EXISTS (SELECT FROM o)"
)
_encode = msgspec.json.Encoder().encode  # the text ``emit`` stores (msgspec.to_builtins, then JSON)


async def record(
    driver: Any,
    events: list[Event],
    charges: list[Charge],
    tenant: tuple[int, str],
    *,
    endpoints: bool,
    resumed: list[tuple[int, int]],
) -> list[Announcement]:
    """Write ``events`` and ``charges`` in the caller's transaction (on its driver connection),
    with the events' webhook deliveries when the tenant has an enabled endpoint (``endpoints``),
    and the ``subscription.resume`` outbox rows of the mirrored subscriptions ``resumed``
    ((subscription id, account id); their events show them ``pending`` already); returns what to
    announce once it has committed."""
    outbox = [(OUTBOX_CHANNEL, notify_payload(*tenant))]
    resuming = await _resumes(driver, resumed)
    if not events and not charges:
        return outbox if resuming else []
    queued, charged = await driver.fetchrow(
        _RECORD[endpoints],
        [event.type for event in events],
        [event.object_type for event in events],
        [event.object_id for event in events],
        [_encode(event.data).decode() for event in events],
        [charge.invoice.customer_id for charge in charges],
        [charge.invoice.id for charge in charges],
        [charge.invoice.amount_due for charge in charges],
        [charge.invoice.currency for charge in charges],
        [charge.provider for charge in charges],
        [charge.account_id for charge in charges],
        [_encode({PAYMENT_METHOD_KEY: str(charge.method_id)}).decode() for charge in charges],
    )
    announcements = [(WEBHOOKS_CHANNEL, tenant[1])] if queued else []  # the deliverers' payload: the schema
    return announcements + (outbox if charged or resuming else [])


async def _resumes(driver: Any, resumed: list[tuple[int, int]]) -> bool:
    """Queue the ``subscription.resume`` rows of ``resumed`` (none: no statement); whether any was."""
    if not resumed:
        return False
    written = await driver.fetchval(_RESUMES, [id_ for id_, _ in resumed], [account for _, account in resumed])
    return bool(written)
