"""Subscriptions: create, change, cancel, pause, resume, read. Never commits: the request owns the
transaction, so the change, its outbox rows (mirroring to the provider) and its event commit
together or not at all.

What each state allows is in ``transitions``; a refused action is a 409 and writes nothing. The
first period is invoiced when the subscription is created, and an immediate cancellation may invoice
the last usage (``invoicing``); the periods after the first, prorations and trial ends are the
billing run's work (``billplane.billing``). A change to a subscription whose period has ended
first bills that period, as the run would (``catching_up``), then applies to the period after.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from litestar.exceptions import NotFoundException
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.pagination import page_of
from billplane.api.problems import ConflictError, InvalidFieldError
from billplane.api.types import checked_time
from billplane.billing.clock import customer_now, live_account_for_clock
from billplane.billing.customer_credit import release_credits
from billplane.billing.driver import driver_of
from billplane.billing.models import InvoiceItem
from billplane.catalog.models import Plan
from billplane.events.changes import changed
from billplane.events.emit import emit
from billplane.invoices.lifecycle import InvoiceLifecycle
from billplane.invoices.models import Invoice, InvoiceLine
from billplane.plugins.contract import Capability
from billplane.pricing import Period, PlanPricing, PricingError, remaining_time
from billplane.subscriptions import change_rules, transitions
from billplane.subscriptions.catching_up import CatchUp, caught_up, due
from billplane.subscriptions.changes import Change, billed_basis, keep_billed, prorated_at, proration_lines
from billplane.subscriptions.invoicing import advance_lines, last_usage, subscription_invoice, take_pending
from billplane.subscriptions.models import SUBSCRIPTION_STATUSES, Subscription
from billplane.subscriptions.periods import add_interval
from billplane.subscriptions.preview import InvoicePreview, preview
from billplane.subscriptions.repository import SubscriptionFilters, SubscriptionRepository
from billplane.subscriptions.schemas import Subscription as SubscriptionView
from billplane.subscriptions.schemas import (
    SubscriptionCancel,
    SubscriptionCreate,
    SubscriptionPause,
    SubscriptionUpdate,
)
from billplane.sync.service import SyncService


class SubscriptionService:
    def __init__(self, session: AsyncSession, sync: SyncService | None = None) -> None:
        self.session = session
        self.repository = SubscriptionRepository(session=session)
        self.sync_service = sync

    @property
    def mirror(self) -> SyncService:
        if self.sync_service is None:
            raise RuntimeError("writing subscriptions needs the sync service")
        return self.sync_service

    async def get(self, subscription_id: int) -> Subscription:
        subscription = await self.repository.find(subscription_id)
        if subscription is None:  # another tenant's id looks exactly like an id that never existed
            raise NotFoundException(f"no subscription {subscription_id}")
        return subscription

    async def _locked(self, subscription_id: int, *, ending: bool = False) -> Subscription:
        """The subscription, locked, with every period end up to now billed as the billing run
        would (``catching_up``): a change applies to the period it is in, never to one that ended.
        ``ending``: the change ends it now (``caught_up``)."""
        subscription = await self.repository.locked(subscription_id)
        if subscription is None:
            raise NotFoundException(f"no subscription {subscription_id}")
        return await self._caught_up(subscription, ending=ending)

    async def _caught_up(
        self, subscription: Subscription, *, announcing: bool = True, ending: bool = False
    ) -> Subscription:
        now = await self._now(subscription)
        return await caught_up(self.session, subscription, now, self._catch_up(), announcing=announcing, ending=ending)

    def _catch_up(self) -> CatchUp:
        """How the billing run would bill this tenant (``BillingRun``'s provider_billed and defaults)."""
        writer, plugins = self.mirror.writer, self.mirror.plugins
        billed = plugins.billers() if plugins is not None else frozenset[str]()
        return CatchUp((writer.tenant_id, writer.schema), billed, defaults=writer.accounts is not None)

    async def _plan(self, plan_id: int, *, currency: set[str]) -> Plan:
        plan = await self.repository.plan(plan_id)
        if plan is None:
            raise InvalidFieldError("plan_id", f"no plan {plan_id}")
        if not plan.active:
            raise InvalidFieldError("plan_id", f"plan {plan_id} is archived: subscribe to an active plan")
        if currency and plan.currency not in currency:
            billed = ", ".join(sorted(currency))
            raise InvalidFieldError(
                "plan_id", f"the customer is billed in {billed}; plan {plan_id} is in {plan.currency}"
            )
        return plan

    async def create(self, data: SubscriptionCreate) -> Subscription:
        customer = await self.repository.live_customer(data.customer_id, locked=True)
        if customer is None:
            raise InvalidFieldError("customer_id", f"no customer {data.customer_id}")
        plan = await self._plan(data.plan_id, currency=await self.repository.billing_currencies(customer.id))
        if data.payment_method_id is not None and (
            await self.repository.payment_method(data.payment_method_id, customer.id) is None
        ):
            raise InvalidFieldError(
                "payment_method_id", f"customer {customer.id} has no payment method {data.payment_method_id}"
            )
        account = await self.mirror.account_for_new_subscription(data.provider_account_id)
        if account is not None:
            await self.mirror.refuse_unsupported_plan(account, plan.id)
            tenant_id = self.mirror.writer.tenant_id
            if live := await live_account_for_clock(self.session, tenant_id, customer.test_clock_id, account):
                raise InvalidFieldError("provider_account_id", live)
        now = await customer_now(self.session, customer.test_clock_id)
        trial_days = plan.trial_period_days if data.trial_period_days is None else data.trial_period_days
        trial_end = now + timedelta(days=trial_days) if trial_days else None
        first = Period(now, add_interval(now, plan.billing_interval, plan.interval_count))
        provider = None if account is None else await self.mirror.provider_of(account)
        lines = []  # what the first period bills in advance, when billplane bills it (``invoicing``)
        if not self.mirror.bills_subscriptions(provider):
            lines = advance_lines(plan, first, data.quantity)  # checked for a trial too: it bills after
        subscription = Subscription(
            customer_id=customer.id,
            plan_id=plan.id,
            quantity=data.quantity,
            status="trialing" if trial_end else "active",
            trial_start=now if trial_end else None,
            trial_end=trial_end,
            current_period_start=now,
            current_period_end=trial_end or first.end,
            billing_cycle_anchor=trial_end or now,  # the first paid period's start
            payment_method_id=data.payment_method_id,
            provider=provider,
            provider_account_id=account,
            metadata_=data.metadata,
        )
        self.session.add(subscription)
        await self.session.flush()
        if account is not None:
            await self.mirror.sync_subscription(subscription)
        await self._emitted("subscription.created", subscription)
        if lines and trial_end is None:
            opening = (first.start, first.end)
            items = await take_pending(self.session, subscription, plan.currency, lines)
            invoice, rows = subscription_invoice(subscription, "subscription_create", opening, lines, items)
            await self._issue(invoice, rows)
            await self._taken(invoice, items)
        return subscription

    async def update(self, subscription_id: int, data: SubscriptionUpdate) -> Subscription:
        subscription = await self._locked(subscription_id)
        before = SubscriptionView.of(subscription)
        changes = data.changes()
        if "metadata" in changes and changes["metadata"] != subscription.metadata_:
            subscription.metadata_ = changes["metadata"]
            await self.mirror.subscription_metadata_changed(subscription)
        change = await self._checked(subscription, data)
        if change is None and data.proration == "at_period_end" and {"plan_id", "quantity"} & changes.keys():
            # Back to what it has now: nothing is left to change at the period's end.
            subscription.pending_plan_id = subscription.pending_quantity = None
        if change is not None:
            plan_id, quantity = change.new.id, change.quantity
            if data.proration == "at_period_end":
                subscription.pending_plan_id = plan_id if plan_id != subscription.plan_id else None
                subscription.pending_quantity = quantity if quantity != subscription.quantity else None
            else:
                if change.prorated:
                    await self._add_prorations(subscription, change)
                billed_here = not self.mirror.bills_subscriptions(subscription.provider)
                keep_billed(subscription, change, billed_here=billed_here)
                if change.current.pricing_model != "metered" and change.new.pricing_model == "metered":
                    # Its usage counts from here: the time before was the old plan's, paid for.
                    subscription.metered_since = change.at
                subscription.plan_id, subscription.quantity = plan_id, quantity
                subscription.plan_changed_at = change.at
                subscription.pending_plan_id = subscription.pending_quantity = None
                # The provider is asked to prorate as billplane would (trials have nothing to prorate).
                asked = data.proration == "create_prorations" and subscription.status != "trialing"
                kind = "subscription.update" if asked else "subscription.update_unprorated"
                await self.mirror.subscription_changed(subscription, kind)
        return await self._emitted("subscription.updated", subscription, unless_as=before)

    async def _checked(self, subscription: Subscription, data: SubscriptionUpdate) -> Change | None:
        """The plan or quantity change ``data`` asks for, checked as the change and its preview
        both check it (422 naming the field, 409 for a state that cannot change); None when
        neither changes."""
        changes = data.changes()
        plan_id, quantity = _target(subscription, data)
        if (plan_id, quantity) == (subscription.plan_id, subscription.quantity):
            return None
        transitions.check("change", subscription.status)
        provider_bills = self.mirror.bills_subscriptions(subscription.provider)
        # billplane's own billing rules: nothing was charged for a trial yet (nothing to credit or
        # prorate), and a provider that bills the subscription prorates by its own (Stripe, PayPal).
        own_rules = subscription.status != "trialing" and not provider_bills
        if data.proration == "at_period_end" and provider_bills:
            # Kept as pending here, it would wait for a billing run, which never bills it.
            raise InvalidFieldError(
                "proration",
                f"{subscription.provider} bills this subscription: a change at the period end cannot wait here "
                "for its period end; make it now (create_prorations or none)",
            )
        current = await self.repository.plan(subscription.plan_id)
        if current is None:  # a foreign key: never
            raise ConflictError(f"subscription {subscription.id} has no plan")
        start, end = subscription.current_period_start, subscription.current_period_end
        period = None if start is None or end is None else Period(start, end)  # none: its provider's to set
        new = current
        if plan_id != current.id:
            currency = await self.repository.billing_currencies(subscription.customer_id, other_than=subscription.id)
            new = await self._plan(plan_id, currency=currency | {current.currency})
            if own_rules:
                change_rules.check_same_period(current, new, data.proration)
                change_rules.check_usage_kept(current, new, data.proration)
            if subscription.provider_account_id is not None:
                await self.mirror.refuse_unsupported_plan(subscription.provider_account_id, plan_id)
        await self._check_amount(subscription, plan_id, quantity, "quantity" if "quantity" in changes else "plan_id")
        prorated = data.proration == "create_prorations" and own_rules and period is not None
        billed = await billed_basis(self.repository, subscription, current)
        if prorated and period is not None:
            for plan in (billed[0], new):
                change_rules.check_period_prorated(plan, period, subscription.billing_cycle_anchor, data.proration)
        at = await prorated_at(self.repository, subscription, data, await self._now(subscription))
        return Change(current, new, quantity, prorated, period, billed, at)

    async def _check_amount(self, subscription: Subscription, plan_id: int, quantity: int, field: str) -> None:
        """A 422 naming ``field`` when a period of ``plan_id`` at ``quantity`` comes to more than an
        invoice may hold: written, every later billing run would refuse the subscription."""
        plan = await self.repository.plan(plan_id)
        start = subscription.current_period_start
        if plan is None or start is None or self.mirror.bills_subscriptions(subscription.provider):
            return
        advance_lines(
            plan, Period(start, add_interval(start, plan.billing_interval, plan.interval_count)), quantity, field=field
        )

    async def _add_prorations(self, subscription: Subscription, change: Change) -> None:
        """Credit the unused time of what the period was billed at and charge the rest of it at the
        new plan and quantity, as pending invoice items: the next invoice takes them
        (docs/concepts/subscriptions.md)."""
        self.repository.add_items(subscription, proration_lines(change))

    async def preview(self, subscription_id: int, data: SubscriptionUpdate) -> InvoicePreview:
        """What ``update`` with ``data`` would bill, computed the same way; nothing is written. A
        subscription whose period has ended is previewed as ``update`` would find it, its ended
        periods billed first: in a savepoint rolled back after."""
        subscription = await self.get(subscription_id)
        if not due(subscription, await self._now(subscription)):
            return await self._preview(subscription, data)
        async with self.session.begin_nested() as savepoint:
            locked = await self.repository.locked(subscription_id)
            if locked is None:
                raise NotFoundException(f"no subscription {subscription_id}")
            answer = await self._preview(await self._caught_up(locked, announcing=False), data)
            await savepoint.rollback()
        return answer

    async def _preview(self, subscription: Subscription, data: SubscriptionUpdate) -> InvoicePreview:
        if self.mirror.bills_subscriptions(subscription.provider):
            raise ConflictError(
                f"{subscription.provider} bills subscription {subscription.id}: the invoice a change produces is "
                "the provider's to show"
            )
        change = await self._checked(subscription, data)
        transitions.check("change", subscription.status)
        current = await self.repository.plan(subscription.plan_id)
        start, end = subscription.current_period_start, subscription.current_period_end
        if current is None or start is None or end is None:
            raise ConflictError("the subscription has no current period to prorate")
        new, quantity = (current, subscription.quantity) if change is None else (change.new, change.quantity)
        billed, billed_quantity = (current, subscription.quantity) if change is None else change.billed
        at = change.at if change is not None else min(max(await self._now(subscription), start), end)
        proration = data.proration
        if proration != "at_period_end" and (change is None or not change.prorated):
            proration = "none"  # what the change writes: no prorations (nothing changes, or a trial)
        try:
            return preview(
                PlanPricing.of(billed),
                PlanPricing.of(new),
                period=Period(start, end),
                at=at,
                proration=proration,
                current_quantity=billed_quantity,
                new_quantity=quantity,
                interval=(new.billing_interval, new.interval_count),
                anchor=subscription.billing_cycle_anchor,
            )
        except PricingError as exc:
            raise InvalidFieldError("plan_id", str(exc)) from exc

    async def cancel(self, subscription_id: int, data: SubscriptionCancel) -> Subscription:
        subscription = await self._locked(subscription_id, ending=not data.at_period_end)
        transitions.check("cancel", subscription.status)
        final = None
        if data.at_period_end and subscription.status != "incomplete":
            if data.invoice_now:
                raise InvalidFieldError(
                    "invoice_now",
                    "a cancellation at the period end invoices the last usage then; invoice_now ends it now",
                )
            if subscription.cancel_at_period_end:
                # Scheduled already: nothing changes, so no event; the row is queued again all the
                # same, as a cancellation whose row failed is then sent again.
                await self.mirror.subscription_changed(subscription, "subscription.cancel")
                await self.session.flush()
                await self.session.refresh(subscription)  # timestamps the database set
                return subscription
            subscription.cancel_at_period_end = True
            event = "subscription.updated"
        else:  # an incomplete one has no period worth keeping: it ends now
            now = await self._now(subscription)
            if data.invoice_now:
                final = await self._last_invoice(subscription, now)
            subscription.status, subscription.canceled_at, subscription.ended_at = "canceled", now, now
            subscription.cancel_at_period_end = False
            subscription.next_action_type = subscription.next_action_url = None
            subscription.pending_plan_id = subscription.pending_quantity = None
            event = "subscription.canceled"
        await self.mirror.subscription_changed(subscription, "subscription.cancel")
        await self._emitted(event, subscription)
        if final is not None:
            invoice, lines, items = final
            await self._issue(invoice, lines)
            await self._taken(invoice, items)
        if subscription.status == "canceled" and not self.mirror.bills_subscriptions(subscription.provider):
            await self.session.flush()
            await release_credits(await driver_of(self.session), [subscription.id])
        return subscription

    async def undo_cancel(self, subscription_id: int) -> Subscription:
        """Take back a cancellation scheduled for the period's end: it renews as before."""
        subscription = await self._locked(subscription_id)
        transitions.check("undo_cancel", subscription.status)
        if not subscription.cancel_at_period_end:
            raise ConflictError(f"subscription {subscription_id} has no cancellation to take back")
        if subscription.provider_account_id is not None:
            await self.mirror.refuse_without_capability(
                subscription.provider_account_id, Capability.UNDO_CANCEL, "take back the cancellation of"
            )
        subscription.cancel_at_period_end = False
        await self.mirror.subscription_changed(subscription, "subscription.undo_cancel")
        return await self._emitted("subscription.updated", subscription)

    async def _taken(self, invoice: Invoice, items: list[InvoiceItem]) -> None:
        for item in items:
            item.invoice_id = invoice.id
        await self.session.flush()

    async def _last_invoice(
        self, subscription: Subscription, now: datetime
    ) -> tuple[Invoice, list[InvoiceLine], list[InvoiceItem]] | None:
        """The invoice ``invoice_now`` issues, its lines and the pending items it takes (None:
        nothing is owed)."""
        if self.mirror.bills_subscriptions(subscription.provider):
            raise InvalidFieldError(
                "invoice_now", f"{subscription.provider} bills this subscription: its last invoice is the provider's"
            )
        plan = await self.repository.plan(subscription.plan_id)
        start = subscription.current_period_start
        if plan is None or start is None:
            return None
        lines, items = await last_usage(self.session, subscription, plan, now)
        if not lines and not items:
            return None
        return *subscription_invoice(subscription, "subscription_update", (start, now), lines, items), items

    async def _issue(self, invoice: Invoice, lines: list[InvoiceLine]) -> None:
        await InvoiceLifecycle(self.session, lambda: self.mirror.writer).issue(invoice, lines)

    async def pause(self, subscription_id: int, data: SubscriptionPause) -> Subscription:
        subscription = await self._locked(subscription_id)
        transitions.check("pause", subscription.status)
        if subscription.provider_account_id is not None:
            await self.mirror.refuse_without_capability(subscription.provider_account_id, Capability.PAUSE, "pause")
        now = await self._now(subscription)
        if data.resume_at is not None and checked_time(data.resume_at, "resume_at") <= now:
            raise InvalidFieldError("resume_at", "must be in the future")
        subscription.status, subscription.paused_at, subscription.resume_at = "paused", now, data.resume_at
        await self.mirror.subscription_changed(subscription, "subscription.pause")
        return await self._emitted("subscription.paused", subscription)

    async def resume(self, subscription_id: int) -> Subscription:
        subscription = await self._locked(subscription_id)
        transitions.check("resume", subscription.status)
        now = await self._now(subscription)
        in_trial = subscription.trial_end is not None and now < subscription.trial_end
        start, end = subscription.current_period_start, subscription.current_period_end
        # Paused before this period began: its boundary billed nothing in advance, so what is left
        # of it is billed now (else it would be free, and a later proration would credit it).
        unbilled = subscription.paused_at is not None and start is not None and subscription.paused_at < start
        subscription.status = "trialing" if in_trial else "active"
        subscription.paused_at = subscription.resume_at = None
        await self.mirror.subscription_changed(subscription, "subscription.resume")
        await self._emitted("subscription.resumed", subscription)
        if unbilled and not in_trial and start is not None and end is not None and start <= now < end:
            await self._bill_rest(subscription, Period(start, end), now)
        return subscription

    async def _bill_rest(self, subscription: Subscription, period: Period, now: datetime) -> None:
        if self.mirror.bills_subscriptions(subscription.provider):
            return
        plan = await self.repository.plan(subscription.plan_id)
        if plan is None:
            return
        lines = remaining_time(PlanPricing.of(plan), period, now, subscription.quantity)
        if lines:
            await self._issue(*subscription_invoice(subscription, "subscription_update", (now, period.end), lines, []))

    async def sync(self, subscription_id: int) -> Subscription:
        """Mirror the subscription to its provider account (or the tenant's default one) again, now.
        Locked: a usage batch storing records of it (FOR SHARE) either commits first, and counts
        as billed here, or waits, and then finds the subscription mirrored."""
        subscription = await self.repository.locked(subscription_id)
        if subscription is None:
            raise NotFoundException(f"no subscription {subscription_id}")
        if subscription.provider_account_id is None and self.sync_service is not None:
            account = await self.mirror.account_for_new_subscription(None)
            provider = None if account is None else await self.mirror.provider_of(account)
            if self.mirror.bills_subscriptions(provider) and await self.repository.billed_here(subscription.id):
                # Mirrored there, it would be billed there from now on: for a period billplane has
                # billed already (the customer would pay twice), and never for the usage billplane holds.
                raise ConflictError(
                    f"billplane bills this subscription, and {provider} bills the subscriptions it holds: "
                    f"mirrored to account {account}, its current period would be billed twice or its usage "
                    "never. Cancel it and create a new one (it then goes to that account)"
                )
        if self.sync_service is not None:
            await self.sync_service.sync_subscription(subscription)
        return await self.repository.update(subscription)

    async def page(
        self, filters: SubscriptionFilters, *, after: int | None, limit: int
    ) -> tuple[list[Subscription], str | None]:
        if filters.status is not None and filters.status not in SUBSCRIPTION_STATUSES:
            raise InvalidFieldError("status", f"must be one of {', '.join(SUBSCRIPTION_STATUSES)}", source="query")
        rows = await self.repository.page_matching(filters, after=after, limit=limit)
        return page_of(rows, limit)

    async def _now(self, subscription: Subscription) -> datetime:
        customer = await self.repository.live_customer(subscription.customer_id)
        return await customer_now(self.session, None if customer is None else customer.test_clock_id)

    async def _emitted(
        self, event: str, subscription: Subscription, *, unless_as: SubscriptionView | None = None
    ) -> Subscription:
        """``event`` for ``subscription``; none when the API shows it as ``unless_as`` (a request
        sending the values it has already changed nothing)."""
        await self.session.flush()
        await self.session.refresh(subscription)  # timestamps the database set
        after = SubscriptionView.of(subscription)
        if unless_as is None or changed(unless_as, after):
            await emit(self.session, event, "subscription", subscription.id, after)
        return subscription


def _target(subscription: Subscription, data: SubscriptionUpdate) -> tuple[int, int]:
    """The plan and quantity ``data`` asks for. A change at the period's end adds to the one
    scheduled already: what it leaves out keeps its scheduled value (a quantity sent after a plan
    was scheduled moves to that plan), not its current one."""
    changes = data.changes()
    scheduled = data.proration == "at_period_end"
    plan_id = (scheduled and subscription.pending_plan_id) or subscription.plan_id
    quantity = (scheduled and subscription.pending_quantity) or subscription.quantity
    return changes.get("plan_id", plan_id), changes.get("quantity", quantity)
