"""Moving subscriptions across their period ends: what happens at each boundary, and its invoice.

At each boundary up to "now" (several, when catching up after downtime), in order: a scheduled
cancellation ends it; a pause whose ``resume_at`` is the boundary ends; a pending change applies; a
trial that ended turns ``active``; then the new period is billed in advance, with the ended period's
metered usage in arrears. An ``unpaid`` subscription (dunning's ``mark_unpaid``) is moved only to
end: set to cancel at its period's end, it is canceled there like any other (its period's usage
billed, its credits released); otherwise its billing stays stopped (``locked.MOVED``). Each period
is invoiced at most once: the invoice insert leaves out every (subscription, period start) billed
already, and ``uq_invoices_subscription_cycle`` stays the guard.

A pause whose ``resume_at`` falls within a period ends at ``resume_at``, before that period's end
(the steps go in time order): as ``POST .../resume`` would have then, the subscription is back to
its trial if that has not ended, else ``active``, and when the pause began before the period (whose
boundary billed nothing in advance) the rest of the period is invoiced at once
(``subscription_update``, keyed by ``resume_at``: ``invoicing``). A subscription mirrored to a
provider account (``provider_account_id``) is resumed there too, as the request would have: its
``subscription.resume`` outbox row is queued with the run's writes, and its ``sync_status`` is
``pending`` (``Outcome.resumed``; ``recording``).

A run advances a tenant's due subscriptions together, in one transaction: the boundaries are
worked out in memory, then written with one statement (``invoicing.write_finalized``), instead of
a dozen round trips per subscription, which is what a run spent its time on (docs/performance.md,
"Billing runs"). Their events are returned, to be written with the charges (``recording``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from billplane.billing.announcing import Announcement
from billplane.billing.credit_split import split_credit
from billplane.billing.customer_credit import release_credits
from billplane.billing.invoicing import CYCLE, UPDATE, Draft, Finalized, PendingItem, write_finalized
from billplane.billing.locked import Locked, LockedSubscription, moved
from billplane.db.mixins import MAX_ID
from billplane.invoices.lines import MAX_AMOUNT
from billplane.pricing import (
    LineDraft,
    Period,
    PlanPricing,
    Tier,
    UsageValue,
    metered_usage,
    period_lines,
    remaining_time,
    total,
)
from billplane.pricing.credits import attachable
from billplane.pricing.models import TIERED_MODELS
from billplane.subscriptions.models import Subscription
from billplane.subscriptions.periods import period_end, usage_start
from billplane.subscriptions.schemas import Subscription as SubscriptionView

_MAX_CATCH_UP = 1000  # boundaries per subscription per run: a daily plan down for years stops here

_PLANS = (
    "SELECT p.id::bigint, p.name::text, p.pricing_model::text, p.currency::text, p.amount::bigint, "
    "p.package_size::bigint, p.usage_aggregation::text, p.billing_interval::text, p.interval_count::integer "
    "FROM plans p WHERE p.id = ANY($1::bigint[])"
)
# Read only for tiered plans: most tenants have none, and a statement that names pricing_tiers
# opens the table and its indexes in every tenant's transaction (docs/performance.md, "What is left").
_TIERS = (
    "SELECT t.plan_id::bigint, t.up_to::bigint, t.unit_amount::numeric, t.flat_amount::bigint "
    "FROM pricing_tiers t WHERE t.plan_id = ANY($1::bigint[]) ORDER BY t.plan_id, t.position"
)
# The subscriptions' own pending items, and their customers' (credits left by subscriptions that
# ended, ``customer_credit``; one-off items, ``items_service``). A customer's item another
# transaction holds is being taken by another of the customer's invoices: skipped, it is that one's.
_PENDING_ITEMS = (
    "SELECT id::bigint, customer_id::bigint, subscription_id::bigint, plan_id::bigint, description::text, "
    "quantity::bigint, unit_amount::numeric, amount::bigint, currency::text, period_start::timestamptz, "
    "period_end::timestamptz, proration::boolean FROM invoice_items WHERE invoice_id IS NULL "
    "AND (subscription_id = ANY($1::bigint[]) OR (subscription_id IS NULL AND customer_id = ANY($2::bigint[]))) "
    "ORDER BY id FOR UPDATE SKIP LOCKED"
)
_USAGE = (
    'SELECT "timestamp"::timestamptz, quantity::bigint FROM usage_records WHERE subscription_id = $1::bigint '
    'AND "timestamp" >= $2::timestamptz AND "timestamp" < $3::timestamptz '
    # In the order GET /v1/subscriptions/{id}/usage reads them: "last" gives a tie to the later record.
    'ORDER BY "timestamp", id'
)


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    object_type: str
    object_id: int
    data: Any  # the object as the API shows it


@dataclass(frozen=True, slots=True)
class BilledPlan:
    """What crossing a boundary reads of a plan."""

    id: int
    currency: str
    pricing_model: str
    billing_interval: str
    interval_count: int
    pricing: PlanPricing


@dataclass(slots=True)
class Outcome:
    invoices: list[Finalized] = field(default_factory=list)  # new, finalized, in id order
    events: list[Event] = field(default_factory=list)  # to record, in this order
    announcements: list[Announcement] = field(default_factory=list)  # once committed (``announcing``)
    # (subscription id, account id) of the mirrored subscriptions resumed, in id order: a
    # ``subscription.resume`` outbox row each, with their sync_status, to write (``recording``).
    resumed: list[tuple[int, int]] = field(default_factory=list)
    # Subscriptions left due, unbilled, and why: an invoice or line of theirs came to more than any
    # amount may, or a line's quantity to more than a line holds (``TooLargeError``). The rest of the
    # tenant is billed; these are tried again by the next run.
    refused: dict[int, str] = field(default_factory=dict)


class TooLargeError(ValueError):
    """An invoice or one of its lines would come to more than ``MAX_AMOUNT`` either way, or a line's
    quantity to more than ``MAX_ID`` (bigint; a usage quantity sent in the wrong unit, say, even at a
    price of 0): written, it would fail the tenant's whole statement, on every run."""


