"""What the fake Stripe does with each operation it implements: a small, stateful Stripe."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import StripeFailure, invalid, missing
from .lists import created_matches, page
from .objects import fixture, list_of, new_id, now
from .refunds import PENDING_REFUND, REFUND_FAILS, create_refund, list_refunds, refunded_amount, retrieve_refund

Params = dict[str, Any]
Handler = Callable[["Store", dict[str, str], Params], dict[str, Any]]

# Stripe's test payment methods (https://docs.stripe.com/testing) that the fake knows.
SUCCEEDS = "pm_card_visa"
# A US bank account: its PaymentIntent stays `processing` until the test settles it
# (`settle_processing`), as an ACH debit does for days at Stripe.
PROCESSING = "pm_usBankAccount"
# Fake-only (Stripe has no such test method): a payment method whose confirmation needs a
# redirect (3DS, a bank's page) that Stripe leaves at `requires_action` even off-session, rather
# than answer with a card error; the test completes it with `complete_action`.
REQUIRES_ACTION = "pm_card_fake_requiresAction"
MASTERCARD = "pm_card_mastercard"
# Cards whose charges succeed (the refund cards of `refunds` among them).
_SUCCEEDING = {SUCCEEDS, MASTERCARD, PENDING_REFUND, REFUND_FAILS}
DECLINES = {
    "pm_card_chargeDeclined": "generic_decline",
    "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
}
# Brand and last 4 digits of the test card behind each test card payment method, after Stripe's
# testing page (the fake-only REQUIRES_ACTION borrows its "always authenticate" card). The expiry
# is the page's own example of a valid date, 12/34.
_CARDS = {
    SUCCEEDS: ("visa", "4242"),
    MASTERCARD: ("mastercard", "4444"),
    PENDING_REFUND: ("visa", "7726"),
    REFUND_FAILS: ("visa", "5126"),
    REQUIRES_ACTION: ("visa", "3184"),
    "pm_card_chargeDeclined": ("visa", "0002"),
    "pm_card_chargeDeclinedInsufficientFunds": ("visa", "9995"),
}
MONTH = 30 * 24 * 3600


def merged_metadata(current: dict[str, Any], sent: object) -> dict[str, Any]:
    """Stripe's metadata update: the keys sent are set, those sent as "" removed, and metadata sent
    as "" removes every key."""
    if not isinstance(sent, dict):
        return {}
    return {key: value for key, value in {**current, **sent}.items() if value != ""}


def _bool(value: object) -> bool:
    return value == "true"


def _int(params: Params, name: str) -> int | None:
    value = params.get(name)
    return None if value is None else int(value)


class Store:
    """The fake account's objects, by id."""

    def __init__(self) -> None:
        self.customers: dict[str, dict[str, Any]] = {}
        self.products: dict[str, dict[str, Any]] = {}
        self.prices: dict[str, dict[str, Any]] = {}
        self.meters: dict[str, dict[str, Any]] = {}
        self.meter_events: dict[str, dict[str, Any]] = {}  # by identifier: Stripe counts one per identifier
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        # Built on first use from the test payment method ids, so that their `customer` is this
        # account's own state: attaching one in a test leaves the next test's unattached.
        self.payment_methods: dict[str, dict[str, Any]] = {}
        self.duplicate_identifier_error = False  # answer a repeated meter event identifier with an error
        # Stripe's reference does not say whether detaching the customer's default payment method
        # clears `invoice_settings.default_payment_method`: the fake leaves it unless told to.
        self.detach_clears_default = False
        # Detached for good: Stripe neither attaches nor charges such a PaymentMethod again.
        self.detached: set[str] = set()

    # -- test helpers ----------------------------------------------------------------------

    def usage_total(self, event_name: str, customer: str) -> int:
        return sum(
            int(event["payload"]["value"])
            for event in self.meter_events.values()
            if event["event_name"] == event_name and event["payload"].get("stripe_customer_id") == customer
        )

    def open_invoice(self, customer: str, amount: int, currency: str = "usd") -> str:
        invoice_id = new_id("in")
        self.invoices[invoice_id] = fixture(
            "invoice",
            id=invoice_id,
            customer=customer,
            status="open",
            currency=currency,
            total=amount,
            subtotal=amount,
            amount_due=amount,
            amount_paid=0,
            amount_remaining=amount,
            subscription=None,
            parent=None,
            payments=None,
        )
        return invoice_id

    # -- lookups ---------------------------------------------------------------------------

    def customer(self, customer_id: str, param: str = "customer") -> dict[str, Any]:
        customer = self.customers.get(customer_id)
        if customer is None or customer.get("deleted"):
            raise missing("customer", customer_id, param)
        return customer

    def price(self, price_id: str, param: str = "price") -> dict[str, Any]:
        price = self.prices.get(price_id)
        if price is None:
            raise missing("price", price_id, param)
        return price

    def payment_method(self, method_id: str, param: str = "payment_method") -> dict[str, Any]:
        method = self.payment_methods.get(method_id)
        if method is None:
            if method_id not in _CARDS and method_id != PROCESSING:
                raise missing("PaymentMethod", method_id, param)
            method = self.payment_methods[method_id] = _test_payment_method(method_id)
        return method

    def subscription(self, subscription_id: str) -> dict[str, Any]:
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None:
            raise missing("subscription", subscription_id)
        return subscription


