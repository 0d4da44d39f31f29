"""The subscriptions a billing run (or a test clock's step) moves on, locked, as plain rows.

Loading a tenant's hundred due subscriptions as ORM objects, changing them through instrumented
attributes and expunging them again cost about 0.1 ms each, more than pricing them: the run
writes them back with one UPDATE of its own (``invoicing.write_finalized``), so the unit of work
gave nothing for it. The row carries every column the API view shows (``SubscriptionView.of``).

The same statement reads what charging the subscription's invoices needs (its provider account
or the tenant's default one, and its payment method or the customer's default there) and whether
prorations wait for its next invoice: one statement where the run used to send six (the per-tenant
cost, docs/performance.md, "Billing runs"). It goes to the driver, like the statements after it,
so its columns and parameters have fixed types (``billplane.billing.driver``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import class_mapper

from billplane.billing.driver import begin_on_driver
from billplane.provider_accounts.models import ProviderAccount
from billplane.subscriptions.models import Subscription

# States whose periods still turn over (paused ones turn over without invoices).
TURNING = ("trialing", "active", "past_due", "paused")
# SQL: subscription ``s`` is one the run moves: a turning one, or an unpaid one set to cancel at its
# period's end. Dunning's ``mark_unpaid`` stopped its billing, not its end: at that boundary it is
# canceled as any scheduled cancellation is (``cycle``), its last period's usage billed and its
# credits released; left out, it stayed unpaid with the cancellation pending for ever.
MOVED = f"(s.status IN {TURNING!r} OR (s.status = 'unpaid' AND s.cancel_at_period_end))"


def moved(status: str, *, cancel_at_period_end: bool) -> bool:
    """Whether the run moves a subscription in ``status`` (``MOVED``, in Python)."""
    return status in TURNING or (status == "unpaid" and cancel_at_period_end)


def moved_clause() -> ColumnElement[bool]:
    """``MOVED`` for the ORM."""
    return or_(
        Subscription.status.in_(TURNING), and_(Subscription.status == "unpaid", Subscription.cancel_at_period_end)
    )


def due_by(at: str) -> str:
    """SQL: subscription ``s`` (a moved one, ``MOVED``) has something due by ``at``: its period
    ended, or it is paused until a ``resume_at`` that has come (``cycle``: it resumes then)."""
    return f"(s.current_period_end <= {at} OR (s.status = 'paused' AND s.resume_at <= {at}))"


# SQL: the first moment something of subscription ``s`` is due (its resume_at first, when paused).
FIRST_DUE = "least(s.current_period_end, CASE WHEN s.status = 'paused' THEN s.resume_at END)"


@dataclass(slots=True)
class LockedSubscription:
    """A subscription row under the model's attribute names (``metadata_`` for ``metadata``)."""

    id: int
    customer_id: int
    plan_id: int
    provider: str | None
    provider_account_id: int | None
    provider_subscription_id: str | None
    status: str
    quantity: int
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None
    trial_start: datetime | None
    trial_end: datetime | None
    next_action_type: str | None
    next_action_url: str | None
    payment_method_id: int | None
    paused_at: datetime | None
    resume_at: datetime | None
    ended_at: datetime | None
    pending_plan_id: int | None
    pending_quantity: int | None
    billed_plan_id: int | None
    billed_quantity: int | None
    billed_period_start: datetime | None
    plan_changed_at: datetime | None
    billing_cycle_anchor: datetime | None
    metered_since: datetime | None
    sync_status: str
    last_sync_error: str | None
    synced_at: datetime | None
    provider_event_at: datetime | None
    metadata_: dict[str, str]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Terms:
    """How a subscription's invoices are charged, as found when it was locked (a boundary does not
    change them): the account and method the subscription names (None: the defaults), the live
    account found (None: none to charge through) and the chosen payment method (attached and the
    customer's; None: none), with the account that method is at."""

    wanted_account_id: int | None
    wanted_method_id: int | None
    account_id: int | None
    provider: str | None
    method_id: int | None
    method_account_id: int | None


@dataclass(frozen=True, slots=True)
class Locked:
    subscriptions: list[LockedSubscription]
    terms: dict[int, Terms]  # per subscription id
    # Subscriptions with invoice items waiting for their next invoice, or whose customer has items
    # of its own waiting (credits left by a subscription that ended, one-off items).
    with_items: set[int]
    now: datetime  # the transaction's now()
    # Whether the tenant has an enabled webhook endpoint, as of the lock: none, no fan-out to write
    # (``recording``). The events are the transaction's (``created_at``, its start), so an endpoint
    # enabled after the lock is after them too, as one enabled after their commit would be.
    endpoints: bool


