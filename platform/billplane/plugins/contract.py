"""The adapter contract: what billplane asks of a payment provider, in msgspec value types.

billplane owns the billing state; a provider moves money and mirrors that state. Every method
that changes something at the provider takes an ``idempotency_key`` chosen by billplane (derived
from the outbox row that asked for the call), which the adapter must pass on to the provider
(Stripe ``Idempotency-Key``, PayPal ``PayPal-Request-Id``) so that a retried call never creates a
second object or a second charge. Money is integer minor units plus an ISO 4217 code; fractional
tier prices are ``Decimal`` in minor units.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable

import msgspec

Mode = Literal["test", "live"]
PricingModel = Literal["flat", "per_seat", "tiered", "volume", "package", "metered"]
BillingInterval = Literal["day", "week", "month", "year"]
SubscriptionStatus = Literal["trialing", "active", "past_due", "paused", "canceled", "unpaid", "incomplete"]
ProrationPolicy = Literal["immediate", "period_end", "none"]
ChargeStatus = Literal["succeeded", "pending", "failed"]
RefundStatus = Literal["succeeded", "pending", "failed"]
InvoiceStatus = Literal["draft", "open", "paid", "void", "uncollectible"]


class Capability(StrEnum):
    """What a provider can do; billplane never asks an adapter for what it did not declare."""

    CUSTOMERS = "customers"
    CATALOG = "catalog"
    SUBSCRIPTIONS = "subscriptions"
    PAUSE = "pause"
    CHARGES = "charges"
    REFUNDS = "refunds"
    WEBHOOKS = "webhooks"
    USAGE = "usage"  # metered usage is reported to the provider, which bills it (``report_usage``)
    # ``find_payment``: asks whether a charge billplane could not confirm reached the provider.
    PAYMENT_LOOKUP = "payment_lookup"
    # ``charge_status``: a charge the provider answered ``pending`` (it has its id), as it stands now.
    PAYMENT_STATUS = "payment_status"
    # ``refund_status``: a refund the provider answered ``pending`` (it has its id), as it stands now.
    REFUND_STATUS = "refund_status"
    # ``find_refund``: asks whether a refund billplane could not confirm reached the provider.
    REFUND_LOOKUP = "refund_lookup"
    # ``undo_cancel``: takes back a cancellation scheduled for the period's end.
    UNDO_CANCEL = "undo_cancel"
    # ``attach_payment_method``: a payment method the provider already holds (a token its own
    # client-side form made), made chargeable off-session for one customer; ``detach_payment_method``:
    # no longer (both on ``PaymentMethodAdapter``).
    PAYMENT_METHODS = "payment_methods"
    # ``update_product``: a product renamed, described or archived in billplane, as the provider
    # shows it; ``set_price_active``: a plan archived (or made active again), so that the provider
    # starts no new subscription on its price (both on ``CatalogUpdateAdapter``).
    CATALOG_UPDATES = "catalog_updates"
    # ``update_subscription_metadata``: a subscription's metadata edited in billplane, as the
    # provider shows it (on ``SubscriptionMetadataAdapter``).
    SUBSCRIPTION_METADATA = "subscription_metadata"


class AdapterContext(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one adapter instance may use: one tenant's one provider account.

    ``credentials`` is an instance of the plugin's ``credentials_type``, already validated and
    decrypted. ``options`` holds the plugin's operator settings (``BILLPLANE_PROVIDER_<NAME>_<KEY>``
    environment variables, keys lower-case), such as an API base URL for a local fake.
    """

    tenant_id: int
    account_id: int
    mode: Mode
    credentials: msgspec.Struct
    webhook_secret: str | None = None
    options: Mapping[str, str] = msgspec.field(default_factory=dict)
    # The secret replaced by the last change of webhook_secret, for a day: webhooks signed with
    # either verify while the provider's side of a rotation catches up.
    previous_webhook_secret: str | None = None

    def __repr__(self) -> str:  # never print credentials or the secret, even in a traceback
        return f"AdapterContext(tenant_id={self.tenant_id}, account_id={self.account_id}, mode={self.mode!r}, ...)"


class ProviderRef(msgspec.Struct, frozen=True, kw_only=True):
    """The id an object has at the provider."""

    provider_id: str