def balance(_store: Store, _path: dict[str, str], _params: Params) -> dict[str, Any]:
    return fixture("balance")


# -- customers -------------------------------------------------------------------------------


def _apply_customer(customer: dict[str, Any], params: Params) -> None:
    for field in ("email", "name", "description"):
        if field in params:
            customer[field] = params[field] or None
    if "metadata" in params:
        customer["metadata"] = merged_metadata(customer.get("metadata", {}), params["metadata"])
    settings = params.get("invoice_settings") or {}
    method = settings.get("default_payment_method", params.get("payment_method"))
    if method is not None:  # "" clears it, as Stripe clears a field
        customer["invoice_settings"] = {**customer["invoice_settings"], "default_payment_method": method or None}


def create_customer(store: Store, _path: dict[str, str], params: Params) -> dict[str, Any]:
    customer = fixture("customer", id=new_id("cus"), created=now(), metadata={}, discount=None)
    _apply_customer(customer, params)
    store.customers[customer["id"]] = customer
    return customer


def update_customer(store: Store, path: dict[str, str], params: Params) -> dict[str, Any]:
    customer = store.customer(path["customer"])
    _apply_customer(customer, params)
    return customer


def retrieve_customer(store: Store, path: dict[str, str], _params: Params) -> dict[str, Any]:
    customer = store.customers.get(path["customer"])
    if customer is None:
        raise missing("customer", path["customer"])
    return customer


def delete_customer(store: Store, path: dict[str, str], _params: Params) -> dict[str, Any]:
    store.customer(path["customer"])  # deleting twice: Stripe answers 404 resource_missing
    gone = {"id": path["customer"], "object": "customer", "deleted": True}
    store.customers[path["customer"]] = gone
    return gone


# -- catalog ---------------------------------------------------------------------------------


def create_product(store: Store, _path: dict[str, str], params: Params) -> dict[str, Any]:
    if not params.get("name"):
        raise invalid("Missing required param: name.", code="parameter_missing", param="name")
    product = fixture(
        "product",
        id=new_id("prod"),
        name=params["name"],
        description=params.get("description"),
        active=params.get("active", "true") == "true",
        metadata=params.get("metadata") or {},
        default_price=None,
        created=now(),
    )
    store.products[product["id"]] = product
    return product


def _product(store: Store, product_id: str) -> dict[str, Any]:
    product = store.products.get(product_id)
    if product is None:
        raise missing("product", product_id)
    return product