@dataclass(slots=True)
class _Batch:
    driver: Any
    plans: dict[int, BilledPlan]
    pending: dict[int, list[PendingItem]]  # proration items not yet on an invoice, per subscription
    credits: dict[tuple[int, str], list[PendingItem]]  # the customers' own items, per customer and currency
    drafts: list[Draft] = field(default_factory=list)
    # What happened, in order: invoice drafts and subscription events (type, id, view).
    timeline: list[Draft | tuple[str, int, SubscriptionView]] = field(default_factory=list)
    crossed: dict[int, LockedSubscription] = field(default_factory=dict)
    resumed: set[int] = field(default_factory=set)  # of ``crossed``, those resumed at their provider


async def advance_all(driver: Any, locked: Locked, now: datetime) -> Outcome:
    """Every boundary of each of the ``locked`` subscriptions (one tenant's) up to ``now`` (the
    run's: the transaction's clock, or a test clock's frozen time), with the new invoices
    finalized; returns them in id order, and the events to record."""
    outcome = Outcome()
    subscriptions = locked.subscriptions
    if not subscriptions:
        return outcome
    waiting = [s for s in subscriptions if s.id in locked.with_items]
    pending, released = await _pending_items(driver, waiting)
    plan_ids = {s.plan_id for s in subscriptions} | {s.pending_plan_id for s in subscriptions if s.pending_plan_id}
    batch = _Batch(driver, await _plans(driver, plan_ids), pending, released)
    for subscription in subscriptions:
        drafts, timeline = len(batch.drafts), len(batch.timeline)
        try:
            await _cross_all(batch, subscription, now, locked.now)
        except TooLargeError as exc:
            # Take back what its crossing added. Its row is written only from ``crossed``: changed in
            # memory, it is neither written nor read again. The pending items its drafts took in
            # memory are not taken in the database: they wait for the next invoice. The caller logs
            # it, with its tenant (``tenant_batch``).
            del batch.drafts[drafts:], batch.timeline[timeline:]
            batch.crossed.pop(subscription.id, None)
            batch.resumed.discard(subscription.id)
            outcome.refused[subscription.id] = str(exc)
    outcome.invoices = await write_finalized(
        driver, batch.drafts, list(batch.crossed.values()), now, terms=locked.terms
    )
    if batch.resumed:  # in id order, as locked and crossed
        outcome.resumed = [
            (s.id, s.provider_account_id)
            for s in batch.crossed.values()
            if s.id in batch.resumed and s.provider_account_id is not None
        ]
    # Those that ended here (only moved ones are locked, none ended before) leave their credits to their customers.
    await release_credits(driver, [s.id for s in batch.crossed.values() if s.status == "canceled"])
    # In the order drafting then finalizing emitted them: the boundaries' events, then each invoice's
    # finalization in id order.
    events = outcome.events
    for entry in batch.timeline:
        if isinstance(entry, Draft):
            if entry.invoice_id is not None:
                events.append(Event("invoice.created", "invoice", entry.invoice_id, _invoice_data(entry)))
        else:
            events.append(Event(entry[0], "subscription", entry[1], entry[2]))
    for invoice in outcome.invoices:
        events += [Event(kind, "invoice", invoice.id, view) for kind, view in invoice.events]
    return outcome