_ATTRIBUTES = [field.name for field in fields(LockedSubscription)]
_COLUMNS = {prop.key: prop.columns[0] for prop in class_mapper(Subscription).column_attrs}
if set(_ATTRIBUTES) != set(_COLUMNS):
    # A column added to the model would be missing from the run's events (or fail the UPDATE): say so at import.
    raise RuntimeError(f"LockedSubscription does not match the subscriptions table: {set(_ATTRIBUTES) ^ set(_COLUMNS)}")
_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call] # SQLAlchemy's dialects are untyped
# Each column as the model types it, whatever a tenant's table says (shared statements, ``driver``).
_TYPED = ", ".join(f"s.{_COLUMNS[name].name}::{_COLUMNS[name].type.compile(dialect=_DIALECT)}" for name in _ATTRIBUTES)
_ACCOUNTS = ProviderAccount.__table__.fullname  # type: ignore[attr-defined] # a Table
_LIVE = "a.tenant_id = $1::bigint AND a.status = 'active'"


def _lock_sql(*, by_clock: bool) -> str:
    """Parameters: $1 the tenant's id, $2 whether default accounts charge, $3 the moment due by
    (NULL: now()), $4 the providers that bill their own, $5 the ids (or the test clock's id)."""
    chosen = "s.id = ANY($5::bigint[])"
    if by_clock:
        chosen = "s.customer_id IN (SELECT c.id FROM customers c WHERE c.test_clock_id = $5::bigint)"
    return (
        f"SELECT {_TYPED}, now(), EXISTS (SELECT FROM webhook_endpoints w WHERE w.status = 'enabled'), "
        "(EXISTS (SELECT FROM invoice_items i WHERE i.subscription_id = s.id AND i.invoice_id IS NULL) "
        "OR EXISTS (SELECT FROM invoice_items i WHERE i.customer_id = s.customer_id AND i.subscription_id IS NULL "
        "AND i.invoice_id IS NULL)), "
        "a.id::bigint, a.provider::text, m.id::bigint, m.provider_account_id::bigint FROM subscriptions s "
        # The subscription's account, else the tenant's first default (one per provider), if live.
        f"LEFT JOIN LATERAL (SELECT a.id, a.provider FROM {_ACCOUNTS} a WHERE {_LIVE} AND a.id = "
        f"coalesce(s.provider_account_id, (SELECT a.id FROM {_ACCOUNTS} a WHERE {_LIVE} AND a.is_default "
        "AND $2::boolean ORDER BY a.id LIMIT 1))) a ON true "
        # The subscription's method, else the customer's newest default at that account.
        "LEFT JOIN LATERAL (SELECT m.id, m.provider_account_id FROM payment_methods m "
        "WHERE m.customer_id = s.customer_id AND m.detached_at IS NULL AND CASE WHEN s.payment_method_id IS NULL "
        "THEN m.is_default AND m.provider_account_id = a.id ELSE m.id = s.payment_method_id END "
        "ORDER BY m.id DESC LIMIT 1) m ON true "
        f"WHERE {chosen} AND {MOVED} "
        f"AND {due_by('coalesce($3::timestamptz, now())')} "
        "AND (s.provider IS NULL OR s.provider <> ALL($4::text[])) "
        "ORDER BY s.id FOR UPDATE OF s"
    )


_BY_IDS = _lock_sql(by_clock=False) + " SKIP LOCKED"
_BY_CLOCK = _lock_sql(by_clock=True)


async def lock_due(
    session: AsyncSession,
    *,
    tenant_id: int,
    provider_billed: frozenset[str],
    defaults: bool,
    ids: list[int] | None = None,
    clock_id: int | None = None,
    until: datetime | None = None,
) -> Locked | None:
    """The subscriptions still due at ``until`` (None: the transaction's now()), whose period ended
    or whose pause reached its ``resume_at``, locked, in id order: among ``ids``, skipping those
    another run holds; or every one of the customers on test clock ``clock_id``. Those a provider
    that bills its own holds (``provider_billed``) are left to it. ``defaults``: whether invoices
    without an account of their own go through the tenant's default account (False in a process
    that calls no provider). None when nothing is due.

    Sent on the session's driver, which begins the session's transaction if nothing has yet
    (``begin_on_driver``)."""
    driver = await begin_on_driver(session)
    chosen: list[int] | int = (ids or []) if clock_id is None else clock_id
    rows = await driver.fetch(
        _BY_IDS if clock_id is None else _BY_CLOCK, tenant_id, defaults, until, sorted(provider_billed), chosen
    )
    if not rows:
        return None
    width = len(_ATTRIBUTES)
    subscriptions = [LockedSubscription(*row[:width]) for row in rows]
    terms = {
        subscription.id: Terms(subscription.provider_account_id, subscription.payment_method_id, *row[width + 3 :])
        for subscription, row in zip(subscriptions, rows, strict=True)
    }
    with_items = {row[0] for row in rows if row[width + 2]}
    return Locked(subscriptions, terms, with_items, now=rows[0][width], endpoints=rows[0][width + 1])