def update_product(store: Store, path: dict[str, str], params: Params) -> dict[str, Any]:
    product = _product(store, path["id"])
    if "name" in params and not params["name"]:
        raise invalid("You cannot set a product's name to an empty string.", param="name")
    for field in ("name", "description"):
        if field in params:
            product[field] = params[field] or None  # "" unsets, as Stripe does
    if "active" in params:
        product["active"] = _bool(params["active"])
    if "metadata" in params:
        product["metadata"] = merged_metadata(product["metadata"], params["metadata"])
    product["updated"] = now()
    return product


def retrieve_product(store: Store, path: dict[str, str], _params: Params) -> dict[str, Any]:
    return _product(store, path["id"])


def _check_price(store: Store, params: Params) -> None:
    if params.get("product") not in store.products:
        raise missing("product", str(params.get("product")), "product")
    recurring = params.get("recurring") or {}
    tiered = params.get("billing_scheme") == "tiered"
    if tiered and (not params.get("tiers") or "tiers_mode" not in params):
        raise invalid("Tiered prices need tiers and tiers_mode.", param="tiers")
    if tiered and ("unit_amount" in params or "transform_quantity" in params):
        raise invalid("Tiered prices cannot have unit_amount or transform_quantity.", param="unit_amount")
    if tiered and params["tiers"][-1].get("up_to") != "inf":
        raise invalid("The last tier must have up_to=inf.", param="tiers")
    if not tiered and "unit_amount" not in params and "unit_amount_decimal" not in params:
        raise invalid("Missing required param: unit_amount.", code="parameter_missing", param="unit_amount")
    if recurring.get("usage_type") == "metered":
        meter = store.meters.get(recurring.get("meter", ""))
        if meter is None or meter["status"] != "active":
            raise invalid("Metered prices require an active meter.", param="recurring[meter]")
    elif "meter" in recurring:
        raise invalid("Only metered prices can have a meter.", param="recurring[meter]")


def create_price(store: Store, _path: dict[str, str], params: Params) -> dict[str, Any]:
    _check_price(store, params)
    recurring = params.get("recurring") or {}
    tiers = params.get("tiers")
    price = fixture(
        "price",
        id=new_id("price"),
        product=params["product"],
        currency=params["currency"],
        created=now(),
        active=params.get("active", "true") == "true",
        metadata=params.get("metadata") or {},
        billing_scheme=params.get("billing_scheme", "per_unit"),
        tiers_mode=params.get("tiers_mode"),
        unit_amount=_int(params, "unit_amount"),
        unit_amount_decimal=params.get("unit_amount"),
        transform_quantity=params.get("transform_quantity"),
        recurring={
            "interval": recurring["interval"],
            "interval_count": int(recurring.get("interval_count", 1)),
            "meter": recurring.get("meter"),
            "usage_type": recurring.get("usage_type", "licensed"),
            "trial_period_days": None,
        },
    )
    if tiers is not None:
        price["tiers"] = tiers
    store.prices[price["id"]] = price
    return price


def retrieve_price(store: Store, path: dict[str, str], _params: Params) -> dict[str, Any]:
    return store.price(path["price"])


def update_price(store: Store, path: dict[str, str], params: Params) -> dict[str, Any]:
    price = store.price(path["price"])
    if "active" in params:
        price["active"] = _bool(params["active"])
    if "metadata" in params:
        price["metadata"] = merged_metadata(price["metadata"], params["metadata"])
    return price


# -- meters ----------------------------------------------------------------------------------


def create_meter(store: Store, _path: dict[str, str], params: Params) -> dict[str, Any]:
    name = params.get("event_name")
    if any(m["event_name"] == name and m["status"] == "active" for m in store.meters.values()):
        raise invalid(f"An active meter with event_name '{name}' already exists.", param="event_name")
    meter = fixture(
        "billing.meter",
        id=new_id("mtr"),
        event_name=name,
        display_name=params.get("display_name"),
        default_aggregation=params.get("default_aggregation"),
        customer_mapping=params.get("customer_mapping") or {"event_payload_key": "stripe_customer_id", "type": "by_id"},
        value_settings=params.get("value_settings") or {"event_payload_key": "value"},
        created=now(),
        updated=now(),
    )
    store.meters[meter["id"]] = meter
    return meter