async def _cross_all(batch: _Batch, subscription: LockedSubscription, now: datetime, written_at: datetime) -> None:
    """Each step due by ``now``, in time order: a ``resume_at`` within the current period, before
    that period's end; each period end."""
    crossed = 0
    while (
        moved(subscription.status, cancel_at_period_end=subscription.cancel_at_period_end)
        and subscription.current_period_start is not None
        and subscription.current_period_end is not None
        and crossed < _MAX_CATCH_UP
    ):
        resume_at = _resuming(subscription, now)
        if resume_at is not None:
            await _resume(batch, subscription, resume_at, written_at)
        elif subscription.current_period_end <= now:
            await _cross(batch, subscription)
            _changed(batch, subscription, _event(subscription), written_at)
        else:
            break
        crossed += 1


def _changed(batch: _Batch, subscription: LockedSubscription, event: str, written_at: datetime) -> None:
    """``subscription`` is written, with ``subscription.{event}`` showing it as it is now."""
    # What the UPDATE's now() writes: the event shows it without a reload.
    subscription.updated_at = written_at
    batch.crossed[subscription.id] = subscription
    view = SubscriptionView.of(cast("Subscription", subscription))
    batch.timeline.append((f"subscription.{event}", subscription.id, view))


def _mirror_resume(batch: _Batch, subscription: LockedSubscription) -> None:
    """The pause ends at the subscription's provider account too, if it has one: as
    ``SyncService.subscription_changed`` queues ``subscription.resume`` for the request, with the
    subscription ``pending`` (its events show it so). Both are written by a statement of their own
    (``recording``), sent only when something resumed: the write statement stays the same."""
    if subscription.provider_account_id is not None:
        subscription.sync_status = "pending"
        batch.resumed.add(subscription.id)


def _event(subscription: LockedSubscription) -> str:
    return "canceled" if subscription.status == "canceled" else "updated"


def _resuming(subscription: LockedSubscription, now: datetime) -> datetime | None:
    """The ``resume_at`` of a pause that ends within the current period by ``now`` (None: none). One
    at the period's end, or after it, ends at that boundary, or a later one (``_cross``)."""
    resume_at, end = subscription.resume_at, subscription.current_period_end
    if subscription.status != "paused" or resume_at is None or end is None or resume_at > now:
        return None
    return resume_at if resume_at < end else None