class CustomerData(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: int
    email: str | None
    name: str | None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class ProductData(msgspec.Struct, frozen=True, kw_only=True):
    product_id: int
    name: str
    description: str | None = None
    active: bool = True


class TierData(msgspec.Struct, frozen=True, kw_only=True):
    up_to: int | None
    unit_amount: Decimal
    flat_amount: int = 0


class PriceData(msgspec.Struct, frozen=True, kw_only=True):
    """A billplane plan as a provider price; ``amount`` for flat/per_seat/package/metered."""

    plan_id: int
    provider_product_id: str
    pricing_model: PricingModel
    currency: str
    billing_interval: BillingInterval
    interval_count: int = 1
    amount: int | None = None
    tiers: list[TierData] = msgspec.field(default_factory=list)
    package_size: int | None = None
    usage_aggregation: Literal["sum", "max", "last"] | None = None
    trial_period_days: int | None = None


class SubscriptionData(msgspec.Struct, frozen=True, kw_only=True):
    """A subscription to start. ``return_url``/``cancel_url``: where a provider that needs the
    customer's approval (PayPal) sends the customer back afterwards; ``None`` uses the adapter's default."""

    subscription_id: int
    provider_customer_id: str
    provider_price_id: str
    quantity: int = 1
    trial_end: datetime | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    return_url: str | None = None
    cancel_url: str | None = None


class SubscriptionChange(msgspec.Struct, frozen=True, kw_only=True):
    """A plan or quantity change; ``None`` leaves that part as it is."""

    provider_price_id: str | None = None
    quantity: int | None = None
    proration: ProrationPolicy = "immediate"


class ProviderPaymentMethod(msgspec.Struct, frozen=True, kw_only=True):
    """What billplane keeps of a payment method: never a card number, only what identifies it to
    a person (``type`` such as ``card`` or ``sepa_debit``, brand, last 4 digits, expiry)."""

    provider_payment_method_id: str
    type: str = "card"
    brand: str | None = None
    last4: str | None = None
    exp_month: int | None = None
    exp_year: int | None = None
    # In a ``payment_method.*`` event: the customer it is attached to at the provider (None once
    # detached). Left None in ``attach_payment_method``'s answer, whose customer billplane named.
    provider_customer_id: str | None = None


class NextAction(msgspec.Struct, frozen=True, kw_only=True):
    """What the customer must do before the subscription starts, such as approving it at PayPal.

    billplane shows it on the subscription (``next_action``) for the tenant to forward.
    """

    type: Literal["redirect"]
    url: str


class ProviderSubscription(msgspec.Struct, frozen=True, kw_only=True):
    """A subscription as the provider sees it. ``incomplete`` with a ``next_action``: waiting for
    the customer (billplane expires it after a while, see docs/concepts/sync.md)."""

    provider_id: str
    status: SubscriptionStatus
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    canceled_at: datetime | None = None
    trial_end: datetime | None = None
    quantity: int | None = None
    next_action: NextAction | None = None


class ChargeRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Charge ``amount`` off-session.

    ``payment_method``: the provider's token; ``None`` charges the customer's default payment
    method at the provider. ``provider_invoice_id``: pay this open invoice at the provider instead
    of a one-off amount (``amount`` is then what billplane expects it to be). ``provider_subscription_id``:
    collect the subscription's outstanding balance (providers without invoices, such as PayPal).
    """

    payment_id: int
    amount: int
    currency: str
    payment_method: str | None = None
    provider_customer_id: str | None = None
    description: str | None = None
    provider_invoice_id: str | None = None
    provider_subscription_id: str | None = None


class ChargeResult(msgspec.Struct, frozen=True, kw_only=True):
    """A charge's outcome. ``failure_code``: the provider's decline code when it gave one.

    In webhook events of payments billplane did not start (a provider-billed subscription's
    renewal), ``amount``, ``currency`` and the provider ids let billplane record the payment.
    """

    provider_payment_id: str
    status: ChargeStatus
    failure_code: str | None = None
    failure_message: str | None = None
    amount: int | None = None
    currency: str | None = None
    provider_customer_id: str | None = None
    provider_invoice_id: str | None = None
    provider_subscription_id: str | None = None
    # billplane's payment id, when the charge carries it back (Stripe: the PaymentIntent's
    # metadata). A webhook about a charge whose own answer never reached billplane then settles
    # that payment instead of recording the money a second time.
    billplane_payment_id: int | None = None


class RefundRequest(msgspec.Struct, frozen=True, kw_only=True):
    refund_id: int
    provider_payment_id: str
    amount: int
    currency: str
    reason: str | None = None


class RefundResult(msgspec.Struct, frozen=True, kw_only=True):
    """A refund's outcome; in webhook events also the refunded payment, amount and currency."""

    provider_refund_id: str
    status: RefundStatus
    failure_message: str | None = None
    provider_payment_id: str | None = None
    amount: int | None = None
    currency: str | None = None
    # In webhook events: billplane's refund id, when the provider reports what billplane sent with
    # the refund (Stripe: the refund's metadata). A refund whose answer was lost is then settled,
    # not recorded a second time.
    billplane_refund_id: int | None = None


class UsageReport(msgspec.Struct, frozen=True, kw_only=True):
    """One usage record of a metered subscription, for a provider that bills usage itself.

    ``usage_record_id`` is unique per tenant and never reused: the provider must count a report
    with the same id once (Stripe: the meter event ``identifier``), whatever the idempotency key.
    """

    usage_record_id: int
    plan_id: int
    provider_subscription_id: str
    provider_customer_id: str
    provider_price_id: str
    quantity: int
    timestamp: datetime


class ProviderInvoice(msgspec.Struct, frozen=True, kw_only=True):
    """An invoice the provider issued for a subscription it bills (amounts in minor units)."""

    provider_id: str
    status: InvoiceStatus
    currency: str
    total: int
    amount_paid: int = 0
    amount_due: int = 0
    provider_customer_id: str | None = None
    provider_subscription_id: str | None = None
    provider_payment_id: str | None = None
    number: str | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    failure_code: str | None = None
    failure_message: str | None = None


EventType = Literal[
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "subscription.updated",
    "subscription.canceled",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.voided",
    "invoice.marked_uncollectible",
    "payment.succeeded",
    "payment.failed",
    "refund.updated",
    "payment_method.attached",
    "payment_method.updated",
    "payment_method.detached",
]


class ProviderEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One verified webhook event, normalized.

    ``event_id`` is the provider's own id (billplane stores each once per account).
    ``occurred_at`` orders events per object: one older than what was already applied to that
    object is ignored. The payload matching the type is set: ``subscription`` for
    ``subscription.*``, ``invoice`` for ``invoice.*``, ``payment`` for ``payment.*``, ``refund``
    for ``refund.*``, ``payment_method`` for ``payment_method.*`` (a method attached to a customer
    at the provider itself, such as in Stripe's Dashboard, its details changed, or detached there).
    ``provider_type`` is the provider's own name for the event, kept for people.
    """

    event_id: str
    type: EventType
    occurred_at: datetime
    provider_object_id: str
    provider_type: str | None = None
    subscription: ProviderSubscription | None = None
    invoice: ProviderInvoice | None = None
    payment: ChargeResult | None = None
    refund: RefundResult | None = None
    payment_method: ProviderPaymentMethod | None = None


@runtime_checkable
class ProviderAdapter(Protocol):
    """One tenant's connection to one provider account. Methods raise the errors in ``errors``."""

    async def check_credentials(self) -> None:
        """Make one harmless call with the credentials; raise ``InvalidCredentialsError`` if refused."""

    async def ensure_customer(self, customer: CustomerData, *, idempotency_key: str) -> ProviderRef:
        """Create the customer at the provider (the same key returns the same object)."""

    async def update_customer(self, provider_customer_id: str, customer: CustomerData, *, idempotency_key: str) -> None:
        """Mirror a change of email, name or metadata."""

    async def delete_customer(self, provider_customer_id: str, *, idempotency_key: str) -> None:
        """Delete (or archive) the customer at the provider; a customer already gone is not an error."""

    async def ensure_product(self, product: ProductData, *, idempotency_key: str) -> ProviderRef:
        """Create the product at the provider."""

    async def ensure_price(self, price: PriceData, *, idempotency_key: str) -> ProviderRef:
        """Create the price/plan; ``UnsupportedOperationError`` for a pricing model the provider lacks."""

    async def create_subscription(
        self, subscription: SubscriptionData, *, idempotency_key: str
    ) -> ProviderSubscription:
        """Start a subscription for a provider customer on a provider price.

        Under a new key for a ``subscription_id`` an earlier call may have started (its answers
        were lost), return that subscription if the provider can find it, rather than a second.
        """

    async def update_subscription(
        self, provider_subscription_id: str, change: SubscriptionChange, *, idempotency_key: str
    ) -> ProviderSubscription:
        """Change plan or quantity with the given proration policy."""

    async def cancel_subscription(
        self, provider_subscription_id: str, *, at_period_end: bool, idempotency_key: str
    ) -> ProviderSubscription:
        """Cancel now, or at the end of the current period."""

    async def pause_subscription(self, provider_subscription_id: str, *, idempotency_key: str) -> ProviderSubscription:
        """Pause collection; ``UnsupportedOperationError`` without the ``pause`` capability."""

    async def resume_subscription(self, provider_subscription_id: str, *, idempotency_key: str) -> ProviderSubscription:
        """Resume a paused subscription."""

    async def charge(self, request: ChargeRequest, *, idempotency_key: str) -> ChargeResult:
        """Charge a stored payment method; a decline is a ``failed`` result, not an exception."""

    async def refund(self, request: RefundRequest, *, idempotency_key: str) -> RefundResult:
        """Refund all or part of a payment."""

    async def report_usage(self, usage: UsageReport, *, idempotency_key: str) -> None:
        """Report metered usage; ``UnsupportedOperationError`` without the ``usage`` capability."""

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[ProviderEvent]:
        """Verify the webhook with the account's webhook secret and normalize the events.

        Raise ``WebhookVerificationError`` for a bad signature, an old timestamp or a malformed
        body (billplane answers 400 and stores nothing). Header names are lower-case. Verify
        locally when the provider's scheme allows it; a provider that verifies by asking its own
        API (PayPal's ``verify-webhook-signature``) may call it, with a short timeout, and raise
        ``RetryableProviderError`` when it cannot be reached (billplane answers 503 so that the
        provider delivers again). Event types the adapter does not map are left out of the list.
        """


@runtime_checkable
class PaymentLookupAdapter(Protocol):
    """What an adapter adds when its plugin declares the ``payment_lookup`` capability.

    Kept apart from ``ProviderAdapter`` so that adapters written before it stay whole: billplane
    calls ``find_payment`` only on an adapter whose plugin declares the capability.
    """

    async def find_payment(
        self, request: ChargeRequest, *, idempotency_key: str, created_after: datetime
    ) -> ChargeResult | None:
        """The charge ``charge(request, idempotency_key=...)`` made, if the provider has it.

        Asked only with the ``payment_lookup`` capability, about a charge whose every attempt
        ended without an answer (the provider was unreachable, or the answer was lost). The
        request is the one ``charge`` was sent; ``created_after`` is a moment before the first
        attempt, so the search can be bounded. Answer with the charge's current state, or
        ``None`` when the provider has no such charge: billplane then records that no money
        moved and charges again later with a new key, so ``None`` must be certain. Use a
        strongly consistent read (not an eventually consistent search index); billplane asks
        only once the last attempt is several minutes old. Match ``request.payment_id`` (carry
        it in the charge's metadata) or the idempotency key, never the amount alone. Raise
        ``RetryableProviderError`` when the provider cannot be reached: billplane asks again later.
        """


@runtime_checkable
class PaymentStatusAdapter(Protocol):
    """What an adapter adds when its plugin declares the ``payment_status`` capability."""

    async def charge_status(self, provider_payment_id: str) -> ChargeResult | None:
        """The charge with this provider id as it stands now: ``succeeded``, ``failed`` or still
        ``pending``.

        Asked about a payment the provider answered ``pending`` (Stripe's ``processing``) whose
        outcome has not arrived by webhook for a while, so that a lost webhook does not leave the
        payment, and its invoice, waiting for ever. Read the object by its id (a strongly
        consistent read). ``None`` when the provider has no charge with this id, or the id is of a
        kind the adapter cannot read: billplane then settles nothing and asks again later; a payment
        nothing settles within ``BILLPLANE_PAYMENT_PENDING_FLAG_HOURS`` is shown to the tenant.
        Raise ``RetryableProviderError`` when the provider cannot be reached.
        """


@runtime_checkable
class RefundStatusAdapter(Protocol):
    """What an adapter adds when its plugin declares the ``refund_status`` capability."""

    async def refund_status(self, provider_refund_id: str) -> RefundResult | None:
        """The refund with this provider id as it stands now: ``succeeded``, ``failed`` or still
        ``pending``.

        Asked about a refund the provider answered ``pending`` (Stripe's refunds to bank accounts
        and some cards) whose outcome has not arrived by webhook for a while: until it settles,
        its amount stays reserved on the payment, and a refund that failed at the provider would
        leave the customer without the money and the tenant unable to refund it again. Read the
        refund by its id (a strongly consistent read). ``None`` when the provider has no refund
        with this id: billplane then settles nothing and asks again later; a refund nothing
        settles within ``BILLPLANE_PAYMENT_PENDING_FLAG_HOURS`` is shown to the tenant. Raise
        ``RetryableProviderError`` when the provider cannot be reached.
        """


@runtime_checkable
class RefundLookupAdapter(Protocol):
    """What an adapter adds when its plugin declares the ``refund_lookup`` capability."""

    async def find_refund(
        self, request: RefundRequest, *, idempotency_key: str, created_after: datetime
    ) -> RefundResult | None:
        """The refund ``refund(request, idempotency_key=...)`` made, if the provider has it.

        Asked only with the ``refund_lookup`` capability, about a refund billplane could not
        confirm: every attempt ended without an answer, or was refused after one that may have
        refunded. The request is the one ``refund`` was sent; ``created_after`` is a moment before
        the first attempt, so the search can be bounded. Answer with the refund's current state,
        or ``None`` when the provider has no such refund of ``request.provider_payment_id``:
        billplane then records that no money went back (the refund fails and its amount can be
        refunded again), so ``None`` must be certain. Use a strongly consistent read (not an
        eventually consistent search index); billplane asks only once the last attempt is several
        minutes old. Match ``request.refund_id`` (carry it in the refund's metadata) or the
        idempotency key among the payment's refunds, never the amount alone. Raise
        ``RetryableProviderError`` when the provider cannot be reached: billplane asks again later.
        """


@runtime_checkable
class CancelUndoAdapter(Protocol):
    """What an adapter adds when its plugin declares the ``undo_cancel`` capability."""

    async def undo_cancel(self, provider_subscription_id: str, *, idempotency_key: str) -> ProviderSubscription:
        """Take back a cancellation at the period's end: the subscription renews as before.

        Asked after ``cancel_subscription(at_period_end=True)``, and also when that call never
        ran (both queued, the tenant changed its mind first): a subscription with no cancellation
        scheduled is left as it is, not an error. Never asked about one that has ended.
        """


# The ProviderError code of ``attach_payment_method`` for a customer the provider needs but does not have yet.
CUSTOMER_NOT_SYNCED = "customer_not_synced"


@runtime_checkable
class PaymentMethodAdapter(Protocol):
    """What an adapter adds when its plugin declares the ``payment_methods`` capability."""

    async def attach_payment_method(
        self, token: str, provider_customer_id: str | None, *, idempotency_key: str, default: bool = False
    ) -> ProviderPaymentMethod:
        """The payment method ``token`` names at the provider (made by the provider's own
        client-side form: billplane never sees card numbers), ready for off-session charges of
        the customer ``provider_customer_id`` (None: the customer is not at this account yet).
        ``default``: also the customer's default at the provider, where the provider keeps one,
        so that what the provider charges by itself (the invoices of the subscriptions it bills)
        is charged to it too.

        Attach it to that customer where the provider needs it; a method attached to it already
        is no error (a retry). The answer's id is the one charges use (a provider may give a
        shorthand test token an id of its own). Raise ``ProviderError`` for a token the provider
        does not know or one that belongs to another customer, and with the code
        ``CUSTOMER_NOT_SYNCED`` when the provider needs the customer and got None (billplane then
        answers 409: the customer's sync has not reached the provider yet);
        ``RetryableProviderError`` when the provider could not be asked.
        """

    async def detach_payment_method(
        self, provider_payment_method_id: str, provider_customer_id: str | None, *, idempotency_key: str
    ) -> None:
        """The provider stops charging the method for the customer ``provider_customer_id``: detach
        it there, where the provider attaches methods, so that it is no longer the customer's
        default there either (and what the provider bills by itself is not charged to it).

        A method already detached, unknown to the provider, or attached to another customer is no
        error (a retry, or nothing of this customer's to detach): leave it as it is. None for
        ``provider_customer_id``: the customer is not at this account (its sync never reached it),
        so nothing of its is there to detach. Raise
        ``ProviderError`` when the provider refuses (billplane then detaches nothing and answers
        409), ``RetryableProviderError`` when it could not be asked (503).
        """


@runtime_checkable
class CatalogUpdateAdapter(Protocol):
    """What an adapter adds when its plugin declares the ``catalog_updates`` capability.

    ``ensure_product`` and ``ensure_price`` create a product and a price the first time a
    subscription needs them at an account; these mirror the tenant's later edits to the objects
    made then. billplane calls them only for accounts that have the object, each time with the
    state as it is when the call is made, so a retry or a later call converges on the latest edit.
    """

    async def update_product(self, provider_product_id: str, product: ProductData, *, idempotency_key: str) -> None:
        """Make the provider's product show ``product`` as it is now: its ``name``, its
        ``description`` (``None`` clears it) and ``active`` (archived when False).

        Send what the provider lets change and leave the rest as it is (say which fields your
        provider keeps in its documentation: PayPal's product names cannot change). The same state
        sent again (a retry) is no error. A product the provider no longer has raises
        ``ProviderError``; ``RetryableProviderError`` when the provider could not be asked.
        """

    async def set_price_active(self, provider_price_id: str, *, active: bool, idempotency_key: str) -> None:
        """Archive the price (``active=False``: the provider starts no new subscription on it, and
        those it holds go on as before) or make it available again (``active=True``).

        A price already in the state asked for is no error (a retry, or a call whose answer was
        lost). billplane deactivates a price only once no create or change of a subscription on
        it is waiting to be sent to this account.
        """


@runtime_checkable
class SubscriptionMetadataAdapter(Protocol):
    """What an adapter adds when its plugin declares the ``subscription_metadata`` capability.

    ``create_subscription`` sends the subscription's metadata as it is then; this mirrors the
    tenant's later edits, each time with the metadata as it is when the call is made.
    """

    async def update_subscription_metadata(
        self, provider_subscription_id: str, metadata: dict[str, str], *, idempotency_key: str
    ) -> None:
        """Make the provider's subscription carry ``metadata`` as the tenant's metadata. Keys the
        adapter set itself (such as billplane's ids) stay; any other key is the tenant's, and one
        ``metadata`` no longer has is removed, wherever it was set (say so in your documentation).

        The same metadata sent again (a retry) is no error. A subscription the provider no longer
        has raises ``ProviderError``; ``RetryableProviderError`` when it could not be asked.
        """


@dataclass(frozen=True, kw_only=True)
class ProviderPlugin:
    """What a provider distribution registers through ``billplane_register_providers``.

    ``name``: lower-case, ``[a-z][a-z0-9_]{1,31}``, unique among installed providers; it is the
    ``provider`` field of the API. ``credentials_type``: a msgspec Struct (use
    ``forbid_unknown_fields=True``) that tenants' credentials are validated against; fields named
    in ``secret_fields`` are masked to their last 4 characters when shown.
    """

    name: str
    version: str
    description: str
    capabilities: frozenset[Capability]
    pricing_models: frozenset[str]
    credentials_type: type[msgspec.Struct]
    create_adapter: Callable[[AdapterContext], ProviderAdapter]
    secret_fields: frozenset[str] = field(default_factory=frozenset)
    # True when the provider invoices and collects the subscriptions it holds (Stripe, PayPal):
    # billplane then mirrors those invoices and payments from its webhooks and never bills such a
    # subscription itself, which would charge the customer twice.
    bills_subscriptions: bool = False
