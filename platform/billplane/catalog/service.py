"""Product and plan rules. Never commits: the request owns the transaction, so a change, its
event (``product.created``, ``.updated``, ``.deleted``, the same for plans) and the outbox rows
that mirror it to providers commit together or not at all. Archiving is an update (``active``
false), as the API makes it a PATCH."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import cached_property
from typing import cast

from litestar.exceptions import NotFoundException
from sqlalchemy.ext.asyncio import AsyncSession

from billplane.api.pagination import page_of
from billplane.api.problems import ConflictError, FieldErrors
from billplane.catalog.models import Plan, PlanFeature, PricingTier, Product
from billplane.catalog.repository import Lock, PlanFilters, PlanRepository, ProductFilters, ProductRepository
from billplane.catalog.schemas import Plan as PlanView
from billplane.catalog.schemas import (
    PlanCreate,
    PlanUpdate,
    PricingTierCreate,
    ProductCreate,
    ProductUpdate,
)
from billplane.catalog.schemas import Product as ProductView
from billplane.catalog.validation import (
    TERM_FIELDS,
    PlanTerms,
    ProposedTerms,
    TierTerms,
    check_features,
    checked_terms,
)
from billplane.events import types
from billplane.events.changes import changed
from billplane.events.emit import emit
from billplane.money.decimals import decimal_text
from billplane.sync.service import SyncService


class ProductService:
    def __init__(self, repository: ProductRepository, sync: Callable[[], SyncService]) -> None:
        self.repository = repository
        self._sync = sync

    @cached_property
    def sync_service(self) -> SyncService:
        return self._sync()  # built on first use: reads never need it

    async def create(self, data: ProductCreate) -> Product:
        product = Product(name=data.name, description=data.description, active=data.active, metadata_=data.metadata)
        product = await self.repository.add(product)
        await self._emit(types.PRODUCT_CREATED, product.id, ProductView.of(product))
        return product

    async def get(self, product_id: int, *, lock: Lock = None) -> Product:
        product = await self.repository.find(product_id, lock=lock)
        if product is None:  # another tenant's id looks exactly like an id that never existed
            raise NotFoundException(f"no product {product_id}")
        return product

    async def update(self, product_id: int, data: ProductUpdate) -> Product:
        """`active=false` archives: existing plans keep working, new plans cannot be made on it."""
        product = await self.get(product_id)
        before = ProductView.of(product)
        changes = data.changes()
        for field, value in changes.items():
            setattr(product, "metadata_" if field == "metadata" else field, value)
        await self.sync_service.product_changed(product, _changed_fields(before, changes))
        product = await self.repository.update(product)
        shown = ProductView.of(product)
        if changed(before, shown):  # else: no change, no event
            await self._emit(types.PRODUCT_UPDATED, product.id, shown)
        return product

    async def delete(self, product_id: int) -> None:
        # FOR UPDATE: a plan being created on this product right now waits for us, or we see it.
        product = await self.get(product_id, lock="update")
        if await self.repository.has_plans(product_id):
            raise ConflictError("the product has plans: archive it instead (PATCH active=false)")
        shown = ProductView.of(product)  # the event's data: the product as last shown
        await self.repository.remove(product)
        await self._emit(types.PRODUCT_DELETED, product_id, shown)

    async def _emit(self, type_: str, product_id: int, shown: ProductView) -> None:
        await emit(_session_of(self.repository), type_, types.PRODUCT_OBJECT, product_id, shown)

    async def page(self, filters: ProductFilters, *, after: int | None, limit: int) -> tuple[list[Product], str | None]:
        rows = await self.repository.page_filtered(filters, after=after, limit=limit)
        return page_of(rows, limit)

    async def sync(self, product_id: int) -> Product:
        """Send the product as it is to every account that has it again (``POST .../sync``)."""
        product = await self.get(product_id)
        await self.sync_service.resend_product(product)
        return await self.repository.update(product)


class PlanService:
    def __init__(
        self, repository: PlanRepository, products: ProductRepository, sync: Callable[[], SyncService]
    ) -> None:
        self.repository = repository
        self.products = products
        self._sync = sync

    @cached_property
    def sync_service(self) -> SyncService:
        return self._sync()

    async def create(self, data: PlanCreate) -> Plan:
        errors = FieldErrors()
        # FOR SHARE: the product cannot be archived or deleted until this plan is committed.
        product = await self.products.find(data.product_id, lock="share")
        if product is None:
            errors.add("product_id", "no such product")
        elif not product.active:
            errors.add("product_id", "the product is archived: new plans cannot be made on it")
        proposed = ProposedTerms(
            pricing_model=data.pricing_model,
            amount=data.amount,
            currency=data.currency,
            billing_interval=data.billing_interval,
            interval_count=data.interval_count,
            package_size=data.package_size,
            usage_aggregation=data.usage_aggregation,
            tiers=data.tiers,
        )
        terms = checked_terms(proposed, errors)
        check_features(data.features, errors)
        errors.raise_any()
        plan = Plan(
            product_id=data.product_id,
            name=data.name,
            description=data.description,
            trial_period_days=data.trial_period_days,
            active=data.active,
            metadata_=data.metadata,
            tiers=_tier_rows(terms.tiers),
            features=[PlanFeature(key=item.key, value=item.value, limit=item.limit) for item in data.features],
        )
        _set_terms(plan, terms)
        plan = await self.repository.add(plan)
        await self._emit(types.PLAN_CREATED, plan.id, PlanView.of(plan))
        return plan

    async def get(self, plan_id: int, *, lock: Lock = None) -> Plan:
        plan = await self.repository.find(plan_id, lock=lock)
        if plan is None:  # another tenant's id looks exactly like an id that never existed
            raise NotFoundException(f"no plan {plan_id}")
        return plan

    async def update(self, plan_id: int, data: PlanUpdate) -> Plan:
        """Name, description, active and metadata always change; the price only while nobody uses the plan."""
        changes = data.changes()
        price_changes = {field: value for field, value in changes.items() if field in TERM_FIELDS}
        # FOR UPDATE: a subscription being made on this plan right now waits for us, or we see it.
        plan = await self.get(plan_id, lock="update" if price_changes else None)
        before = PlanView.of(plan)
        if price_changes:
            errors = FieldErrors()
            terms = checked_terms(replace(_proposed_of(plan), **price_changes), errors)
            errors.raise_any()
            current = _terms_of(plan)
            if terms != current:  # sending the price it already has is not a change
                if await self.repository.has_subscriptions(plan_id):
                    raise ConflictError("the plan is in use; create a new plan instead")
                _set_terms(plan, terms)
                if terms.tiers != current.tiers:
                    await self.repository.replace_tiers(plan, _tier_rows(terms.tiers))
        others = {field: value for field, value in changes.items() if field not in TERM_FIELDS}
        for field, value in others.items():
            setattr(plan, "metadata_" if field == "metadata" else field, value)
        await self.sync_service.plan_changed(plan, _changed_fields(before, others))
        plan = await self.repository.update(plan)
        shown = PlanView.of(plan)
        if changed(before, shown):  # else: no change, no event
            await self._emit(types.PLAN_UPDATED, plan.id, shown)
        return plan

    async def delete(self, plan_id: int) -> None:
        plan = await self.get(plan_id, lock="update")
        if await self.repository.is_referenced(plan_id):
            raise ConflictError(
                "the plan is used by subscriptions or invoices: archive it instead (PATCH active=false)"
            )
        shown = PlanView.of(plan)  # the event's data: the plan as last shown
        await self.repository.remove(plan)
        await self._emit(types.PLAN_DELETED, plan_id, shown)

    async def page(self, filters: PlanFilters, *, after: int | None, limit: int) -> tuple[list[Plan], str | None]:
        rows = await self.repository.page_filtered(filters, after=after, limit=limit)
        return page_of(rows, limit)

    async def sync(self, plan_id: int) -> Plan:
        """Send the plan's price, active or not, to every account that has it again (``POST .../sync``)."""
        plan = await self.get(plan_id)
        await self.sync_service.resend_plan(plan)
        return await self.repository.update(plan)

    async def _emit(self, type_: str, plan_id: int, shown: PlanView) -> None:
        await emit(_session_of(self.repository), type_, types.PLAN_OBJECT, plan_id, shown)