async def _resume(batch: _Batch, subscription: LockedSubscription, resume_at: datetime, written_at: datetime) -> None:
    """The pause ends at ``resume_at``, within the current period, as ``POST .../resume`` would have
    ended it then (``SubscriptionService.resume``): back to the trial if that has not ended, else
    ``active``; when it was paused before the period began, so that the period's boundary billed
    nothing in advance, the rest of the period is invoiced now (its metered usage waits for its end)."""
    start, end = subscription.current_period_start, subscription.current_period_end
    assert start is not None  # noqa: S101 - checked by the loop
    assert end is not None  # noqa: S101
    at = max(resume_at, start)  # a pause's resume_at is after the period's start; if not, from there
    in_trial = subscription.trial_end is not None and at < subscription.trial_end
    unbilled = subscription.paused_at is not None and subscription.paused_at < start
    subscription.status = "trialing" if in_trial else "active"
    subscription.paused_at = subscription.resume_at = None
    _mirror_resume(batch, subscription)
    _changed(batch, subscription, "resumed", written_at)  # before its invoice, as the request emits it
    if unbilled and not in_trial:
        plan = await _plan(batch, subscription.plan_id)
        lines = remaining_time(plan.pricing, Period(start, end), at, subscription.quantity)
        if lines:  # none for a metered plan, or a period of 0
            await _draft(batch, subscription, plan, Period(at, end), lines=lines, reason=UPDATE)


async def _cross(batch: _Batch, subscription: LockedSubscription) -> None:
    assert subscription.current_period_start is not None  # noqa: S101 - checked by the loop
    assert subscription.current_period_end is not None  # noqa: S101
    ended = Period(subscription.current_period_start, subscription.current_period_end)
    boundary = ended.end
    ended_plan = await _plan(batch, subscription.plan_id)
    was_paused = subscription.status == "paused"
    # A trial's usage is free; a pause stops the subscription's price, not what was used. Told by
    # the dates, not the status: a trialing subscription may pause, and its trial ends all the same.
    # Nor is the time before a change made the plan metered billed again by its usage.
    billable = _billable(subscription, ended)
    usage = None if billable is None else await _usage(batch, subscription, ended_plan, billable)
    if subscription.cancel_at_period_end:
        subscription.status, subscription.canceled_at, subscription.ended_at = "canceled", boundary, boundary
        owed = any(item.amount > 0 for item in batch.pending.get(subscription.id, ()))
        # Its credits are taken only by an invoice owed anyway; what is left goes to the customer.
        if usage or owed:  # the last period's usage, and prorations charged for it, are still owed
            # Keyed, like every invoice a boundary issues, by the period that starts there (its lines
            # keep their own periods): the ended period's start is the key of the invoice its own
            # start issued, and an invoice keyed twice is not written.
            after = period_end(
                boundary, ended_plan.billing_interval, ended_plan.interval_count, subscription.billing_cycle_anchor
            )
            await _draft(batch, subscription, ended_plan, Period(boundary, after), lines=usage or [])
        return
    if was_paused and subscription.resume_at is not None and subscription.resume_at <= boundary:
        # As ``POST .../resume``: back to its trial if that has not ended (then turned ``active`` below).
        resumed = "trialing" if subscription.trial_end is not None and boundary < subscription.trial_end else "active"
        subscription.status, subscription.paused_at, subscription.resume_at = resumed, None, None
        _mirror_resume(batch, subscription)
    if subscription.pending_plan_id is not None:
        subscription.plan_id, subscription.pending_plan_id = subscription.pending_plan_id, None
    if subscription.pending_quantity is not None:
        subscription.quantity, subscription.pending_quantity = subscription.pending_quantity, None
    if subscription.status == "trialing" and subscription.trial_end is not None and subscription.trial_end <= boundary:
        subscription.status = "active"
    plan = await _plan(batch, subscription.plan_id)
    anchor = subscription.billing_cycle_anchor
    following = Period(boundary, period_end(boundary, plan.billing_interval, plan.interval_count, anchor))
    subscription.current_period_start, subscription.current_period_end = following.start, following.end
    if subscription.status == "paused":  # nothing billed in advance while paused
        if usage:  # but the ended period's usage, before the pause or during it, is owed
            await _draft(batch, subscription, plan, following, lines=usage)
        return
    advance_lines = (
        [] if plan.pricing_model == "metered" else period_lines(plan.pricing, following, quantity=subscription.quantity)
    )
    if subscription.trial_end is not None and boundary < subscription.trial_end:
        advance_lines = []  # still in the trial: nothing billed for it
    await _draft(batch, subscription, plan, following, lines=[*(usage or []), *advance_lines])