def list_meters(store: Store, _path: dict[str, str], params: Params) -> dict[str, Any]:
    meters = [m for m in store.meters.values() if params.get("status") in {None, m["status"]}]
    limit = int(params.get("limit", 10))
    after = params.get("starting_after")
    if after:
        ids = [m["id"] for m in meters]
        meters = meters[ids.index(after) + 1 :] if after in ids else []
    return list_of(meters[:limit], "/v1/billing/meters", has_more=len(meters) > limit)


def create_meter_event(store: Store, _path: dict[str, str], params: Params) -> dict[str, Any]:
    name = params.get("event_name")
    meter = next((m for m in store.meters.values() if m["event_name"] == name and m["status"] == "active"), None)
    if meter is None:
        raise invalid(f"No active meter with event_name '{name}'.", param="event_name")
    payload = params.get("payload") or {}
    customer_key = meter["customer_mapping"]["event_payload_key"]
    value_key = meter["value_settings"]["event_payload_key"]
    store.customer(str(payload.get(customer_key)), f"payload[{customer_key}]")
    if not str(payload.get(value_key, "")).isdigit():
        raise invalid("The meter event value must be a whole number.", param=f"payload[{value_key}]")
    identifier = params.get("identifier") or new_id("mev")
    if identifier in store.meter_events:
        if store.duplicate_identifier_error:
            raise invalid(
                f"An event with identifier '{identifier}' already exists.",
                code="resource_already_exists",
                param="identifier",
            )
        return store.meter_events[identifier]  # counted once, whatever the idempotency key
    event = fixture(
        "billing.meter_event",
        event_name=name,
        identifier=identifier,
        payload=payload,
        timestamp=int(params.get("timestamp", now())),
        created=now(),
    )
    store.meter_events[identifier] = event
    return event


# -- subscriptions ---------------------------------------------------------------------------


