"""Applying stored provider events to local state, in a job, each exactly once.

Events of one object can arrive in any order and more than once. Each event row is applied under
a row lock and only while ``received``. Every event is kept: one that changes nothing (stale, an
object billplane does not know, a type it does not act on) is marked ``ignored`` with the reason,
which ``GET /v1/provider-events`` shows the tenant.

An event that cannot be applied yet (billplane's own change to its subscription is still queued
for the provider, the payment it refunds is still pending) is deferred: it stays ``received``, and
the sweep applies it again. An event the database refuses whatever the attempt (a value it cannot
hold, a check it fails) is ignored, naming what refused it. A unique violation is how two events
racing to record the same invoice, payment or refund resolve: the loser stays ``received`` to be
applied again. Neither waits longer than ``WAIT_LIMIT`` (then it is ignored, with its reason):
left ``received``, the sweep would re-apply it every minute for ever, and a tenant's oldest 100
such events would keep every newer one from being applied.

An ignored event is applied again only on request, once its cause is gone
(``billplane.webhooks.service.reapply``): it is ``received`` again, and its wait counts from then.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec
from sqlalchemy.exc import DBAPIError

from billplane.db.job_owner import TenantGoneError, owned_session
from billplane.plugins.contract import ProviderEvent
from billplane.subscriptions.catching_up import CatchUp
from billplane.sync.refs import EventRef
from billplane.webhooks import method_events, money_events, object_events
from billplane.webhooks.models import StoredEvent
from billplane.webhooks.object_events import Applier, Outcome
from billplane.webhooks.repository import EventRepository
from billplane_tenants import Database

logger = logging.getLogger("billplane.webhooks")

# How long an event may wait (deferred, or a unique violation applied again): past it, what it
# waits for is taken not to come (a row stuck pending, a payment never settled, a violation that
# is no race, such as one provider refund id at two accounts of one tenant).
WAIT_LIMIT = timedelta(days=1)
UNIQUE_VIOLATION = "23505"
# PostgreSQL's names of the SQLSTATEs of classes 22 (data exception) and 23 (integrity constraint
# violation) an event's data is likeliest to cause; any other is named by its code alone.
_CONDITIONS = {
    "22000": "data_exception",
    "22001": "string_data_right_truncation",
    "22003": "numeric_value_out_of_range",
    "22004": "null_value_not_allowed",
    "22007": "invalid_datetime_format",
    "22008": "datetime_field_overflow",
    "22012": "division_by_zero",
    "22021": "character_not_in_repertoire",
    "22023": "invalid_parameter_value",
    "22P02": "invalid_text_representation",
    "22P05": "untranslatable_character",
    "23000": "integrity_constraint_violation",
    "23001": "restrict_violation",
    "23502": "not_null_violation",
    "23503": "foreign_key_violation",
    "23505": "unique_violation",
    "23514": "check_violation",
    "23P01": "exclusion_violation",
}

APPLIERS: dict[str, Applier] = {
    "subscription.updated": object_events.subscription_changed,
    "subscription.canceled": object_events.subscription_changed,
    "customer.created": object_events.customer_written_at_provider,
    "customer.updated": object_events.customer_written_at_provider,
    "customer.deleted": object_events.customer_deleted,
    "invoice.finalized": money_events.invoice_changed,
    "invoice.paid": money_events.invoice_changed,
    "invoice.payment_failed": money_events.invoice_changed,
    "invoice.voided": money_events.invoice_changed,
    "invoice.marked_uncollectible": money_events.invoice_changed,
    "payment.succeeded": money_events.payment_settled,
    "payment.failed": money_events.payment_settled,
    "refund.updated": money_events.refund_changed,
    "payment_method.attached": method_events.method_attached,
    "payment_method.updated": method_events.method_updated,
    "payment_method.detached": method_events.method_detached,
}


async def _not_handled(_events: EventRepository, row: StoredEvent, _event: ProviderEvent) -> Outcome:
    return "ignored", f"billplane does not act on {row.type} events"


def refusal(exc: DBAPIError) -> tuple[str, str] | None:
    """(SQLSTATE, words) of what in the database refuses the event's data, named without any of
    its values (they may be a customer's personal data); None for an error outside classes 22 and
    23, which may pass: a lost connection, a deadlock, anything else."""
    cause = exc.orig.__cause__ if exc.orig is not None else None  # asyncpg's own error, under SQLAlchemy's
    code = _said(exc.orig, "sqlstate") or _said(cause, "sqlstate")
    if code is None or code[:2] not in {"22", "23"}:
        return None
    name = _CONDITIONS.get(code)
    words = f"{name} (SQLSTATE {code})" if name else f"SQLSTATE {code}"
    # Names of the schema's objects, never of data: asyncpg reports them apart from its message.
    constraint, column, table = (_said(cause, field) for field in ("constraint_name", "column_name", "table_name"))
    where = f"constraint {constraint}" if constraint else f"column {column}" if column else None
    if table is not None:
        where = f"{where} of table {table}" if where else f"table {table}"
    return code, f"{words}, {where}" if where else words


def _said(error: BaseException | None, attribute: str) -> str | None:
    value = getattr(error, attribute, None)
    return value if isinstance(value, str) and value else None


@dataclass(slots=True)
class EventApplier:
    database: Database
    # Providers that bill the subscriptions they hold (ProviderPlugin.bills_subscriptions): their
    # events set a subscription's period; others' do not (``provider_state``).
    provider_billed: frozenset[str] = frozenset()
    # Whether the process resolves provider accounts, as the billing run's ``defaults``.
    defaults: bool = False

    async def apply(self, ref: EventRef) -> str:
        """Apply one stored event; returns applied, ignored, deferred (left ``received``, for the
        sweep to apply again) or skipped (already handled). A database error that applying again
        would meet again ignores the event (``refusal``), and so does a unique violation once the
        event is ``WAIT_LIMIT`` old; any other error is raised, and the event stays ``received``,
        for the sweep to apply it again."""
        try:
            return await self._apply_or_refuse(ref)
        except TenantGoneError:
            logger.warning(
                "provider event job %s of %s dropped: tenant %s is gone", ref.event_id, ref.schema, ref.tenant_id
            )
            return "skipped"

    async def _apply_or_refuse(self, ref: EventRef) -> str:
        try:
            return await self._apply(ref)
        except DBAPIError as exc:
            refused = refusal(exc)
            if refused is None:
                raise
            error = exc
        # Outside the handler: the failed transaction, and all the event's work, is rolled back.
        code, words = refused
        # A unique violation is a race lost, as a rule: applied again, the event finds the winner's row.
        race = code == UNIQUE_VIOLATION
        detail = f"could not be applied in a day of attempts: {words}" if race else f"could not be applied: {words}"
        outcome = await self._refused(ref, detail, waited=race)
        if outcome is None:
            raise error
        return outcome

    async def _apply(self, ref: EventRef) -> str:
        async with owned_session(self.database, ref.tenant_id, ref.schema) as session:
            terms = CatchUp((ref.tenant_id, ref.schema), self.provider_billed, defaults=self.defaults)
            events = EventRepository(session, self.provider_billed, terms)
            row = await events.lock(ref.event_id)
            if row is None or row.status != "received":
                return "skipped"  # replayed or duplicated jobs are no-ops
            try:
                event = msgspec.convert(row.event, ProviderEvent)
            except msgspec.ValidationError as exc:
                # Stored by a newer billplane (a rolling upgrade: a newer worker reads it) or by hand:
                # it waits as a deferred event does, then is ignored, and can be reapplied.
                outcome = _unless_waited(row, "deferred", f"this billplane cannot read the stored event ({_at(exc)})")
                logger.warning("%s event %s of %s: %s", row.provider, row.event_id, ref.schema, outcome[1])
            else:
                outcome = _unless_waited(row, *await APPLIERS.get(row.type, _not_handled)(events, row, event))
            status, detail = outcome
            if status != "deferred":  # a deferred event stays as it is: received
                # A reapplied event's detail says so (and why it was ignored), unless there is news.
                row.status, row.detail, row.applied_at = status, detail or row.detail, datetime.now(UTC)
        if status in {"ignored", "deferred"}:
            logger.info("%s event %s of %s %s: %s", row.provider, row.event_id, ref.schema, status, detail)
        return status

    async def _refused(self, ref: EventRef, detail: str, *, waited: bool = False) -> str | None:
        """Mark the event ``ignored`` with ``detail``, in a transaction of its own: the lock was
        released with the failed one, so another job may have handled the event since. With
        ``waited``, only once the event is ``WAIT_LIMIT`` old (None, and nothing marked, before)."""
        async with owned_session(self.database, ref.tenant_id, ref.schema) as session:
            row = await EventRepository(session).lock(ref.event_id)
            if row is None or row.status != "received":
                return "skipped"
            if waited and not _waited(row):
                return None
            row.status, row.detail, row.applied_at = "ignored", detail, datetime.now(UTC)
            provider, event_id = row.provider, row.event_id
        # Not the error itself: its message and parameters carry the event's values.
        logger.warning("%s event %s of %s ignored: %s", provider, event_id, ref.schema, detail)
        return "ignored"


def _at(error: msgspec.ValidationError) -> str:
    """Where the stored event fails to decode: the field, never its value (msgspec's message
    quotes a value it refuses, which may be a customer's personal data)."""
    text = str(error)
    if missing := re.search(r"missing required field `([^`]+)`", text):
        field = missing.group(1)
        place = re.search(r" - at `([^`]+)`$", text)
        return f"{place.group(1)}.{field}" if place else f"$.{field}"
    place = re.search(r" - at `([^`]+)`$", text)
    return f"{place.group(1)} holds a value of another type or form" if place else "its shape"


def _waited(row: StoredEvent) -> bool:
    """Whether ``row`` has waited ``WAIT_LIMIT`` since it arrived, or since it was last reapplied:
    what it waits for may only have been put right then."""
    return datetime.now(UTC) - (row.reapplied_at or row.received_at) >= WAIT_LIMIT


def _unless_waited(row: StoredEvent, status: str, detail: str | None) -> Outcome:
    """The applier's outcome; an event deferred that has waited ``WAIT_LIMIT`` is ignored instead:
    what it waits for is taken not to come, and left ``received`` it would be applied every
    minute for ever."""
    if status == "deferred" and _waited(row):
        return "ignored", f"not applied after a day of waiting: {detail}"
    return status, detail