async def _plans(driver: Any, ids: set[int]) -> dict[int, BilledPlan]:
    """The plans the batch may bill, with their tiers (a second query, only for tiered plans)."""
    rows = await driver.fetch(_PLANS, sorted(ids))
    tiered = sorted(row[0] for row in rows if row[2] in TIERED_MODELS)
    tiers: dict[int, list[Tier]] = {}
    for plan_id, *tier in await driver.fetch(_TIERS, tiered) if tiered else ():
        tiers.setdefault(plan_id, []).append(Tier(*tier))
    plans = {}
    for row in rows:
        (plan_id, name, model, currency, amount, package_size, aggregation, interval, count) = row
        pricing = PlanPricing(
            model=model,
            currency=currency,
            amount=amount,
            tiers=tuple(tiers.get(plan_id, ())),
            package_size=package_size,
            usage_aggregation=aggregation,
            name=name,
            plan_id=plan_id,
        )
        plans[plan_id] = BilledPlan(plan_id, currency, model, interval, count, pricing)
    return plans


async def _plan(batch: _Batch, plan_id: int) -> BilledPlan:
    plan = batch.plans.get(plan_id)
    if plan is None:
        plan = (await _plans(batch.driver, {plan_id})).get(plan_id)
        if plan is None:  # plans.id is a foreign key of subscriptions.plan_id
            raise LookupError(f"plan {plan_id} does not exist")
        batch.plans[plan_id] = plan
    return plan


def _billable(subscription: LockedSubscription, period: Period) -> Period | None:
    """The part of ``period`` whose usage is billed (None: none of it): what is after the trial's
    end, whatever the status says, and after ``metered_since`` (``periods.usage_start``). A trial's
    period ends at ``trial_end`` (the period the subscription is created with, and the boundaries
    from there), so a period is the trial's or not; one that straddled ``trial_end`` would bill
    only what follows it. Read from the locked row: no statement more."""
    start = usage_start(period.start, trial_end=subscription.trial_end, metered_since=subscription.metered_since)
    return Period(start, period.end) if start < period.end else None


async def _usage(batch: _Batch, subscription: LockedSubscription, plan: BilledPlan, period: Period) -> list[LineDraft]:
    if plan.pricing_model != "metered":
        return []
    rows = await batch.driver.fetch(_USAGE, subscription.id, period.start, period.end)
    values = [UsageValue(timestamp, quantity) for timestamp, quantity in rows]
    return period_lines(plan.pricing, period, usage=metered_usage(plan.pricing, values, period))


async def _draft(
    batch: _Batch,
    subscription: LockedSubscription,
    plan: BilledPlan,
    period: Period,
    *,
    lines: list[LineDraft],
    reason: str = CYCLE,
) -> None:
    """An invoice of ``lines`` for ``period``. A boundary's (``CYCLE``) takes the pending items; the
    rest of a resumed period's takes none, as the request's resume does: they wait for the boundary."""
    base = total(lines)
    waiting = batch.pending.get(subscription.id) or batch.credits.get((subscription.customer_id, plan.currency))
    items = await _take(batch, subscription, plan.currency, base) if waiting and reason == CYCLE else []
    amount = base + sum(item.amount for item in items)
    excess = _excess(lines, amount, plan.currency)
    if excess is not None:
        raise TooLargeError(f"its invoice for the period from {period.start:%Y-%m-%d} {excess}")
    draft = Draft(subscription.customer_id, subscription.id, plan.currency, period, lines, items, amount, reason=reason)
    batch.drafts.append(draft)
    batch.timeline.append(draft)