def _changed_fields(before: ProductView | PlanView, changes: dict[str, object]) -> set[str]:
    """The fields a PATCH gave another value than they had (sending the same value changes nothing)."""
    return {field for field, value in changes.items() if getattr(before, field) != value}


def _session_of(repository: ProductRepository | PlanRepository) -> AsyncSession:
    # The request's session: repositories are built on it, never on a scoped session.
    return cast("AsyncSession", repository.session)


def _tier_rows(tiers: tuple[TierTerms, ...]) -> list[PricingTier]:
    return [
        PricingTier(position=position, up_to=tier.up_to, unit_amount=tier.unit_amount, flat_amount=tier.flat_amount)
        for position, tier in enumerate(tiers)
    ]


def _set_terms(plan: Plan, terms: PlanTerms) -> None:
    plan.pricing_model = terms.pricing_model
    plan.amount = terms.amount
    plan.currency = terms.currency
    plan.billing_interval = terms.billing_interval
    plan.interval_count = terms.interval_count
    plan.package_size = terms.package_size
    plan.usage_aggregation = terms.usage_aggregation


def _terms_of(plan: Plan) -> PlanTerms:
    return PlanTerms(
        pricing_model=plan.pricing_model,
        amount=plan.amount,
        currency=plan.currency,
        billing_interval=plan.billing_interval,
        interval_count=plan.interval_count,
        package_size=plan.package_size,
        usage_aggregation=plan.usage_aggregation,
        tiers=tuple(TierTerms(tier.up_to, tier.unit_amount, tier.flat_amount) for tier in plan.tiers),
    )


def _proposed_of(plan: Plan) -> ProposedTerms:
    """The plan's stored price as a request would state it, for a PATCH to be applied to and checked."""
    tiers = [
        PricingTierCreate(
            up_to=tier.up_to, unit_amount_decimal=decimal_text(tier.unit_amount), flat_amount=tier.flat_amount
        )
        for tier in plan.tiers
    ]
    return ProposedTerms(
        pricing_model=plan.pricing_model,
        amount=plan.amount,
        currency=plan.currency,
        billing_interval=plan.billing_interval,
        interval_count=plan.interval_count,
        package_size=plan.package_size,
        usage_aggregation=plan.usage_aggregation,
        tiers=tiers or None,
    )