def _item(
    store: Store, subscription_id: str, spec: Params, start: int, kept: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A subscription item as ``spec`` asks; ``kept``: the price of the item it changes, for a spec
    that names none."""
    if kept is not None and "price" not in spec:
        price = kept
    else:
        price = store.price(str(spec.get("price")), "items[0][price]")
        if not price["active"]:  # Stripe's answer; the item's own price kept (not named) is fine
            raise invalid(
                "The price specified is inactive. This field only accepts active prices.", param="items[0][price]"
            )
    metered = price["recurring"]["usage_type"] == "metered"
    if metered and "quantity" in spec:
        raise invalid("Quantity should not be specified where usage_type is `metered`.", param="items[0][quantity]")
    return {
        "id": new_id("si"),
        "object": "subscription_item",
        "created": start,
        "metadata": {},
        "price": price,
        "quantity": None if metered else int(spec.get("quantity", 1)),
        "subscription": subscription_id,
        "tax_rates": [],
        "discounts": [],
        "current_period_start": start,
        "current_period_end": start + MONTH,
    }


def create_subscription(store: Store, _path: dict[str, str], params: Params) -> dict[str, Any]:
    store.customer(str(params.get("customer")))
    items = params.get("items")
    if not isinstance(items, list) or not items:
        raise invalid("Missing required param: items.", code="parameter_missing", param="items")
    subscription_id = new_id("sub")
    start = now()
    trial_end = _int(params, "trial_end")
    subscription = fixture(
        "subscription",
        id=subscription_id,
        customer=params["customer"],
        status="trialing" if trial_end else "active",
        created=start,
        start_date=start,
        billing_cycle_anchor=trial_end or start,
        cancel_at=None,
        cancel_at_period_end=False,
        canceled_at=None,
        ended_at=None,
        trial_start=start if trial_end else None,
        trial_end=trial_end,
        pause_collection=None,
        pending_update=None,
        metadata=params.get("metadata") or {},
        items=list_of(
            [_item(store, subscription_id, spec, start) for spec in items],
            f"/v1/subscription_items?subscription={subscription_id}",
        ),
    )
    store.subscriptions[subscription_id] = subscription
    return subscription


def list_subscriptions(store: Store, _path: dict[str, str], params: Params) -> dict[str, Any]:
    """Newest first; ``customer`` filters; ``status`` leaves out canceled ones unless ``all`` (or
    ``canceled``), as Stripe does; ``starting_after`` pages."""
    wanted = params.get("status")
    found = [
        subscription
        for subscription in reversed(store.subscriptions.values())
        if params.get("customer") in {None, subscription["customer"]}
        and (
            wanted == "all"
            or subscription["status"] == wanted
            or (wanted is None and subscription["status"] not in {"canceled", "incomplete_expired"})
        )
    ]
    return page(found, params, "/v1/subscriptions")


def retrieve_subscription(store: Store, path: dict[str, str], _params: Params) -> dict[str, Any]:
    return store.subscription(path["subscription_exposed_id"])


def update_subscription(store: Store, path: dict[str, str], params: Params) -> dict[str, Any]:
    subscription = store.subscription(path["subscription_exposed_id"])
    if subscription["status"] == "canceled" and set(params) - {"metadata", "cancellation_details"}:
        raise invalid("A canceled subscription can only update its cancellation_details and metadata.")
    for change in params.get("items") or []:
        current = next((i for i in subscription["items"]["data"] if i["id"] == change.get("id")), None)
        if current is None:
            raise invalid("The subscription item does not belong to this subscription.", param="items[0][id]")
        replaced = _item(store, subscription["id"], change, current["current_period_start"], current["price"])
        current.update(price=replaced["price"], quantity=replaced["quantity"])
    if "cancel_at_period_end" in params:
        subscription["cancel_at_period_end"] = _bool(params["cancel_at_period_end"])
    if "pause_collection" in params:
        pause = params["pause_collection"]
        subscription["pause_collection"] = {"behavior": pause["behavior"], "resumes_at": None} if pause else None
    if "metadata" in params:
        subscription["metadata"] = merged_metadata(subscription["metadata"], params["metadata"])
    return subscription


def cancel_subscription(store: Store, path: dict[str, str], _params: Params) -> dict[str, Any]:
    subscription = store.subscription(path["subscription_exposed_id"])
    if subscription["status"] == "canceled":
        raise invalid("This subscription has already been canceled.", code="resource_missing", status=404)
    subscription.update(status="canceled", canceled_at=now(), ended_at=now())
    return subscription


# -- payments --------------------------------------------------------------------------------


def _test_payment_method(method_id: str) -> dict[str, Any]:
    method = fixture("payment_method", id=method_id, customer=None, created=now(), metadata={})
    if method_id == PROCESSING:
        del method["card"]  # Stripe sends only the details of the method's own type
        method.update(
            type="us_bank_account",
            us_bank_account={
                "account_holder_type": "individual",
                "account_type": "checking",
                "bank_name": "STRIPE TEST BANK",
                "financial_connections_account": None,
                "fingerprint": "fakeUsBankAccount",
                "last4": "6789",
                "networks": {"preferred": "ach", "supported": ["ach"]},
                "routing_number": "110000000",
                "status_details": {},
            },
        )
        return method
    brand, last4 = _CARDS[method_id]
    method["card"].update(
        brand=brand,
        display_brand=brand,
        last4=last4,
        exp_month=12,
        exp_year=2034,
        fingerprint=f"fakeCard{last4}",
        networks={"available": [brand], "preferred": None},
        wallet=None,
    )
    return method


def retrieve_payment_method(store: Store, path: dict[str, str], _params: Params) -> dict[str, Any]:
    return store.payment_method(path["payment_method"])


def attach_payment_method(store: Store, path: dict[str, str], params: Params) -> dict[str, Any]:
    method = store.payment_method(path["payment_method"])
    customer = params.get("customer")
    if not customer:
        raise invalid("Missing required param: customer.", code="parameter_missing", param="customer")
    store.customer(customer)
    if method["id"] in store.detached:
        raise invalid(_USED_UP)
    if method["customer"] not in {None, customer}:
        # Stripe moves no payment method between customers. It answers 400 invalid_request_error;
        # its error code is not documented, so the fake sends none rather than invent one.
        raise invalid("The payment method you provided has already been attached to a customer.")
    method["customer"] = customer
    return method


_USED_UP = (
    "The provided PaymentMethod was previously used with a PaymentIntent without Customer attachment, shared with "
    "a connected account without Customer attachment, or was detached from a Customer. It may not be used again."
)


def detach_payment_method(store: Store, path: dict[str, str], _params: Params) -> dict[str, Any]:
    method = store.payment_method(path["payment_method"])
    customer_id = method["customer"]
    if customer_id is None:
        # Stripe answers 400 invalid_request_error; as for the attach, with no documented code.
        raise invalid("The payment method you provided is not attached to a customer so detachment is impossible.")
    method["customer"] = None
    store.detached.add(method["id"])
    customer = store.customers.get(customer_id) or {}
    settings = customer.get("invoice_settings") or {}
    if store.detach_clears_default and settings.get("default_payment_method") == method["id"]:
        customer["invoice_settings"] = {**settings, "default_payment_method": None}
    return method


def _payment_method(store: Store, params: Params) -> str:
    method = params.get("payment_method")
    if method is None and params.get("customer"):
        method = store.customer(params["customer"])["invoice_settings"].get("default_payment_method")
    if method is None:
        raise invalid("You must provide a payment method.", code="payment_method_required", param="payment_method")
    if method in store.detached:
        raise invalid(_USED_UP, param="payment_method")
    if method not in _SUCCEEDING | {PROCESSING, REQUIRES_ACTION} and method not in DECLINES:
        raise missing("PaymentMethod", method, "payment_method")
    return str(method)


def _intent(
    store: Store, amount: int, currency: str, customer: str | None, method: str, **extra: Any
) -> dict[str, Any]:
    intent = fixture(
        "payment_intent",
        id=new_id("pi"),
        amount=amount,
        currency=currency,
        customer=customer,
        payment_method=method,
        created=now(),
        canceled_at=None,
        last_payment_error=None,
        next_action=None,
        **{"metadata": {}, **extra},
    )
    intent["client_secret"] = f"{intent['id']}_secret_fake"
    decline = DECLINES.get(method)
    if decline is not None:
        message = "Your card was declined."
        error = {"type": "card_error", "code": "card_declined", "decline_code": decline, "message": message}
        intent.update(status="requires_payment_method", last_payment_error=error, latest_charge=None)
        store.payment_intents[intent["id"]] = intent
        raise StripeFailure(
            402, "card_error", message, code="card_declined", decline_code=decline, payment_intent=intent
        )
    if method == PROCESSING:
        intent.update(status="processing", amount_received=0, latest_charge=new_id("py"))
    elif method == REQUIRES_ACTION:
        redirect = {"url": f"https://hooks.stripe.com/redirect/authenticate/{intent['id']}", "return_url": None}
        intent.update(
            status="requires_action",
            amount_received=0,
            latest_charge=None,
            next_action={"type": "redirect_to_url", "redirect_to_url": redirect},
        )
    else:
        intent.update(status="succeeded", amount_received=amount, latest_charge=new_id("ch"))
    store.payment_intents[intent["id"]] = intent
    return intent


def settle_processing(store: Store, intent_id: str, *, succeeded: bool) -> None:
    """What Stripe does when a bank debit clears or bounces (no webhook is sent by the fake)."""
    intent = store.payment_intents[intent_id]
    if intent["status"] != "processing":
        raise ValueError(f"{intent_id} is {intent['status']}, not processing")
    if succeeded:
        intent.update(status="succeeded", amount_received=intent["amount"])
    else:
        error = {
            "type": "invalid_request_error",
            "code": "payment_method_not_available",
            "message": "The debit failed.",
        }
        intent.update(status="requires_payment_method", last_payment_error=error)


def complete_action(store: Store, intent_id: str) -> None:
    """What Stripe does when the customer completes a `requires_action` PaymentIntent's redirect."""
    intent = store.payment_intents[intent_id]
    if intent["status"] != "requires_action":
        raise ValueError(f"{intent_id} is {intent['status']}, not requires_action")
    intent.update(status="succeeded", amount_received=intent["amount"], latest_charge=new_id("ch"), next_action=None)


_CANCELABLE = {"requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing"}


def cancel_payment_intent(store: Store, path: dict[str, str], params: Params) -> dict[str, Any]:
    intent = retrieve_payment_intent(store, path, params)
    if intent["status"] not in _CANCELABLE:
        message = (
            f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}. Only a "
            f"PaymentIntent with one of the following statuses may be canceled: {', '.join(sorted(_CANCELABLE))}."
        )
        raise StripeFailure(
            400, "invalid_request_error", message, code="payment_intent_unexpected_state", payment_intent=intent
        )
    intent.update(
        status="canceled", canceled_at=now(), cancellation_reason=params.get("cancellation_reason"), next_action=None
    )
    return intent