def _excess(lines: list[LineDraft], amount: int, currency: str) -> str | None:
    """What of an invoice of ``lines`` coming to ``amount`` no invoice may hold (None: nothing). The
    pending items it takes are rows already, so within bounds, and taken only as far as the invoice
    stays within ``MAX_AMOUNT`` (``_take``)."""
    for line in lines:
        if abs(line.amount) > MAX_AMOUNT:
            return (
                f'would have a line ("{line.description}") of {line.amount} {currency}, more than the '
                f"{MAX_AMOUNT} minor units a line may come to either way"
            )
        if abs(line.quantity) > MAX_ID:
            return (
                f'would have a line ("{line.description}") of quantity {line.quantity}, more than the {MAX_ID} '
                "an invoice line may hold"
            )
    if abs(amount) > MAX_AMOUNT:
        return f"would come to {amount} {currency}, more than the {MAX_AMOUNT} minor units an invoice may either way"
    return None


async def _take(batch: _Batch, subscription: LockedSubscription, currency: str, base: int) -> list[PendingItem]:
    """The pending items an invoice of ``base`` takes (the subscription's own, and its customer's
    own items in ``currency``), taken now, so a later boundary does not take them again (an
    invoice the insert skips, its period billed already, takes none of them in the database: they
    stay pending for the next one). A credit taken in part is split in the database at once, its
    rest left for the next boundary."""
    released_key = (subscription.customer_id, currency)
    pending = sorted([*batch.pending.get(subscription.id, []), *batch.credits.get(released_key, [])], key=_item_id)
    attached = attachable(pending, base, MAX_AMOUNT)
    items = attached.whole
    left = [item for item in pending if item not in items and item is not attached.part]
    if attached.part is not None:
        credit, applied = attached.part, attached.applied
        rest_id = await split_credit(batch.driver, credit.id, credit.amount, applied)
        items = [*items, replace(credit, amount=applied, quantity=1, unit_amount=Decimal(applied))]
        rest = credit.amount - applied
        left.append(replace(credit, id=rest_id, amount=rest, quantity=1, unit_amount=Decimal(rest)))
    batch.pending[subscription.id] = [item for item in left if item.subscription_id is not None]
    batch.credits[released_key] = [item for item in left if item.subscription_id is None]
    return items


def _item_id(item: PendingItem) -> int:
    return item.id


async def _pending_items(
    driver: Any, waiting: list[LockedSubscription]
) -> tuple[dict[int, list[PendingItem]], dict[tuple[int, str], list[PendingItem]]]:
    """The ``waiting`` subscriptions' pending items, per subscription, and their customers' own
    items, per customer and currency."""
    pending: dict[int, list[PendingItem]] = {}
    released: dict[tuple[int, str], list[PendingItem]] = {}
    if waiting:
        customers = sorted({s.customer_id for s in waiting})
        for row in await driver.fetch(_PENDING_ITEMS, [s.id for s in waiting], customers):
            item = PendingItem(*row)
            if item.subscription_id is None:
                released.setdefault((item.customer_id, item.currency), []).append(item)
            else:
                pending.setdefault(item.subscription_id, []).append(item)
    return pending, released


def _invoice_data(draft: Draft) -> dict[str, object]:
    return {
        "id": draft.invoice_id,
        "customer_id": draft.customer_id,
        "subscription_id": draft.subscription_id,
        "status": "draft",
        "currency": draft.currency,
        "total": draft.amount,
        "period_start": draft.period.start,
        "period_end": draft.period.end,
        "billing_reason": draft.reason,
    }