def create_payment_intent(store: Store, _path: dict[str, str], params: Params) -> dict[str, Any]:
    if params.get("off_session") == "true" and params.get("confirm") != "true":
        raise invalid("off_session can only be used with confirm=true.", param="off_session")
    if params.get("customer"):
        store.customer(params["customer"])
    method = _payment_method(store, params)
    return _intent(
        store,
        int(params["amount"]),
        params["currency"],
        params.get("customer"),
        method,
        description=params.get("description"),
        metadata=params.get("metadata") or {},
    )


def pay_invoice(store: Store, path: dict[str, str], params: Params) -> dict[str, Any]:
    invoice = store.invoices.get(path["invoice"])
    if invoice is None:
        raise missing("invoice", path["invoice"], "invoice")
    if invoice["status"] != "open":
        raise invalid("Invoice is already paid.", code="invoice_not_open")
    method = _payment_method(store, {"customer": invoice["customer"], **params})
    intent = _intent(store, invoice["amount_due"], invoice["currency"], invoice["customer"], method)
    if intent["status"] == "requires_action":  # the invoice stays open, waiting on the customer
        message = "This payment requires authentication by the customer."
        raise StripeFailure(402, "card_error", message, code="authentication_required", payment_intent=intent)
    invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0)
    payment = {"object": "invoice_payment", "payment": {"type": "payment_intent", "payment_intent": intent["id"]}}
    invoice["_payments"] = [payment]
    answer = {key: value for key, value in invoice.items() if not key.startswith("_")}
    if "payments" in (params.get("expand") or []):  # includable only when expanded, as at Stripe
        answer["payments"] = list_of(invoice["_payments"], f"/v1/invoices/{invoice['id']}/payments")
    return answer


def list_payment_intents(store: Store, _path: dict[str, str], params: Params) -> dict[str, Any]:
    """Newest first, as Stripe lists; ``customer`` and ``created`` filter, ``limit`` and the cursors page."""
    intents = [
        intent
        for intent in reversed(store.payment_intents.values())
        if params.get("customer") in {None, intent["customer"]} and created_matches(params, intent["created"])
    ]
    return page(intents, params, "/v1/payment_intents")


def retrieve_payment_intent(store: Store, path: dict[str, str], _params: Params) -> dict[str, Any]:
    intent = store.payment_intents.get(path["intent"])
    if intent is None:
        raise missing("payment_intent", path["intent"], "intent")
    return intent


def retrieve_charge(store: Store, path: dict[str, str], _params: Params) -> dict[str, Any]:
    """The Charge a PaymentIntent made (its ``latest_charge``), built from that PaymentIntent: the
    fake keeps no Charges of its own."""
    charge_id = path["charge"]
    intent = next((i for i in store.payment_intents.values() if i.get("latest_charge") == charge_id), None)
    if intent is None:
        raise missing("charge", charge_id)
    raw = intent["status"]
    status = "succeeded" if raw == "succeeded" else "pending" if raw == "processing" else "failed"
    error = intent.get("last_payment_error") or {}
    refunded = refunded_amount(store, intent["id"])
    refunds = [refund for refund in reversed(store.refunds.values()) if refund["charge"] == charge_id]
    return fixture(
        "charge",
        id=charge_id,
        amount=intent["amount"],
        amount_captured=intent["amount"] if status == "succeeded" else 0,
        amount_refunded=refunded,
        refunded=status == "succeeded" and refunded >= intent["amount"],
        captured=status == "succeeded",
        paid=status == "succeeded",
        status=status,
        failure_code=error.get("code") if status == "failed" else None,
        failure_message=error.get("message") if status == "failed" else None,
        currency=intent["currency"],
        customer=intent["customer"],
        payment_intent=intent["id"],
        payment_method=intent["payment_method"],
        description=intent.get("description"),
        metadata=intent.get("metadata") or {},
        created=intent["created"],
        refunds=list_of(refunds, f"/v1/charges/{charge_id}/refunds"),
    )


def retrieve_invoice(store: Store, path: dict[str, str], params: Params) -> dict[str, Any]:
    invoice = store.invoices.get(path["invoice"])
    if invoice is None:
        raise missing("invoice", path["invoice"], "invoice")
    answer = {key: value for key, value in invoice.items() if not key.startswith("_")}
    if "payments" in (params.get("expand") or []):
        answer["payments"] = list_of(invoice.get("_payments", []), f"/v1/invoices/{invoice['id']}/payments")
    return answer


ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/v1/balance"): balance,
    ("POST", "/v1/customers"): create_customer,
    ("GET", "/v1/customers/{customer}"): retrieve_customer,
    ("POST", "/v1/customers/{customer}"): update_customer,
    ("DELETE", "/v1/customers/{customer}"): delete_customer,
    ("POST", "/v1/products"): create_product,
    ("GET", "/v1/products/{id}"): retrieve_product,
    ("POST", "/v1/products/{id}"): update_product,
    ("POST", "/v1/prices"): create_price,
    ("GET", "/v1/prices/{price}"): retrieve_price,
    ("POST", "/v1/prices/{price}"): update_price,
    ("POST", "/v1/billing/meters"): create_meter,
    ("GET", "/v1/billing/meters"): list_meters,
    ("POST", "/v1/billing/meter_events"): create_meter_event,
    ("POST", "/v1/subscriptions"): create_subscription,
    ("GET", "/v1/subscriptions"): list_subscriptions,
    ("GET", "/v1/subscriptions/{subscription_exposed_id}"): retrieve_subscription,
    ("POST", "/v1/subscriptions/{subscription_exposed_id}"): update_subscription,
    ("DELETE", "/v1/subscriptions/{subscription_exposed_id}"): cancel_subscription,
    ("POST", "/v1/payment_intents"): create_payment_intent,
    ("GET", "/v1/payment_intents"): list_payment_intents,
    ("GET", "/v1/payment_intents/{intent}"): retrieve_payment_intent,
    ("POST", "/v1/payment_intents/{intent}/cancel"): cancel_payment_intent,
    ("GET", "/v1/payment_methods/{payment_method}"): retrieve_payment_method,
    ("POST", "/v1/payment_methods/{payment_method}/attach"): attach_payment_method,
    ("POST", "/v1/payment_methods/{payment_method}/detach"): detach_payment_method,
    ("GET", "/v1/charges/{charge}"): retrieve_charge,
    ("GET", "/v1/invoices/{invoice}"): retrieve_invoice,
    ("POST", "/v1/invoices/{invoice}/pay"): pay_invoice,
    ("POST", "/v1/refunds"): create_refund,
    ("GET", "/v1/refunds"): list_refunds,
    ("GET", "/v1/refunds/{refund}"): retrieve_refund,
}
